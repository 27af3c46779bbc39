"""Transaction rules through the emulator (DSQL.md §2, §3)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg
import pytest
from psycopg import pq


def _table(raw_conn: psycopg.Connection[Any], columns: str = "id bigint PRIMARY KEY, v text",
           ) -> str:
    name = f"tx_{uuid.uuid4().hex[:10]}"
    raw_conn.execute(f"CREATE TABLE {name} ({columns})")
    return name


def _exists(raw_conn: psycopg.Connection[Any], name: str) -> bool:
    row = raw_conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
    return bool(row and row[0])


def test_isolation_is_repeatable_read(conn: psycopg.Connection[Any]) -> None:
    row = conn.execute("SHOW transaction_isolation").fetchone()
    assert row == ("repeatable read",)


def test_two_ddl_in_one_transaction_fail(conn: psycopg.Connection[Any],
                                         raw_conn: psycopg.Connection[Any]) -> None:
    a, b = f"t_{uuid.uuid4().hex[:8]}", f"t_{uuid.uuid4().hex[:8]}"
    conn.execute("BEGIN")
    conn.execute(f"CREATE TABLE {a} (id bigint PRIMARY KEY)")
    with pytest.raises(psycopg.errors.FeatureNotSupported, match="multiple ddl"):
        conn.execute(f"CREATE TABLE {b} (id bigint PRIMARY KEY)")
    assert conn.info.transaction_status == pq.TransactionStatus.INERROR
    conn.execute("ROLLBACK")
    assert not _exists(raw_conn, a)


def test_multi_statement_query_is_one_transaction(conn: psycopg.Connection[Any],
                                                  raw_conn: psycopg.Connection[Any]) -> None:
    a, b = f"t_{uuid.uuid4().hex[:8]}", f"t_{uuid.uuid4().hex[:8]}"
    cur = psycopg.ClientCursor(conn)
    with pytest.raises(psycopg.errors.FeatureNotSupported):
        cur.execute(f"CREATE TABLE {a} (id bigint PRIMARY KEY); "
                    f"CREATE TABLE {b} (id bigint PRIMARY KEY)")
    assert not _exists(raw_conn, a)
    assert not _exists(raw_conn, b)
    with pytest.raises(psycopg.errors.FeatureNotSupported, match="ddl and dml"):
        cur.execute(f"CREATE TABLE {a} (id bigint PRIMARY KEY); INSERT INTO {a} VALUES (1)")
    assert not _exists(raw_conn, a)


@pytest.mark.parametrize("ddl_first", [True, False])
def test_ddl_and_dml_never_mix(ddl_first: bool, conn: psycopg.Connection[Any],
                               raw_conn: psycopg.Connection[Any]) -> None:
    table = _table(raw_conn)
    ddl = f"ALTER TABLE {table} ADD COLUMN extra int"
    dml = f"INSERT INTO {table} VALUES (1, 'a')"
    conn.execute("BEGIN")
    conn.execute(ddl if ddl_first else dml)
    with pytest.raises(psycopg.errors.FeatureNotSupported,
                       match="ddl and dml are not supported in the same transaction"):
        conn.execute(dml if ddl_first else ddl)
    conn.execute("ROLLBACK")
    assert raw_conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)


def test_reads_after_ddl_are_fine(conn: psycopg.Connection[Any],
                                  raw_conn: psycopg.Connection[Any]) -> None:
    table = _table(raw_conn)
    with conn.transaction():
        conn.execute(f"ALTER TABLE {table} ADD COLUMN extra int")
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)


def test_row_limit_rolls_back_everything(conn: psycopg.Connection[Any],
                                         raw_conn: psycopg.Connection[Any]) -> None:
    table = _table(raw_conn)
    with pytest.raises(psycopg.errors.ProgramLimitExceeded,
                       match="transaction row limit exceeded"):
        conn.execute(f"INSERT INTO {table} SELECT g, 'x' FROM generate_series(1, 3001) g")
    conn.execute("BEGIN")
    conn.execute(f"INSERT INTO {table} SELECT g, 'x' FROM generate_series(1, 2000) g")
    with pytest.raises(psycopg.errors.ProgramLimitExceeded) as info:
        conn.execute(f"UPDATE {table} SET v = 'y' WHERE id <= 1001")
    assert info.value.sqlstate == "54000"
    conn.execute("ROLLBACK")
    assert raw_conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
    # exactly at the limit is fine
    conn.execute(f"INSERT INTO {table} SELECT g, 'x' FROM generate_series(1, 3000) g")
    assert raw_conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (3000,)


def test_size_limit(conn: psycopg.Connection[Any], raw_conn: psycopg.Connection[Any]) -> None:
    table = _table(raw_conn, "id bigint PRIMARY KEY, v bytea")
    raw_conn.execute(f"ALTER TABLE {table} ALTER COLUMN v SET STORAGE EXTERNAL")
    with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="size limit"):
        conn.execute(f"INSERT INTO {table} SELECT g, decode(repeat('ab', 4 * 1024 * 1024), "
                     "'hex') FROM generate_series(1, 3) g")
    assert raw_conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)


def test_raw_url_has_no_rules(raw_conn: psycopg.Connection[Any]) -> None:
    table = _table(raw_conn)
    raw_conn.execute(f"INSERT INTO {table} SELECT g, 'x' FROM generate_series(1, 3500) g")
    raw_conn.execute(f"CREATE INDEX ON {table} (v)")


def test_transaction_age_limit(emulator: Any, dsql_url: str) -> None:
    emulator.set_faults(transaction_age=0.5)
    with psycopg.connect(dsql_url) as conn:
        conn.execute("SELECT 1")
        time.sleep(0.7)
        with pytest.raises(psycopg.errors.ProgramLimitExceeded,
                           match=r"transaction age limit of 0.5s exceeded"):
            conn.execute("SELECT 2")
        conn.rollback()
        conn.execute("SELECT 3")
        time.sleep(0.7)
        with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="age limit"):
            conn.commit()
        assert conn.info.transaction_status == pq.TransactionStatus.IDLE


def test_index_limit_counts_building_indexes(conn: psycopg.Connection[Any],
                                             raw_conn: psycopg.Connection[Any]) -> None:
    columns = ", ".join(f"c{i} int" for i in range(30))
    table = _table(raw_conn, f"id bigint PRIMARY KEY, {columns}")
    for i in range(22):  # with the primary key: 23 indexes
        raw_conn.execute(f"CREATE INDEX {table}_i{i} ON {table} (c{i})")
    conn.execute(f"CREATE INDEX ASYNC {table}_i22 ON {table} (c22)")  # the 24th
    with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="too many indexes"):
        conn.execute(f"CREATE INDEX ASYNC {table}_i23 ON {table} (c23)")


def test_column_limit(conn: psycopg.Connection[Any]) -> None:
    too_many = ", ".join(f"c{i} int" for i in range(256))
    with pytest.raises(psycopg.Error) as info:
        conn.execute(f"CREATE TABLE wide_{uuid.uuid4().hex[:6]} ({too_many})")
    assert info.value.sqlstate == "54011"
    fine = ", ".join(f"c{i} int" for i in range(255))
    conn.execute(f"CREATE TABLE wide_{uuid.uuid4().hex[:6]} ({fine})")


def test_schema_and_table_limits(conn: psycopg.Connection[Any],
                                 raw_conn: psycopg.Connection[Any]) -> None:
    schemas = raw_conn.execute(
        "SELECT count(*) FROM pg_namespace WHERE nspname NOT IN "
        "('public', 'sys', 'information_schema') AND nspname NOT LIKE 'pg\\_%'").fetchone()
    assert schemas is not None
    # the limits are the profile's (10 schemas, 1,000 tables); lowered here to reach them
    conn.execute(f"SET dsql.schema_limit = '{schemas[0]}'")
    with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="too many schemas"):
        conn.execute(f"CREATE SCHEMA s_{uuid.uuid4().hex[:8]}")
    tables = raw_conn.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('sys', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_%'").fetchone()
    assert tables is not None
    conn.execute(f"SET dsql.table_limit = '{tables[0]}'")
    name = f"t_{uuid.uuid4().hex[:8]}"
    with pytest.raises(psycopg.errors.ProgramLimitExceeded, match="too many tables"):
        conn.execute(f"CREATE TABLE {name} (id bigint PRIMARY KEY)")
    assert not _exists(raw_conn, name)
    conn.execute("RESET dsql.table_limit")
    conn.execute(f"CREATE TABLE {name} (id bigint PRIMARY KEY)")
