BEGIN;
ALTER TABLE orders ADD COLUMN status text DEFAULT 'new';
INSERT INTO audit VALUES ('added status');
COMMIT;
-- @expect
-- add_column_constraint fixed_with_warning @2:31
-- mixed_ddl_dml_transaction fixed_with_warning @1:1
-- @fixed
ALTER TABLE orders ADD COLUMN status text;
BEGIN;
UPDATE orders SET status = 'new' WHERE status IS NULL;
COMMIT;
ALTER TABLE orders ALTER COLUMN status SET DEFAULT 'new';
BEGIN;
INSERT INTO audit VALUES ('added status');
COMMIT;
