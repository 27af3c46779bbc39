ALTER TABLE ASYNC t ADD COLUMN c int;
-- @expect
-- alter_table_async unfixable
