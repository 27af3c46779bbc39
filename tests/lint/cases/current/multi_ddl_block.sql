-- two tables in one transaction
BEGIN;
CREATE TABLE a (id bigint PRIMARY KEY);
CREATE TABLE b (id bigint PRIMARY KEY);
COMMIT;
-- @expect
-- multi_ddl_transaction fixed_with_warning @2:1
-- @fixed
-- two tables in one transaction
CREATE TABLE a (id bigint PRIMARY KEY);
CREATE TABLE b (id bigint PRIMARY KEY);
