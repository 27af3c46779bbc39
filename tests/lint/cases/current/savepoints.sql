BEGIN;
INSERT INTO t VALUES (1);
SAVEPOINT a;
INSERT INTO t VALUES (2);
ROLLBACK TO SAVEPOINT a;
RELEASE SAVEPOINT a;
COMMIT;
-- @expect
-- unsupported_savepoint unfixable @3:1
-- unsupported_rollback_to_savepoint unfixable
-- unsupported_release_savepoint unfixable
