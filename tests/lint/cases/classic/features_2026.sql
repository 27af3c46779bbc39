-- DSQL features of 2026-08 are not in the classic profile
CREATE STATISTICS orders_stats (dependencies) ON customer_id, region FROM orders;
ALTER STATISTICS orders_stats SET STATISTICS 100;
DROP STATISTICS orders_stats;
SELECT id FROM customers WHERE id = 7 FOR KEY SHARE;
SELECT id FROM customers WHERE id = 7 FOR UPDATE;
CREATE TABLE amounts (id bigint PRIMARY KEY, big numeric(60, 2), ok numeric(38, 37));
CREATE TABLE rates (code numeric(6, 0) PRIMARY KEY, rate numeric);
ALTER TABLE amounts ALTER COLUMN ok SET STORAGE EXTERNAL;
CREATE TABLE notes (id bigint PRIMARY KEY, body text STORAGE PLAIN);
-- @expect
-- unsupported_statistics unfixable @2:1
-- unsupported_statistics unfixable @3:1
-- unsupported_statistics unfixable @4:1
-- for_key_share unfixable @5:1
-- numeric_precision unfixable @7:50
-- numeric_index_key unfixable @8:21
