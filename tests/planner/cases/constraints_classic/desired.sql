CREATE TABLE parents (id bigint PRIMARY KEY, code text, CONSTRAINT parents_code_key UNIQUE (code));
CREATE TABLE kids (
  id bigint PRIMARY KEY,
  parent_id bigint,
  age int,
  CONSTRAINT kids_age_positive CHECK (age > 0)
);
