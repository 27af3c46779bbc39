UNLISTEN ch;
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
-- @expect
-- unsupported_unlisten unfixable @1:1
-- unsupported_partition_of unfixable @2:1
