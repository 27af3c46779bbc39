CREATE INDEX ASYNC ix ON docs USING gin (body);
-- @expect
-- index_using unfixable
