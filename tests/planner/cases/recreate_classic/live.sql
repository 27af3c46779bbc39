CREATE TABLE orders (id bigint PRIMARY KEY, amount text, note text, obsolete text);
CREATE INDEX ix_orders_note ON orders (note);
INSERT INTO orders SELECT g, g::text, 'n' || g, 'x' FROM generate_series(1, 7) g;
