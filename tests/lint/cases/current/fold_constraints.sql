CREATE TABLE public.users (
    id bigint NOT NULL,
    email text
);
COPY public.users (id, email) FROM stdin;
1	a@example.com
\.
ALTER TABLE ONLY public.users ADD CONSTRAINT users_pkey PRIMARY KEY (id), ADD CONSTRAINT users_email_key UNIQUE (email);
CREATE TABLE tags (id bigint PRIMARY KEY, name text);
ALTER TABLE tags ADD CONSTRAINT tags_name_key UNIQUE (name);
ALTER TABLE tags ADD PRIMARY KEY (name);
-- @expect
-- at_unsupported_add_primary_key fixed_with_warning @8:1
-- at_unsupported_add_unique fixed_with_warning @8:1
-- at_unsupported_add_unique fixed @10:1
-- at_unsupported_add_primary_key unfixable @11:1
-- @fixed
CREATE TABLE public.users (id bigint NOT NULL, email text, CONSTRAINT users_pkey PRIMARY KEY (id), CONSTRAINT users_email_key UNIQUE (email));
COPY public.users (id, email) FROM stdin;
1	a@example.com
\.

CREATE TABLE tags (id bigint PRIMARY KEY, name text, CONSTRAINT tags_name_key UNIQUE (name));
ALTER TABLE tags ADD PRIMARY KEY (name);
