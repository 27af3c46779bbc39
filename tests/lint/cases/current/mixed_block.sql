BEGIN;
ALTER TABLE t ADD COLUMN c int;
UPDATE t SET c = 0 WHERE id < 100;
INSERT INTO log VALUES ('done');
COMMIT;
-- @expect
-- mixed_ddl_dml_transaction fixed_with_warning @1:1
-- @fixed
ALTER TABLE t ADD COLUMN c int;
BEGIN;
UPDATE t SET c = 0 WHERE id < 100;
INSERT INTO log VALUES ('done');
COMMIT;
