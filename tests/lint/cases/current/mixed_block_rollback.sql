BEGIN;
CREATE TABLE a (id int PRIMARY KEY);
INSERT INTO a VALUES (1);
ROLLBACK;
-- @expect
-- mixed_ddl_dml_transaction unfixable
