CREATE TABLE t (id uuid PRIMARY KEY, doc jsonb, meta json);
-- @expect
-- jsonb_type unfixable
