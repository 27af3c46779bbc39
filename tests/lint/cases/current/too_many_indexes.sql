CREATE TABLE wide (id bigint PRIMARY KEY, u text UNIQUE, c0 int, c1 int, c2 int, c3 int, c4 int, c5 int, c6 int, c7 int, c8 int, c9 int, c10 int, c11 int, c12 int, c13 int, c14 int, c15 int, c16 int, c17 int, c18 int, c19 int, c20 int, c21 int, c22 int, c23 int);
CREATE INDEX ASYNC ix0 ON wide (c0);
CREATE INDEX ASYNC ix1 ON wide (c1);
CREATE INDEX ASYNC ix2 ON wide (c2);
CREATE INDEX ASYNC ix3 ON wide (c3);
CREATE INDEX ASYNC ix4 ON wide (c4);
CREATE INDEX ASYNC ix5 ON wide (c5);
CREATE INDEX ASYNC ix6 ON wide (c6);
CREATE INDEX ASYNC ix7 ON wide (c7);
CREATE INDEX ASYNC ix8 ON wide (c8);
CREATE INDEX ASYNC ix9 ON wide (c9);
CREATE INDEX ASYNC ix10 ON wide (c10);
CREATE INDEX ASYNC ix11 ON wide (c11);
CREATE INDEX ASYNC ix12 ON wide (c12);
CREATE INDEX ASYNC ix13 ON wide (c13);
CREATE INDEX ASYNC ix14 ON wide (c14);
CREATE INDEX ASYNC ix15 ON wide (c15);
CREATE INDEX ASYNC ix16 ON wide (c16);
CREATE INDEX ASYNC ix17 ON wide (c17);
CREATE INDEX ASYNC ix18 ON wide (c18);
CREATE INDEX ASYNC ix19 ON wide (c19);
CREATE INDEX ASYNC ix20 ON wide (c20);
CREATE INDEX ASYNC ix21 ON wide (c21);
DROP INDEX ix0;
CREATE INDEX ASYNC ix_more ON wide (c22);
CREATE INDEX ASYNC ix_over ON wide (c23);
-- @expect
-- too_many_indexes unfixable @26:1
