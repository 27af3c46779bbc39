ALTER TABLE orders ADD COLUMN status text DEFAULT 'new';
ALTER TABLE orders ADD COLUMN flag boolean NOT NULL;
-- @expect
-- add_column_constraint fixed_with_warning
-- add_column_constraint unfixable @2:31
-- @fixed
ALTER TABLE orders ADD COLUMN status text;
UPDATE orders SET status = 'new' WHERE status IS NULL;
ALTER TABLE orders ADD COLUMN flag boolean NOT NULL;
