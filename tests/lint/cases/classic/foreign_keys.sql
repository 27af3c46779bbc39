CREATE TABLE orders (
  id bigint PRIMARY KEY,
  customer_id bigint REFERENCES customers (id),
  FOREIGN KEY (id) REFERENCES other (id)
);
ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (customer_id) REFERENCES customers (id);
-- @expect
-- foreign_key fixed_with_warning @3:22
-- foreign_key fixed_with_warning @4:3
-- foreign_key fixed_with_warning @6:24
-- @fixed
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint);
