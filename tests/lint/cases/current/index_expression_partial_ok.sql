CREATE INDEX ASYNC ix ON users (lower(email)) WHERE deleted_at IS NULL;
-- @expect
