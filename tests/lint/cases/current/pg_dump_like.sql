SET statement_timeout = 0;
SET client_encoding = 'UTF8';
CREATE TABLE public.accounts (
    id integer NOT NULL,
    email character varying(255) NOT NULL,
    created_at timestamp without time zone DEFAULT now()
);
CREATE SEQUENCE public.accounts_id_seq AS integer START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1;
ALTER TABLE ONLY public.accounts ADD CONSTRAINT accounts_pkey PRIMARY KEY (id);
CREATE INDEX accounts_email_idx ON public.accounts USING btree (email);
-- @expect
-- sequence_type fixed_with_warning @8:1
-- at_unsupported_add_primary_key fixed @9:1
-- index_async fixed_with_warning @10:1
-- index_using fixed @10:1
-- @fixed
SET statement_timeout = 0;
SET client_encoding = 'UTF8';
CREATE TABLE public.accounts (id integer NOT NULL, email varchar(255) NOT NULL, created_at timestamp DEFAULT now(), CONSTRAINT accounts_pkey PRIMARY KEY (id));
CREATE SEQUENCE public.accounts_id_seq AS bigint START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1;
CREATE INDEX ASYNC accounts_email_idx ON public.accounts (email);
