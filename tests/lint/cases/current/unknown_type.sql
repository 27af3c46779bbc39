CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TABLE items (id bigint PRIMARY KEY, embedding vector(3), shape geometry, n posint, m public.posint, at timestamp with time zone, amount numeric(10, 2), flag boolean, code char(2), doc json, u uuid, d date, iv interval, b bytea, f double precision, r real, s smallint, v varchar(20), t text);
ALTER TABLE items ADD COLUMN tags hstore;
ALTER TABLE items ADD COLUMN price money_amount;
-- @expect
-- extension_type unfixable @2:54
-- extension_type unfixable @2:71
-- extension_type unfixable @3:35
-- unknown_type advisory @4:36
