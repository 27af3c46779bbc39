CREATE TABLE items (
  id bigint PRIMARY KEY,
  name text,
  status text DEFAULT 'new' NOT NULL,
  flag boolean NOT NULL DEFAULT true
);
