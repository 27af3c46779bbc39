CREATE TABLE items (
  id bigint PRIMARY KEY,
  name text,
  priority integer NOT NULL DEFAULT 3
);
