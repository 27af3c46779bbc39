CREATE INDEX ASYNC ix_recent ON orders (id) WHERE created_at > now() - interval '1 day';
CREATE INDEX ASYNC ix_day ON orders ((created_at > CURRENT_DATE));
CREATE INDEX ASYNC ix_lower ON users (lower(email));
-- @expect
-- index_volatile_function unfixable @1:64
-- index_volatile_function unfixable @2:52
