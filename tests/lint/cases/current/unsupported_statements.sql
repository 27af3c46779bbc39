TRUNCATE orders;
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE TRIGGER trg AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f();
CREATE TYPE mood AS ENUM ('a', 'b');
CREATE MATERIALIZED VIEW mv AS SELECT 1;
CREATE TABLE copy AS SELECT * FROM orders;
VACUUM orders;
ANALYZE orders;
LOCK TABLE orders;
LISTEN ch;
NOTIFY ch;
CREATE DATABASE shop;
PREPARE q AS SELECT 1;
DECLARE c CURSOR FOR SELECT 1;
SET ROLE app;
ALTER TABLE t ENABLE ROW LEVEL SECURITY;
CREATE POLICY p ON t USING (true);
CREATE PROCEDURE pr() LANGUAGE sql AS $$ SELECT 1 $$;
CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;
CREATE FUNCTION g() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;
CREATE TABLE ex (r int, EXCLUDE USING gist (r WITH =));
-- @expect
-- truncate unfixable @1:1
-- unsupported_create_extension unfixable @2:1
-- unsupported_create_trigger unfixable
-- unsupported_create_type unfixable
-- unsupported_materialized_view unfixable
-- create_table_as unfixable
-- unsupported_vacuum unfixable @7:1
-- unsupported_lock_table unfixable
-- unsupported_listen unfixable
-- unsupported_notify unfixable
-- unsupported_create_database unfixable
-- unsupported_prepare unfixable
-- unsupported_declare_cursor unfixable
-- unsupported_set_role unfixable
-- at_unsupported_row_level_security unfixable
-- unsupported_create_policy unfixable
-- unsupported_create_procedure unfixable
-- unsupported_create_function_non_sql unfixable
-- exclusion_constraint unfixable
