ALTER TABLE t ADD CONSTRAINT t_email_key2 UNIQUE USING INDEX ux_email;
ALTER TABLE t ADD CONSTRAINT amount_pos CHECK (amount > 0) NOT VALID;
ALTER TABLE t VALIDATE CONSTRAINT amount_pos;
-- @expect
-- at_unsupported_unique_using_index unfixable
-- at_unsupported_add_check unfixable
-- validate_constraint_async unfixable
