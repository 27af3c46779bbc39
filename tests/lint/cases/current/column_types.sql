CREATE TABLE t (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tags text[],
  ip inet,
  doc jsonb,
  name text COLLATE "C",
  title text COLLATE "en_US"
);
-- @expect
-- array_type unfixable @3:3
-- inet_type unfixable @4:3
-- collation fixed
-- collation fixed_with_warning
-- @fixed
CREATE TABLE t (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), tags text[], ip inet, doc jsonb, name text, title text);
