"""The wire protocol through the emulator: real clients work, bad input gets a clean error."""

from __future__ import annotations

import contextlib
import shutil
import socket
import struct
import subprocess
import uuid
from typing import Any
from urllib.parse import urlparse

import psycopg
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def _address(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    assert parsed.hostname is not None and parsed.port is not None
    return parsed.hostname, parsed.port


def _recv_all(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def _startup(version: int = 196608) -> bytes:
    body = b"user\0admin\0database\0postgres\0\0"
    return struct.pack("!II", len(body) + 8, version) + body


def test_pipeline_and_prepared_statements(conn: psycopg.Connection[Any]) -> None:
    table = f"p_{uuid.uuid4().hex[:8]}"
    conn.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, v text)")
    with conn.pipeline():
        for i in range(20):
            conn.execute(f"INSERT INTO {table} VALUES (%s, %s)", (i, f"v{i}"))
        cur = conn.execute(f"SELECT count(*) FROM {table}")
    assert cur.fetchone() == (20,)
    for i in range(8):  # prepared after a few executions
        row = conn.execute(f"SELECT v FROM {table} WHERE id = %s", (i,), prepare=True).fetchone()
        assert row == (f"v{i}",)
    with pytest.raises(psycopg.errors.FeatureNotSupported), conn.pipeline():
        conn.execute(f"INSERT INTO {table} VALUES (100, 'x')")
        conn.execute(f"CREATE INDEX {table}_v ON {table} (v)")
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_copy_from_stdin(conn: psycopg.Connection[Any]) -> None:
    table = f"c_{uuid.uuid4().hex[:8]}"
    conn.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, v text)")
    with conn.cursor().copy(f"COPY {table} (id, v) FROM STDIN") as copy:
        for i in range(500):
            copy.write_row((i, "x" * 100))
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (500,)
    with pytest.raises(psycopg.errors.ProgramLimitExceeded), \
            conn.cursor().copy(f"COPY {table} (id, v) FROM STDIN") as copy:
        for i in range(1000, 4100):
            copy.write_row((i, "y"))


def test_sqlalchemy_and_alembic(dsql_url: str) -> None:
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    # as on DSQL: SQLAlchemy's hstore probe uses a SAVEPOINT, which DSQL rejects
    engine = sa.create_engine(dsql_url.replace("postgresql://", "postgresql+psycopg://"),
                              use_native_hstore=False)
    table = f"sa_{uuid.uuid4().hex[:8]}"
    try:
        with engine.connect() as connection:
            ops = Operations(MigrationContext.configure(connection))
            ops.create_table(table, sa.Column("id", sa.BigInteger, primary_key=True,
                                                autoincrement=False),
                             sa.Column("name", sa.Text))
            connection.commit()
            ops.add_column(table, sa.Column("note", sa.Text))
            connection.commit()
            connection.execute(sa.text(f"INSERT INTO {table} (id, name) VALUES (1, 'a')"))
            connection.commit()
            names = connection.execute(sa.text(f"SELECT name FROM {table}")).scalars().all()
            assert names == ["a"]
            inspector = sa.inspect(connection)
            assert {c["name"] for c in inspector.get_columns(table)} == {"id", "name", "note"}
    finally:
        engine.dispose()


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql not installed")
def test_psql(dsql_url: str) -> None:
    ok = subprocess.run(["psql", dsql_url, "-XAtc", "SELECT 40 + 2"], capture_output=True,
                        text=True, timeout=30, check=False)
    assert ok.stdout.strip() == "42"
    bad = subprocess.run(["psql", dsql_url, "-Xc", "TRUNCATE x"], capture_output=True,
                         text=True, timeout=30, check=False)
    assert bad.returncode != 0
    assert "TRUNCATE is not supported" in bad.stderr


def test_unsupported_protocol_version_gets_a_clean_error(dsql_url: str) -> None:
    with socket.create_connection(_address(dsql_url)) as sock:
        sock.sendall(_startup(version=2 << 16))
        reply = _recv_all(sock)
    assert reply[:1] == b"E"
    assert b"08P01" in reply and b"unsupported frontend protocol" in reply


def test_ssl_request_is_declined_then_startup_works(dsql_url: str) -> None:
    with socket.create_connection(_address(dsql_url)) as sock:
        sock.sendall(struct.pack("!II", 8, 80877103))
        assert sock.recv(1) == b"N"
        sock.sendall(_startup())
        sock.settimeout(10)
        assert sock.recv(1) == b"R"  # authentication request: the server answered


@pytest.mark.parametrize("garbage", [
    b"\x00\x00\x00\x04",  # startup length too small
    b"\xff\xff\xff\xff\x00\x03\x00\x00",  # absurd startup length
    struct.pack("!II", 12, 196608) + b"ab\0\0",  # no user
])
def test_garbage_startup_is_refused(dsql_url: str, garbage: bytes) -> None:
    with socket.create_connection(_address(dsql_url)) as sock:
        sock.sendall(garbage)
        reply = _recv_all(sock)
    assert reply[:1] == b"E" and b"08P01" in reply


def test_garbage_message_after_startup_is_refused(dsql_url: str) -> None:
    with socket.create_connection(_address(dsql_url)) as sock:
        sock.sendall(_startup())
        sock.settimeout(10)
        data = b""
        while b"Z\x00\x00\x00\x05" not in data:  # wait for ReadyForQuery
            data += sock.recv(65536)
        sock.sendall(b"Q\x00\x00\x00\x01")  # a length below 4
        reply = _recv_all(sock)
    assert b"08P01" in reply


def test_unknown_message_type_is_refused(dsql_url: str) -> None:
    with socket.create_connection(_address(dsql_url)) as sock:
        sock.sendall(_startup())
        sock.settimeout(10)
        data = b""
        while b"Z\x00\x00\x00\x05" not in data:
            data += sock.recv(65536)
        sock.sendall(b"y\x00\x00\x00\x04")
        reply = _recv_all(sock)
    assert reply[:1] == b"E" and b"08P01" in reply


FRAGMENTS = [
    "CREATE", "INDEX", "ASYNC", "UNIQUE", "TABLE", "ALTER", "ON", "t", "(", ")", ",", ";",
    "SELECT", "INSERT", "INTO", "VALUES", "1", "'x'", "$1", "--", "/*", "*/", "BEGIN",
    "COMMIT", "ROLLBACK", "SAVEPOINT", "DROP", "CONSTRAINT", "VALIDATE", "NOT", "VALID",
    "WHERE", "DESC", "jsonb", "serial", "pg_advisory_lock(1)", "sys.wait_for_job('x')",
    "CALL", "TRUNCATE", "\u00e9", "\"q\"", "$$", "E'\\\\'", "ISOLATION", "LEVEL", "SET",
]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=12),
       st.booleans())
def test_fuzz_statement_fragments(dsql_url: str, words: list[str], simple: bool) -> None:
    statement = " ".join(words)
    with psycopg.connect(dsql_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute("SET statement_timeout = '5s'")
        cursor: psycopg.Cursor[Any] = psycopg.ClientCursor(conn) if simple else conn.cursor()
        with contextlib.suppress(psycopg.Error):
            cursor.execute(statement)
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK")
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_large_messages_both_ways(conn: psycopg.Connection[Any]) -> None:
    table = f"big_{uuid.uuid4().hex[:8]}"
    conn.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, v text)")
    value = "".join(chr(97 + i % 26) for i in range(3 * 1024 * 1024))
    conn.execute(f"INSERT INTO {table} VALUES (1, %s)", (value,))  # a 3 MiB Bind message
    row = conn.execute(f"SELECT v, length(v) FROM {table}").fetchone()  # a 3 MiB DataRow
    assert row == (value, len(value))
    assert conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.parametrize(("query", "params"), [
    ("SELECT pg_advisory_lock(hashtext(%s))", ("x",)),
    ("SELECT pg_advisory_lock(%s)", (1,)),
    ("SELECT pg_try_advisory_lock(%s, %s)", (1, 2)),
])
def test_rejected_statement_with_parameters(conn: psycopg.Connection[Any], query: str,
                                            params: tuple[Any, ...]) -> None:
    with pytest.raises(psycopg.errors.FeatureNotSupported, match="not supported"):
        conn.execute(query, params)
