CREATE TABLE orders (id uuid PRIMARY KEY, total numeric);
CREATE INDEX ASYNC ix_orders_total ON orders (total);
-- @expect
