ALTER TABLE users ADD COLUMN email text UNIQUE;
-- @expect
-- add_column_constraint unfixable
