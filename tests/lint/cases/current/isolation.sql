BEGIN ISOLATION LEVEL SERIALIZABLE;
COMMIT;
SET TRANSACTION ISOLATION LEVEL READ COMMITTED;
SET default_transaction_isolation = 'serializable';
BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;
COMMIT;
-- @expect
-- transaction_isolation fixed_with_warning @1:1
-- transaction_isolation fixed_with_warning @3:1
-- transaction_isolation fixed_with_warning @4:1
-- @fixed
BEGIN ISOLATION LEVEL REPEATABLE READ;
COMMIT;
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;
SET default_transaction_isolation = 'repeatable read';
BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;
COMMIT;
