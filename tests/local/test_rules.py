"""The proxy's statement rules without a database: fast path and rewriting."""

from __future__ import annotations

import pytest

from dsql_migrate.local import rules
from dsql_migrate.profiles import CLASSIC, CURRENT


@pytest.mark.parametrize("sql", [
    "SELECT 1", "select * from t where id = $1", "INSERT INTO t VALUES ($1, $2)",
    "UPDATE t SET v = $1 WHERE id = $2", "DELETE FROM t WHERE id = 1", "BEGIN", "COMMIT",
    "ROLLBACK", "begin read only", "SELECT 1;", "WITH x AS (SELECT 1) SELECT * FROM x",
])
def test_ordinary_statements_take_the_fast_path(sql: str) -> None:
    assert not rules.needs_check(sql)
    assert rules.rewrite(sql, CURRENT).sql is None


@pytest.mark.parametrize("sql", [
    "SELECT pg_advisory_lock(1)", "SELECT * INTO x FROM t", "SELECT 1; SELECT 2",
    "BEGIN ISOLATION LEVEL SERIALIZABLE", "ROLLBACK TO s", "CREATE TABLE t (id int)",
    "SELECT 1 -- comment", "CALL sys.wait_for_job('x')",
])
def test_suspicious_statements_are_checked(sql: str) -> None:
    assert rules.needs_check(sql)


def test_only_the_rejected_statement_is_replaced() -> None:
    result = rules.rewrite("INSERT INTO a VALUES (1); TRUNCATE a; SELECT 'é'", CURRENT)
    assert result.sql is not None
    assert result.sql.startswith("INSERT INTO a VALUES (1); SELECT sys.dsql_error('0A000', ")
    assert "'TRUNCATE is not supported'" in result.sql
    assert result.sql.endswith("; SELECT 'é'")


def test_async_index_becomes_a_job() -> None:
    result = rules.rewrite('CREATE UNIQUE INDEX ASYNC "My Idx" ON s.t (a) INCLUDE (b)', CURRENT)
    assert result.sql is not None
    assert result.sql.startswith("SELECT job_id FROM sys._submit_job('INDEX_BUILD', 'My Idx', ")
    assert "CREATE UNIQUE INDEX CONCURRENTLY \"My Idx\" ON s.t (a) INCLUDE (b)" in result.sql
    assert "'s.t'" in result.sql


def test_validate_async_depends_on_the_profile() -> None:
    sql = "ALTER TABLE ASYNC t VALIDATE CONSTRAINT c"
    current = rules.rewrite(sql, CURRENT).sql
    classic = rules.rewrite(sql, CLASSIC).sql
    assert current is not None and "CONSTRAINT_VALIDATION" in current
    assert classic is not None and "ALTER TABLE ASYNC is not supported" in classic


def test_drop_index_names_are_reported() -> None:
    assert rules.rewrite("DROP INDEX a, s.b", CURRENT).dropped_indexes == ((None, "a"),
                                                                             ("s", "b"))


def test_syntax_errors_are_left_to_postgresql() -> None:
    assert rules.rewrite("CREATE TABLE (", CURRENT).sql is None
    assert rules.rewrite("CREATE INDEX ASYNC s.i ON t (a)", CURRENT).sql is None


def test_quotes_in_messages_are_escaped() -> None:
    result = rules.rewrite("CREATE FUNCTION f() RETURNS int LANGUAGE \"it's\" AS 'x'", CURRENT)
    assert result.sql is not None
    assert "it''s" in result.sql
