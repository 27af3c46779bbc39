CREATE SEQUENCE s1;
CREATE SEQUENCE s2 AS integer CACHE 10;
CREATE SEQUENCE s3 CACHE 1;
ALTER SEQUENCE s3 CACHE 100;
-- @expect
-- sequence_cache_missing fixed @1:1
-- sequence_cache fixed_with_warning @2:1
-- sequence_type fixed_with_warning @2:1
-- sequence_cache fixed_with_warning @4:1
-- @fixed
CREATE SEQUENCE s1 CACHE 1;
CREATE SEQUENCE s2 AS bigint CACHE 1;
CREATE SEQUENCE s3 CACHE 1;
ALTER SEQUENCE s3 CACHE 1;
