"""Asynchronous jobs through the emulator (DSQL.md §4)."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import psycopg
import pytest


def _table(raw_conn: psycopg.Connection[Any]) -> str:
    name = f"job_{uuid.uuid4().hex[:10]}"
    raw_conn.execute(f"CREATE TABLE {name} (id bigint PRIMARY KEY, v text, n int)")
    return name


def _job(conn: psycopg.Connection[Any], job_id: str) -> tuple[Any, ...]:
    row = conn.execute("SELECT status, job_type, object_name, details FROM sys.jobs "
                       "WHERE job_id = %s", (job_id,)).fetchone()
    assert row is not None
    return tuple(row)


def _valid(raw_conn: psycopg.Connection[Any], index: str) -> bool | None:
    row = raw_conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)",
                           (index,)).fetchone()
    return None if row is None else bool(row[0])


def _wait(conn: psycopg.Connection[Any], job_id: str) -> bool:
    row = conn.execute("CALL sys.wait_for_job(%s)", (job_id,)).fetchone()
    assert row is not None
    return bool(row[0])


def test_index_async_returns_job_and_builds(conn: psycopg.Connection[Any],
                                            raw_conn: psycopg.Connection[Any]) -> None:
    table = _table(raw_conn)
    raw_conn.execute(f"INSERT INTO {table} SELECT g, 'v' || g FROM generate_series(1, 100) g")
    cur = conn.execute(f"CREATE INDEX ASYNC {table}_v ON {table} (v)")
    assert cur.description is not None and cur.description[0].name == "job_id"
    rows = cur.fetchall()
    assert len(rows) == 1
    job_id = rows[0][0]
    assert _wait(conn, job_id) is True
    assert _job(conn, job_id)[:3] == ("completed", "INDEX_BUILD", f"{table}_v")
    assert _valid(raw_conn, f"{table}_v") is True
    end = conn.execute("SELECT end_time >= start_time FROM sys.jobs WHERE job_id = %s",
                       (job_id,)).fetchone()
    assert end == (True,)


def test_rolled_back_transaction_leaves_no_job(conn: psycopg.Connection[Any],
                                               raw_conn: psycopg.Connection[Any]) -> None:
    table = _table(raw_conn)
    conn.execute("BEGIN")
    job_id = conn.execute(f"CREATE INDEX ASYNC {table}_v ON {table} (v)").fetchone()[0]  # type: ignore[index]
    with pytest.raises(psycopg.errors.FeatureNotSupported, match="ddl and dml"):
        conn.execute(f"INSERT INTO {table} VALUES (1, 'a', 1)")  # counts as the DDL
    conn.execute("ROLLBACK")
    assert conn.execute("SELECT count(*) FROM sys.jobs WHERE job_id = %s",
                        (job_id,)).fetchone() == (0,)
    time.sleep(0.3)
    assert _valid(raw_conn, f"{table}_v") is None


def test_build_starts_after_commit_and_is_invalid_while_building(
        conn: psycopg.Connection[Any], raw_conn: psycopg.Connection[Any], raw_url: str) -> None:
    table = _table(raw_conn)
    with psycopg.connect(raw_url) as writer:  # an open write transaction holds the build back
        writer.execute(f"INSERT INTO {table} VALUES (1, 'a', 1)")
        job_id = conn.execute(f"CREATE INDEX ASYNC {table}_v ON {table} (v)").fetchone()[0]  # type: ignore[index]
        deadline = time.monotonic() + 10
        while _valid(raw_conn, f"{table}_v") is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _valid(raw_conn, f"{table}_v") is False
        assert _job(conn, job_id)[0] == "processing"
        writer.commit()
    assert _wait(conn, job_id) is True
    assert _valid(raw_conn, f"{table}_v") is True


def test_drop_index_cancels_a_build(conn: psycopg.Connection[Any],
                                    raw_conn: psycopg.Connection[Any], raw_url: str,
                                    dsql_url: str) -> None:
    table = _table(raw_conn)
    errors: list[BaseException] = []
    with psycopg.connect(raw_url) as writer:
        writer.execute(f"INSERT INTO {table} VALUES (1, 'a', 1)")
        job_id = conn.execute(f"CREATE INDEX ASYNC {table}_v ON {table} (v)").fetchone()[0]  # type: ignore[index]
        deadline = time.monotonic() + 10
        while _job(conn, job_id)[0] != "processing" and time.monotonic() < deadline:
            time.sleep(0.05)

        def drop() -> None:
            try:
                with psycopg.connect(dsql_url, autocommit=True) as other:
                    other.execute(f"DROP INDEX IF EXISTS {table}_v")
            except BaseException as exc:  # reported below
                errors.append(exc)

        dropper = threading.Thread(target=drop)
        dropper.start()
        deadline = time.monotonic() + 10
        while _job(conn, job_id)[0] == "processing" and time.monotonic() < deadline:
            time.sleep(0.05)
        writer.commit()
        dropper.join(20)
    assert not errors
    assert _wait(conn, job_id) is False
    assert _job(conn, job_id)[0] == "cancelled"
    assert _valid(raw_conn, f"{table}_v") is None


def test_failed_unique_build_leaves_invalid_enforcing_index(
        conn: psycopg.Connection[Any], raw_conn: psycopg.Connection[Any]) -> None:
    table = _table(raw_conn)
    raw_conn.execute(f"INSERT INTO {table} VALUES (1, 'dup', 1), (2, 'dup', 2), (3, 'x', 3)")
    job_id = conn.execute(f"CREATE UNIQUE INDEX ASYNC {table}_u ON {table} (v)").fetchone()[0]  # type: ignore[index]
    assert _wait(conn, job_id) is False
    status, _, _, details = _job(conn, job_id)
    assert status == "failed"
    assert "dup" in details
    assert _valid(raw_conn, f"{table}_u") is False
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(f"INSERT INTO {table} VALUES (4, 'x', 4)")
    again = conn.execute(
        f"CREATE UNIQUE INDEX ASYNC IF NOT EXISTS {table}_u ON {table} (v)").fetchone()
    assert again is not None and _wait(conn, again[0]) is True


def test_wait_for_job_rules(conn: psycopg.Connection[Any],
                            raw_conn: psycopg.Connection[Any]) -> None:
    table = _table(raw_conn)
    job_id = conn.execute(f"CREATE INDEX ASYNC {table}_v ON {table} (v)").fetchone()[0]  # type: ignore[index]
    with pytest.raises(psycopg.Error):
        conn.execute("SELECT sys.wait_for_job(%s)", (job_id,))
    conn.execute("BEGIN")
    with pytest.raises(psycopg.Error):
        conn.execute("CALL sys.wait_for_job(%s)", (job_id,))
    conn.execute("ROLLBACK")
    assert _wait(conn, job_id) is True


def test_validate_constraint_async(conn: psycopg.Connection[Any],
                                   raw_conn: psycopg.Connection[Any]) -> None:
    table = _table(raw_conn)
    raw_conn.execute(f"INSERT INTO {table} VALUES (1, 'a', 5), (2, 'b', -1)")
    conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pos CHECK (n > 0) NOT VALID")
    job_id = conn.execute(
        f"ALTER TABLE ASYNC {table} VALIDATE CONSTRAINT {table}_pos").fetchone()[0]  # type: ignore[index]
    assert _wait(conn, job_id) is False
    assert _job(conn, job_id)[:2] == ("failed", "CONSTRAINT_VALIDATION")
    validated = "SELECT convalidated FROM pg_constraint WHERE conname = %s"
    assert raw_conn.execute(validated, (f"{table}_pos",)).fetchone() == (False,)
    conn.execute(f"DELETE FROM {table} WHERE n < 0")
    job_id = conn.execute(
        f"ALTER TABLE ASYNC {table} VALIDATE CONSTRAINT {table}_pos").fetchone()[0]  # type: ignore[index]
    assert _wait(conn, job_id) is True
    assert raw_conn.execute(validated, (f"{table}_pos",)).fetchone() == (True,)


def test_submit_job_cannot_run_anything_else(conn: psycopg.Connection[Any],
                                             raw_conn: psycopg.Connection[Any]) -> None:
    table = _table(raw_conn)
    job_id = conn.execute(
        "SELECT job_id FROM sys._submit_job('INDEX_BUILD', 'x', "
        "'ALTER ROLE admin SUPERUSER', %s, 1)", (table,)).fetchone()[0]  # type: ignore[index]
    assert _wait(conn, job_id) is False
    assert _job(conn, job_id)[0] == "failed"
    row = raw_conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = 'admin'").fetchone()
    assert row == (False,)


def test_drop_then_recreate_same_name_is_not_cancelled(
        conn: psycopg.Connection[Any], raw_conn: psycopg.Connection[Any]) -> None:
    """DROP INDEX cancels the builds that exist when it is sent, never a build of the same
    name submitted right after it (a revision that drops and recreates an index). After five
    runs psycopg prepares the statements: a prepared DROP INDEX cancels at every execution."""
    table = _table(raw_conn)
    raw_conn.execute(f"INSERT INTO {table} SELECT g, 'v' || g FROM generate_series(1, 50) g")
    index = f"{table}_v"
    building = conn.execute(f"CREATE INDEX ASYNC {index} ON {table} (v)").fetchone()[0]  # type: ignore[index]
    assert _wait(conn, building) is True
    for round_ in range(40):
        # a build not started yet has no index to drop
        conn.execute(f"DROP INDEX {'IF EXISTS ' if round_ % 2 else ''}{index}")
        job_id = conn.execute(f"CREATE INDEX ASYNC {index} ON {table} (v)").fetchone()[0]  # type: ignore[index]
        if round_ % 2:  # half the rounds drop a finished index, half one still building
            assert _wait(conn, job_id) is True, (round_, _job(conn, job_id))
            assert _valid(raw_conn, index) is True
        building = job_id
    assert _wait(conn, building) is True, _job(conn, building)
    assert _valid(raw_conn, index) is True


def test_drop_index_in_one_schema_leaves_builds_in_another(
        conn: psycopg.Connection[Any], raw_conn: psycopg.Connection[Any], raw_url: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    one, two = f"s1_{suffix}", f"s2_{suffix}"
    for schema in (one, two):
        raw_conn.execute(f"CREATE SCHEMA {schema}")
        raw_conn.execute(f"CREATE TABLE {schema}.t (id bigint PRIMARY KEY, v text)")
        raw_conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO admin")
        raw_conn.execute(f"ALTER TABLE {schema}.t OWNER TO admin")
    try:
        with psycopg.connect(raw_url) as writer:  # holds the build of two.ix back
            writer.execute(f"INSERT INTO {two}.t VALUES (1, 'a')")
            conn.execute(f"SET search_path = {two}")
            job_id = conn.execute("CREATE INDEX ASYNC ix ON t (v)").fetchone()[0]  # type: ignore[index]
            conn.execute("RESET search_path")
            deadline = time.monotonic() + 10
            while _job(conn, job_id)[0] != "processing" and time.monotonic() < deadline:
                time.sleep(0.05)
            conn.execute(f"DROP INDEX IF EXISTS {one}.ix")
            assert _job(conn, job_id)[0] == "processing"
            writer.commit()
        assert _wait(conn, job_id) is True
        assert _valid(raw_conn, f"{two}.ix") is True
    finally:
        for schema in (one, two):
            raw_conn.execute(f"DROP SCHEMA {schema} CASCADE")
