ALTER TABLE orders ADD COLUMN status text NOT NULL DEFAULT 'new';
-- @expect
-- add_column_constraint fixed_with_warning @1:31
-- @fixed
ALTER TABLE orders ADD COLUMN status text;
UPDATE orders SET status = 'new' WHERE status IS NULL;
ALTER TABLE orders ALTER COLUMN status SET DEFAULT 'new';
ALTER TABLE orders ADD CONSTRAINT orders_status_not_null CHECK (status IS NOT NULL) NOT VALID;
ALTER TABLE ASYNC orders VALIDATE CONSTRAINT orders_status_not_null;
