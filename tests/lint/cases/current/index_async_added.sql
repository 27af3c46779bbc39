CREATE INDEX ix_orders_customer ON orders (customer_id);
-- @expect
-- index_async fixed_with_warning @1:1
-- @fixed
CREATE INDEX ASYNC ix_orders_customer ON orders (customer_id);
