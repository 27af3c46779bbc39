ALTER TABLE t ALTER COLUMN a SET NOT NULL;
ALTER TABLE t ALTER COLUMN a SET DEFAULT 1, ALTER COLUMN b DROP NOT NULL;
ALTER TABLE t DROP COLUMN old, DROP CONSTRAINT c_old;
-- @expect
-- at_unsupported_alter_column_set_not_null unfixable
-- at_unsupported_alter_column_default unfixable
-- at_unsupported_drop_not_null unfixable
-- at_unsupported_drop_column unfixable
-- at_unsupported_drop_constraint unfixable
