DROP TYPE IF EXISTS mood;
DROP TRIGGER audit ON orders;
DROP POLICY tenant_rows ON orders;
DROP MATERIALIZED VIEW daily;
DROP VIEW ok_view;
ALTER TYPE mood ADD VALUE 'meh';
ALTER TYPE pair ADD ATTRIBUTE c int;
ALTER POLICY tenant_rows ON orders USING (true);
ALTER TABLE orders ADD COLUMN c int;
DROP TRIGGER IF EXISTS audit ON orders;
-- @expect
-- unsupported_drop_type unfixable @1:1
-- unsupported_drop_trigger unfixable @2:1
-- unsupported_drop_policy unfixable @3:1
-- unsupported_drop_materialized_view unfixable @4:1
-- unsupported_alter_type unfixable @6:1
-- unsupported_alter_type unfixable @7:1
-- unsupported_alter_policy unfixable @8:1
