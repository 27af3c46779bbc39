CREATE INDEX ASYNC ix ON t (a, b, c, d, e, f, g, h, i);
CREATE INDEX ASYNC ok ON t (a, b, c, d, e, f, g, h) INCLUDE (i);
-- @expect
-- index_key_columns unfixable @1:1
