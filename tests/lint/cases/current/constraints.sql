ALTER TABLE t ADD PRIMARY KEY (id);
ALTER TABLE t ADD CONSTRAINT t_email_key UNIQUE (email);
ALTER TABLE t ADD CONSTRAINT t_email_key2 UNIQUE USING INDEX ux_email;
ALTER TABLE t ADD CONSTRAINT amount_pos CHECK (amount > 0);
ALTER TABLE t ADD CHECK (qty >= 0);
ALTER TABLE t ADD CONSTRAINT ok_check CHECK (a > 0) NOT VALID;
ALTER TABLE ASYNC t VALIDATE CONSTRAINT ok_check;
ALTER TABLE t ADD CONSTRAINT t_c_fk FOREIGN KEY (c) REFERENCES c (id);
ALTER TABLE t VALIDATE CONSTRAINT t_c_fk;
-- @expect
-- at_unsupported_add_primary_key unfixable @1:1
-- at_unsupported_add_unique unfixable @2:1
-- check_not_valid fixed_with_warning @4:19
-- check_not_valid fixed_with_warning @5:19
-- foreign_key_not_valid fixed_with_warning @8:19
-- validate_constraint_async fixed_with_warning @9:1
-- @fixed
ALTER TABLE t ADD PRIMARY KEY (id);
ALTER TABLE t ADD CONSTRAINT t_email_key UNIQUE (email);
ALTER TABLE t ADD CONSTRAINT t_email_key2 UNIQUE USING INDEX ux_email;
ALTER TABLE t ADD CONSTRAINT amount_pos CHECK (amount > 0) NOT VALID;
ALTER TABLE ASYNC t VALIDATE CONSTRAINT amount_pos;
ALTER TABLE t ADD CONSTRAINT t_check CHECK (qty >= 0) NOT VALID;
ALTER TABLE ASYNC t VALIDATE CONSTRAINT t_check;
ALTER TABLE t ADD CONSTRAINT ok_check CHECK (a > 0) NOT VALID;
ALTER TABLE ASYNC t VALIDATE CONSTRAINT ok_check;
ALTER TABLE t ADD CONSTRAINT t_c_fk FOREIGN KEY (c) REFERENCES c (id) NOT VALID;
ALTER TABLE ASYNC t VALIDATE CONSTRAINT t_c_fk;
