ALTER TABLE orders ADD COLUMN seq serial;
-- @expect
-- serial_type unfixable
