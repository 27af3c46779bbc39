-- DSQL features of 2026-08 are in the current profile
CREATE STATISTICS orders_stats (dependencies) ON customer_id, region FROM orders;
ALTER STATISTICS orders_stats SET STATISTICS 100;
DROP STATISTICS orders_stats;
SELECT id FROM customers WHERE id = 7 FOR KEY SHARE;
CREATE TABLE amounts (id bigint PRIMARY KEY, big numeric(1000, 2), neg numeric(10, -3));
CREATE TABLE rates (code numeric(6, 0) PRIMARY KEY, rate numeric);
CREATE TABLE notes (id bigint PRIMARY KEY, body text STORAGE PLAIN);
CREATE TABLE wrong (id bigint PRIMARY KEY, v numeric(1001, 0));
-- @expect
-- numeric_bounds unfixable @9:46
