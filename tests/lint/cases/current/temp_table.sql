CREATE TEMPORARY TABLE staging (id bigint);
-- @expect
-- temp_table fixed_with_warning
-- @fixed
CREATE TABLE staging (id bigint);
