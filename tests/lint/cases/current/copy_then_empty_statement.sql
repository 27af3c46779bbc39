COPY t (a) FROM stdin;
1
\.
;
CREATE INDEX i ON t (a);
COPY t (a) FROM stdin;
2
\.
-- @expect
-- index_async fixed_with_warning @5:1
-- @fixed
COPY t (a) FROM stdin;
1
\.
;
CREATE INDEX ASYNC i ON t (a);
COPY t (a) FROM stdin;
2
\.
