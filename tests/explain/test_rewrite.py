"""UPDATE/DELETE -> the equivalent SELECT, and what explain refuses (no database)."""

from __future__ import annotations

import pytest

from dsql_migrate.errors import ExitCode
from dsql_migrate.explain import ExplainRefused, explainable


@pytest.mark.parametrize(("sql", "select"), [
    ("SELECT * FROM t WHERE a = 1", "SELECT * FROM t WHERE a = 1"),
    ("explain analyze SELECT a FROM t", "SELECT a FROM t"),
    ("UPDATE t SET a = 1, b = b + 1 WHERE c = 2;",
     "SELECT 1 AS a, b + 1 AS b FROM t WHERE c = 2"),
    ("UPDATE ONLY t AS x SET a = u.a FROM u JOIN v ON v.id = u.v_id WHERE x.id = u.t_id",
     "SELECT u.a AS a FROM ONLY t AS x, u INNER JOIN v ON v.id = u.v_id WHERE x.id = u.t_id"),
    ("UPDATE t SET (a, b) = (SELECT 1, 2) WHERE id = 3",
     "SELECT (SELECT 1, 2) FROM t WHERE id = 3"),
    ("WITH k AS (SELECT id FROM keys) UPDATE t SET a = 0 WHERE id IN (SELECT id FROM k)",
     "WITH k AS (SELECT id FROM keys) SELECT 0 AS a FROM t WHERE id IN (SELECT id FROM k)"),
    ("DELETE FROM t WHERE created < now() - interval '1 day'",
     "SELECT t.* FROM t WHERE created < now() - CAST('1 day' AS interval)"),
    ('DELETE FROM "Odd Table" o USING u WHERE o.id = u.id AND u.gone',
     'SELECT o.* FROM "Odd Table" AS o, u WHERE o.id = u.id AND u.gone'),
])
def test_rewrites_to_the_equivalent_select(sql: str, select: str) -> None:
    result = explainable(sql)
    assert result.select == select
    assert result.rewritten == (not sql.lower().lstrip().startswith(("select", "explain")))


@pytest.mark.parametrize(("sql", "message"), [
    ("INSERT INTO t VALUES (1)", "INSERT is not explained"),
    ("INSERT INTO t SELECT * FROM u", "INSERT is not explained"),
    ("DO $$ BEGIN PERFORM 1; END $$", "a DO block is procedural code"),
    ("CALL refresh()", "CALL is procedural code"),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", "procedural code"),
    ("CREATE TABLE t (a int)", "CREATE TABLE is not a query"),
    ("DROP TABLE t", "DROP is not a query"),
    ("SELECT * INTO new_t FROM t", "SELECT ... INTO creates a table"),
    ("SELECT * FROM t FOR UPDATE", "FOR UPDATE/SHARE"),
    ("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "the WITH query d writes"),
    ("SELECT 1; SELECT 2", "exactly one statement"),
    ("SELEC 1", "does not parse at line 1, column 1"),
    ("  ;  ", "nothing to explain"),
])
def test_refuses_what_is_not_a_read(sql: str, message: str) -> None:
    with pytest.raises(ExplainRefused) as caught:
        explainable(sql)
    assert message in caught.value.message
    assert caught.value.hint or "parse" in caught.value.message or "nothing" in message
    assert caught.value.exit_code is ExitCode.USAGE
