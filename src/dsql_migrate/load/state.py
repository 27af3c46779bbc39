"""What a load has done, in the runner's state schema (DESIGN.md §3.3), beside its tables.

``loads``
    one row per load: the table, the source, the source's fingerprint when the load began,
    the format options, status and times. Its key is the load's identity (:func:`load_key`):
    the same table, source and options are the same load, so running it again resumes it.
``load_batches``
    one row per committed batch: its byte range ``[start_offset, end_offset)`` in the source,
    rows, physical lines and a CRC-32 of its bytes. The row is inserted **in the same
    transaction** as the batch's rows, conditionally on the lease, so a batch is recorded exactly
    when its rows are in the table; its primary key (load, start offset) makes a second commit
    of the same batch impossible (a retry whose first COMMIT went through finds it recorded).

Everything is DSQL-legal: created on first use, one DDL statement per transaction, no SERIAL,
TEXT rather than JSONB. Batches never update a shared row (parallel workers would conflict under
optimistic concurrency): totals are sums over ``load_batches``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from ..runner.session import Conn, Session
from ..runner.state import StateStore

TABLES: dict[str, str] = {
    "loads": """
        CREATE TABLE IF NOT EXISTS {schema}.loads (
            load_id TEXT PRIMARY KEY,
            target TEXT NOT NULL,
            source TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            options TEXT NOT NULL,
            status TEXT NOT NULL,
            run_id TEXT,
            error TEXT,
            created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL,
            finished_at TIMESTAMPTZ
        )""",
    "load_batches": """
        CREATE TABLE IF NOT EXISTS {schema}.load_batches (
            load_id TEXT NOT NULL,
            start_offset BIGINT NOT NULL,
            end_offset BIGINT NOT NULL,
            rows BIGINT NOT NULL,
            lines BIGINT NOT NULL,
            checksum BIGINT NOT NULL,
            run_id TEXT NOT NULL,
            committed_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (load_id, start_offset)
        )""",
}

RUNNING = "running"
DONE = "done"
FAILED = "failed"


def load_key(table: str, source: str, options: Mapping[str, Any]) -> str:
    """The identity of a load: its table, source and the options that shape its batches'
    content. (Batch sizes and parallelism are left out: they may change between runs.)"""
    text = json.dumps({"table": table, "source": source, **options}, sort_keys=True)
    return "load:" + hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class LoadRow:
    load_id: str
    target: str
    source: str
    fingerprint: str
    status: str


@dataclass(frozen=True)
class BatchRow:
    start: int
    end: int
    rows: int
    lines: int
    checksum: int


class LoadStore:
    """The load tables in the runner's state schema."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def table(self, name: str) -> sql.Composed:
        return self.store.table(name)

    def ensure(self, session: Session) -> None:
        """The runner's tables (the lock lives there), then the load tables."""
        self.store.ensure(session)
        existing = session.autocommit("read the state tables", self.store.existing_tables)
        for name, ddl in TABLES.items():
            if name not in existing:
                statement = sql.SQL(ddl.strip()).format(schema=sql.Identifier(self.store.schema))
                session.autocommit(f"create the state table {name}",
                                   functools.partial(_create, statement=statement))

    def get_load(self, conn: Conn, load_id: str) -> LoadRow | None:
        row = conn.execute(sql.SQL(
            "SELECT load_id, target, source, fingerprint, status FROM {} WHERE load_id = %s"
        ).format(self.table("loads")), (load_id,)).fetchone()
        return None if row is None else LoadRow(*row)

    def start_load(self, conn: Conn, load_id: str, *, target: str, source: str,
                   fingerprint: str, options: Mapping[str, Any], run_id: str) -> None:
        conn.execute(sql.SQL(
            "INSERT INTO {} (load_id, target, source, fingerprint, options, status, run_id, "
            "created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, now(), now()) "
            "ON CONFLICT (load_id) DO UPDATE SET status = excluded.status, "
            "run_id = excluded.run_id, fingerprint = excluded.fingerprint, error = NULL, "
            "updated_at = now(), finished_at = NULL").format(self.table("loads")),
            (load_id, target, source, fingerprint, json.dumps(dict(options), sort_keys=True),
             RUNNING, run_id))

    def finish_load(self, conn: Conn, load_id: str, status: str, error: str | None) -> None:
        conn.execute(sql.SQL(
            "UPDATE {} SET status = %s, error = %s, updated_at = now(), "
            "finished_at = CASE WHEN %s = 'done' THEN now() END WHERE load_id = %s").format(
            self.table("loads")), (status, error, status, load_id))

    def batches(self, conn: Conn, load_id: str) -> list[BatchRow]:
        rows = conn.execute(sql.SQL(
            "SELECT start_offset, end_offset, rows, lines, checksum FROM {} WHERE load_id = %s "
            "ORDER BY start_offset").format(self.table("load_batches")), (load_id,)).fetchall()
        return [BatchRow(*(int(v) for v in r)) for r in rows]

    def forget(self, conn: Conn, load_id: str, limit: int) -> int:
        """Delete up to ``limit`` batch records of a load (``--restart``); how many went."""
        cur = conn.execute(sql.SQL(
            "DELETE FROM {t} WHERE load_id = %s AND start_offset IN (SELECT start_offset "
            "FROM {t} WHERE load_id = %s LIMIT %s)").format(t=self.table("load_batches")),
            (load_id, load_id, limit))
        return max(cur.rowcount, 0)

    def record_batch(self, conn: Conn, load_id: str, *, start: int, end: int, rows: int,
                     lines: int, checksum: int, run_id: str,
                     lease: tuple[sql.Composable, tuple[Any, ...]]) -> bool:
        """Record a batch in its own transaction, while this run holds the lease and the batch
        is not recorded yet. False: either was not the case (the caller tells which)."""
        condition, params = lease
        row = conn.execute(sql.SQL(
            "INSERT INTO {} (load_id, start_offset, end_offset, rows, lines, checksum, run_id, "
            "committed_at) SELECT %s, %s, %s, %s, %s, %s, %s, now() WHERE {} "
            "ON CONFLICT (load_id, start_offset) DO NOTHING RETURNING start_offset").format(
            self.table("load_batches"), condition),
            (load_id, start, end, rows, lines, checksum, run_id, *params)).fetchone()
        return row is not None

    def batch_at(self, conn: Conn, load_id: str, start: int) -> BatchRow | None:
        row = conn.execute(sql.SQL(
            "SELECT start_offset, end_offset, rows, lines, checksum FROM {} "
            "WHERE load_id = %s AND start_offset = %s").format(self.table("load_batches")),
            (load_id, start)).fetchone()
        return None if row is None else BatchRow(*(int(v) for v in row))


def _create(conn: Conn, statement: sql.Composed) -> None:
    # two loads creating the table at once (PostgreSQL's pg_type race)
    with contextlib.suppress(psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
        conn.execute(statement)
