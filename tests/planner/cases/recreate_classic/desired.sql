CREATE TABLE orders (
  id bigint PRIMARY KEY,
  amount integer NOT NULL,
  comment text
);
CREATE INDEX ix_orders_note ON orders (comment);
