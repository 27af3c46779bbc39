/* header ; with semicolons */
CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $body$ SELECT 'a;b' $body$;
-- CREATE INDEX ix ON t (a);
SELECT 'CREATE INDEX x ON t (a);';
-- @expect
