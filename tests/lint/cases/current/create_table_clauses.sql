CREATE TABLE events (at timestamptz NOT NULL, v int) PARTITION BY RANGE (at);
CREATE TABLE special (x int) INHERITS (events);
CREATE TABLE fast (id bigint PRIMARY KEY) WITH (fillfactor = 70) TABLESPACE ssd;
-- @expect
-- partition_by fixed_with_warning
-- inherits fixed_with_warning
-- unsupported_create_table_with_storage_parameters fixed
-- tablespace fixed
-- @fixed
CREATE TABLE events (at timestamptz NOT NULL, v integer);
CREATE TABLE special (x integer);
CREATE TABLE fast (id bigint PRIMARY KEY);
