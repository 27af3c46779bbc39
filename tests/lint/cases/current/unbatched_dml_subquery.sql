UPDATE t SET a = (SELECT b FROM u WHERE u.id = t.id);
DELETE FROM t WHERE id IN (SELECT id FROM t WHERE done LIMIT 1000);
WITH old AS (SELECT id FROM t WHERE done) DELETE FROM t USING old;
-- @expect
-- unbatched_dml unfixable @1:1
-- unbatched_dml unfixable @3:1
