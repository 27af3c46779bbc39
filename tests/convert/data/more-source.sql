-- A second schema for a real pg_dump (tests/convert/test_samples.py): a domain, a cycling
-- sequence, an ALWAYS identity, storage parameters, a deferrable unique key, cidr, an UNLOGGED
-- table, bigserial, a stored generated column, arrays with NULLs, INCLUDE / partial / hash /
-- NULLS NOT DISTINCT indexes, a materialized view with an index, extended statistics, comments
-- on an index and a constraint, and 3,200 rows in one COPY (over the rows per transaction).
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE SEQUENCE cyc START 5 INCREMENT 5 MAXVALUE 1000 CYCLE;
CREATE TABLE dept (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, code char(3) UNIQUE DEFERRABLE INITIALLY DEFERRED, net cidr, budget posint, CONSTRAINT name_len CHECK (length(name) < 50)) WITH (fillfactor = 70);
CREATE UNLOGGED TABLE scratchpad (k text PRIMARY KEY, v json);
CREATE TABLE emp (id bigserial PRIMARY KEY, dept_id int REFERENCES dept ON DELETE CASCADE, email text NOT NULL, full_name text GENERATED ALWAYS AS (upper(email)) STORED, ticket int DEFAULT nextval('cyc'), skills text[], hired date DEFAULT CURRENT_DATE);
CREATE UNIQUE INDEX emp_email ON emp (lower(email)) INCLUDE (id);
CREATE INDEX emp_recent ON emp (hired) WHERE hired > '2020-01-01';
CREATE INDEX emp_dept_hash ON emp USING hash (dept_id);
CREATE UNIQUE INDEX dept_name_nnd ON dept (name) NULLS NOT DISTINCT;
CREATE MATERIALIZED VIEW dept_size AS SELECT dept_id, count(*) AS n FROM emp GROUP BY dept_id;
CREATE INDEX dept_size_n ON dept_size (n);
CREATE STATISTICS emp_stats (dependencies) ON dept_id, hired FROM emp;
CREATE VIEW emp_v AS SELECT e.id, e.email, d.name FROM emp e JOIN dept d ON d.id = e.dept_id;
COMMENT ON INDEX emp_email IS 'one per address';
COMMENT ON CONSTRAINT name_len ON dept IS 'short names';
INSERT INTO dept (name, code, net, budget) SELECT 'd' || i, lpad(i::text, 3, '0'), ('10.0.' || i || '.0/24')::cidr, i * 10 FROM generate_series(1, 20) i;
INSERT INTO emp (dept_id, email, skills, hired) SELECT 1 + i % 20, 'e' || i || '@x.org', CASE WHEN i % 5 = 0 THEN ARRAY['sql', NULL, 'q"t'] END, DATE '2019-06-01' + i FROM generate_series(1, 3200) i;
INSERT INTO scratchpad VALUES ('a', '{"x": [1, 2]}');
REFRESH MATERIALIZED VIEW dept_size;
