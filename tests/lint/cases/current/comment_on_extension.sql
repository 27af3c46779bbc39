COMMENT ON EXTENSION pgcrypto IS 'cryptographic functions';
COMMENT ON EXTENSION plpgsql IS 'PL/pgSQL procedural language';
COMMENT ON TABLE t IS 'kept';
-- @expect
-- comment_on_extension fixed @1:1
-- comment_on_extension fixed @2:1
-- @fixed

COMMENT ON TABLE t IS 'kept';
