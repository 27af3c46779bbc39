COPY public.t (id, v) FROM stdin;
TRUNCATE t;
CREATE INDEX i ON t (v);
-- @expect
-- copy_data_unterminated unfixable @1:1
-- truncate unfixable @2:1
-- index_async fixed_with_warning @3:1
-- @fixed
COPY public.t (id, v) FROM stdin;
TRUNCATE t;
CREATE INDEX ASYNC i ON t (v);
