CREATE TABLE items (
  id bigint PRIMARY KEY,
  name text,
  status text DEFAULT 'new',
  flag boolean
);
