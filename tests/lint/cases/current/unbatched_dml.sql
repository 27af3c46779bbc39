UPDATE orders SET archived = true;
DELETE FROM sessions;
DELETE FROM sessions WHERE expires_at < now();
-- @expect
-- unbatched_dml unfixable @1:1
-- unbatched_dml unfixable @2:1
