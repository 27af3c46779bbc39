CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TABLE items (id bigint PRIMARY KEY, embedding vector(3), shape geometry, n posint, m public.posint, at timestamp with time zone, amount numeric(10, 2), flag boolean, code char(2), doc json, u uuid, d date, iv interval, b bytea, f double precision, r real, s smallint, v varchar(20), t text);
ALTER TABLE items ADD COLUMN tags hstore;
-- @expect
-- unknown_type unfixable @2:54
-- unknown_type unfixable @2:71
-- unknown_type unfixable @3:35
