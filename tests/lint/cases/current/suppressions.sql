-- dsql-migrate: ignore index_async
CREATE INDEX ix ON t (a);
-- dsql-migrate: ignore truncate, unbatched_dml
TRUNCATE t;
-- dsql-migrate: ignore no_such_rule
DELETE FROM t;
-- @expect
-- invalid_suppression unfixable @5:1
-- unbatched_dml unfixable @6:1
