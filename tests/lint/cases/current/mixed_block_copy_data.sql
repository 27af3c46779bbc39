BEGIN;
CREATE TABLE t (id int PRIMARY KEY, a int);
-- the rows
COPY t (id, a) FROM stdin;
1	10
2	\N
\.
CREATE TABLE u (id int PRIMARY KEY);
COPY u (id) FROM stdin;
7
\.
COMMIT;
-- @expect
-- mixed_ddl_dml_transaction fixed_with_warning @1:1
-- multi_ddl_transaction fixed_with_warning @1:1
-- @fixed
CREATE TABLE t (id int PRIMARY KEY, a int);
BEGIN;
-- the rows
COPY t (id, a) FROM stdin;
1	10
2	\N
\.
COMMIT;
CREATE TABLE u (id int PRIMARY KEY);
BEGIN;
COPY u (id) FROM stdin;
7
\.
COMMIT;
