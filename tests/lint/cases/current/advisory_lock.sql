SELECT pg_advisory_lock(42);
SELECT pg_try_advisory_xact_lock(1, 2);
-- @expect
-- advisory_lock unfixable @1:8
-- advisory_lock unfixable @2:8
