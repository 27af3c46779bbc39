CREATE TABLE public.t (id bigint NOT NULL, v text);
COPY public.t (id, v) FROM stdin;
1	a;b
2	it's
\.
ALTER TABLE ONLY public.t ADD CONSTRAINT t_pkey PRIMARY KEY (id);
-- @expect
-- at_unsupported_add_primary_key fixed_with_warning @6:1
-- @fixed
CREATE TABLE public.t (id bigint NOT NULL, v text, CONSTRAINT t_pkey PRIMARY KEY (id));
COPY public.t (id, v) FROM stdin;
1	a;b
2	it's
\.

