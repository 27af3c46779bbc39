CREATE TABLE parents (id bigint PRIMARY KEY, code text, CONSTRAINT parents_code_key UNIQUE (code));
CREATE TABLE kids (
  id bigint PRIMARY KEY,
  parent_id bigint,
  age int,
  nick text,
  CONSTRAINT kids_age_positive CHECK (age > 0),
  CONSTRAINT kids_parent_fk FOREIGN KEY (parent_id) REFERENCES parents (id)
);
ALTER TABLE kids ALTER COLUMN parent_id SET NOT NULL;
