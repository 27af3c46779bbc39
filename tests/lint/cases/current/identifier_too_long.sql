CREATE TABLE orders_with_a_name_that_is_far_too_long_for_postgresql_identifiers_and_then_some (id bigint PRIMARY KEY);
-- @expect
-- identifier_too_long unfixable
