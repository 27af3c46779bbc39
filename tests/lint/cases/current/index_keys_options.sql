CREATE INDEX ASYNC ix ON t USING btree (a DESC NULLS LAST, b ASC, c text_pattern_ops);
-- @expect
-- index_sort_direction fixed_with_warning
-- index_sort_direction fixed
-- index_using fixed
-- index_opclass fixed_with_warning
-- @fixed
CREATE INDEX ASYNC ix ON t (a NULLS LAST, b, c);
