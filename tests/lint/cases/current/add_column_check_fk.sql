ALTER TABLE orders ADD COLUMN qty int CHECK (qty > 0), ADD COLUMN customer_id bigint REFERENCES customers (id);
-- @expect
-- add_column_constraint fixed_with_warning
-- add_column_constraint fixed_with_warning
-- @fixed
ALTER TABLE orders ADD COLUMN qty integer, ADD COLUMN customer_id bigint;
ALTER TABLE orders ADD CONSTRAINT orders_qty_check CHECK (qty > 0) NOT VALID;
ALTER TABLE ASYNC orders VALIDATE CONSTRAINT orders_qty_check;
ALTER TABLE orders ADD CONSTRAINT orders_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
ALTER TABLE ASYNC orders VALIDATE CONSTRAINT orders_customer_id_fkey;
