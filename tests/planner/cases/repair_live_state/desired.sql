CREATE TABLE tags (
  id bigint PRIMARY KEY,
  label text,
  weight int,
  CONSTRAINT tags_weight_positive CHECK (weight > 0)
);
