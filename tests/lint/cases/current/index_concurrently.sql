CREATE INDEX CONCURRENTLY ix ON t (a);
-- @expect
-- index_concurrently fixed_with_warning
-- @fixed
CREATE INDEX ASYNC ix ON t (a);
