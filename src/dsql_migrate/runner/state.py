"""The runner's state tables (DESIGN.md §3.3), in schema ``dsql_migrate`` by default.

``plans``
    one row per plan ever applied: hash, label, the plan JSON, status, times.
``steps``
    one row per (plan hash, step id): status, attempts, statements done, rows and batches done
    (a batched step's cursors are its lanes), job id, the figures of a verification, the error
    and the SQL that failed, times.
``lanes``
    the keyset cursors of a batched step: one row per lane, a disjoint key range ``(start, end]``
    of the table walked by its own connection. A lane's batch advances its cursor in the same
    transaction as the batch itself; the update names the run that owns the lane and the number
    of batches it expects done, so it doubles as the fence: a runner that took over the lane,
    or a stale cursor, makes it match nothing and the batch rolls back.
``batches``
    one row per committed batch of a batched step and lane, inserted *in the same transaction*
    as the batch itself and the cursor advance; its primary key makes a second execution of the
    same batch impossible to commit, and the table is the audit trail the tests read.
``locks``
    the lease lock (:mod:`.lock`).
``cdc`` and ``cdc_marker`` (created by the first ``--writes=cdc`` recreation)
    one row per table a ``--writes=cdc`` recreation copies (plan hash, table): the moment the
    copy began (recorded before its first batch; the runner reads the CDC stream from a margin
    before it, so a resumed run starts early enough), and the write freeze of its cut-over:
    the privileges revoked, recorded *before* the REVOKE so that they are always given back,
    even after a kill
    (:mod:`.cdc.freeze`); ``cdc_marker``: rows the runner inserts to see on the stream how far
    it has delivered (:mod:`.cdc.marker`).

Everything is DSQL-legal: the tables are created on first use, one DDL statement per transaction;
no SERIAL, no JSONB (TEXT holding JSON), no defaults that need a sequence.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from ..errors import ConfigError
from ..plan import Plan
from .session import Conn, Session

log = logging.getLogger(__name__)

DEFAULT_SCHEMA = "dsql_migrate"

# plan / step statuses
PENDING = "pending"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
STOPPED = "stopped"  # a plan that stopped before a destructive step it was not allowed to run
ABANDONED = "abandoned"  # left as it was for another plan (--abandon-previous)

TABLES: dict[str, str] = {
    "plans": """
        CREATE TABLE IF NOT EXISTS {schema}.plans (
            hash TEXT PRIMARY KEY,
            label TEXT,
            profile TEXT,
            plan TEXT NOT NULL,
            status TEXT NOT NULL,
            step_count INTEGER NOT NULL,
            run_id TEXT,
            error TEXT,
            created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL,
            finished_at TIMESTAMPTZ
        )""",
    "steps": """
        CREATE TABLE IF NOT EXISTS {schema}.steps (
            plan_hash TEXT NOT NULL,
            step INTEGER NOT NULL,
            kind TEXT NOT NULL,
            summary TEXT,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            statements_done INTEGER NOT NULL,
            rows_done BIGINT NOT NULL,
            batches_done BIGINT NOT NULL,
            rows_estimate BIGINT,
            job_id TEXT,
            figures TEXT,
            error TEXT,
            error_sql TEXT,
            run_id TEXT,
            started_at TIMESTAMPTZ,
            finished_at TIMESTAMPTZ,
            updated_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (plan_hash, step)
        )""",
    "lanes": """
        CREATE TABLE IF NOT EXISTS {schema}.lanes (
            plan_hash TEXT NOT NULL,
            step INTEGER NOT NULL,
            lane INTEGER NOT NULL,
            start_key TEXT,
            end_key TEXT,
            cursor TEXT,
            batches_done BIGINT NOT NULL,
            batch_size INTEGER,
            done BOOLEAN NOT NULL,
            run_id TEXT,
            updated_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (plan_hash, step, lane)
        )""",
    "batches": """
        CREATE TABLE IF NOT EXISTS {schema}.batches (
            plan_hash TEXT NOT NULL,
            step INTEGER NOT NULL,
            lane INTEGER NOT NULL,
            batch INTEGER NOT NULL,
            after_key TEXT,
            upto_key TEXT NOT NULL,
            rows BIGINT NOT NULL,
            run_id TEXT NOT NULL,
            committed_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (plan_hash, step, lane, batch)
        )""",
    "locks": """
        CREATE TABLE IF NOT EXISTS {schema}.locks (
            name TEXT PRIMARY KEY,
            owner TEXT,
            host TEXT,
            pid INTEGER,
            run_id TEXT,
            fencing_token BIGINT NOT NULL,
            acquired_at TIMESTAMPTZ,
            expires_at TIMESTAMPTZ NOT NULL,
            heartbeat_at TIMESTAMPTZ
        )""",
}

#: tables made on first use by the feature that needs them, not by :meth:`StateStore.ensure`
ON_DEMAND: dict[str, str] = {
    "cdc": """
        CREATE TABLE IF NOT EXISTS {schema}.cdc (
            plan_hash TEXT NOT NULL,
            source_table TEXT NOT NULL,
            stream_start TIMESTAMPTZ NOT NULL,
            synced_to TIMESTAMPTZ,
            frozen BOOLEAN NOT NULL,
            grants TEXT,
            frozen_at TIMESTAMPTZ,
            unfrozen_at TIMESTAMPTZ,
            freeze_ms BIGINT,
            run_id TEXT,
            updated_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (plan_hash, source_table)
        )""",
    "cdc_marker": """
        CREATE TABLE IF NOT EXISTS {schema}.cdc_marker (
            marker TEXT PRIMARY KEY,
            plan_hash TEXT NOT NULL,
            source_table TEXT NOT NULL,
            written_at TIMESTAMPTZ NOT NULL
        )""",
}


@dataclass(frozen=True)
class PlanRow:
    hash: str
    label: str | None
    profile: str | None
    plan: str
    status: str
    step_count: int
    run_id: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "hash": self.hash,
            "label": self.label,
            "profile": self.profile,
            "status": self.status,
            "steps": self.step_count,
            "run_id": self.run_id,
            "error": self.error,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "finished_at": _iso(self.finished_at),
        }


@dataclass(frozen=True)
class StepRow:
    plan_hash: str
    step: int
    kind: str
    summary: str | None
    status: str
    attempts: int
    statements_done: int
    rows_done: int
    batches_done: int
    rows_estimate: int | None
    job_id: str | None
    figures: str | None
    error: str | None
    error_sql: str | None
    run_id: str | None
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "kind": self.kind,
            "summary": self.summary,
            "status": self.status,
            "attempts": self.attempts,
            "rows_done": self.rows_done,
            "rows_estimate": self.rows_estimate,
            "batches_done": self.batches_done,
            "job_id": self.job_id,
            "figures": None if self.figures is None else json.loads(self.figures),
            "error": self.error,
            "error_sql": self.error_sql,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def validate_schema_name(name: str) -> str:
    if not name or len(name.encode()) > 63 or not name.replace("_", "a").isalnum() \
            or name[0].isdigit():
        raise ConfigError(f"invalid state schema name {name!r}",
                          hint="use a plain identifier such as 'dsql_migrate'")
    return name


class StateStore:
    """Reads and writes the state tables; every method runs in the caller's transaction."""

    def __init__(self, schema: str = DEFAULT_SCHEMA) -> None:
        self.schema = validate_schema_name(schema)

    def table(self, name: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(name))

    # -- creation --------------------------------------------------------------------------------

    def existing_tables(self, conn: Conn) -> set[str]:
        rows = conn.execute(
            "SELECT c.relname FROM pg_catalog.pg_class c "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = 'r'", (self.schema,)).fetchall()
        return {str(r[0]) for r in rows}

    def schema_exists(self, conn: Conn) -> bool:
        row = conn.execute("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s",
                           (self.schema,)).fetchone()
        return row is not None

    def ensure(self, session: Session) -> bool:
        """Create what is missing, one DDL statement per transaction. True if anything was."""
        created = False
        if not session.autocommit("state schema", self.schema_exists):
            self._create(session, "schema", sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                sql.Identifier(self.schema)), self.schema_exists)
            created = True
        existing = session.autocommit("state tables", self.existing_tables)
        self._refuse_old_layout(session, existing)
        for name, ddl in TABLES.items():
            if name in existing:
                continue
            statement = sql.SQL(ddl.strip()).format(schema=sql.Identifier(self.schema))
            self._create(session, f"state table {name}", statement,
                         lambda c, n=name: n in self.existing_tables(c))
            created = True
        return created

    def ensure_on_demand(self, session: Session, name: str) -> None:
        """Create the on-demand table ``name`` (:data:`ON_DEMAND`) unless it exists."""
        if name in session.autocommit("state tables", self.existing_tables):
            return
        statement = sql.SQL(ON_DEMAND[name].strip()).format(schema=sql.Identifier(self.schema))
        self._create(session, f"state table {name}", statement,
                     lambda c: name in self.existing_tables(c))

    #: columns of an earlier layout: (table, column, present in the earlier layout or not)
    _LAYOUT = (("batches", "lane", False), ("steps", "cursor", True),
               ("steps", "batch_size", True))

    def _refuse_old_layout(self, session: Session, existing: set[str]) -> None:
        """State tables made by an earlier dsql-migrate: batches without lanes, steps with the
        cursor and batch size the lanes took over. Refused, never mixed with the new ones."""
        def columns(conn: Conn) -> set[tuple[str, str]]:
            rows = conn.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = %s", (self.schema,)).fetchall()
            return {(str(r[0]), str(r[1])) for r in rows}
        if not existing & {table for table, _, _ in self._LAYOUT}:
            return
        have = session.autocommit("state table layout", columns)
        for table, column, old in self._LAYOUT:
            if table in existing and ((table, column) in have) == old:
                what = f"{table} with {column}" if old else f"{table} without {column}s"
                raise ConfigError(
                    f"the state tables in schema {self.schema!r} were created by an earlier "
                    f"dsql-migrate ({what})",
                    hint=f"once 'dsql-migrate status' of the earlier version shows no "
                    f"unfinished plan, drop the table {self.schema}.{table}; the runner "
                    "creates it anew")

    def _create(self, session: Session, what: str, statement: sql.Composed,
                exists: Any) -> None:
        def run(conn: Conn) -> None:
            try:
                conn.execute(statement)
            except psycopg.errors.UniqueViolation:
                # two runners creating the same table at once (PostgreSQL's pg_type race)
                if not exists(conn):
                    raise
            except psycopg.errors.DuplicateTable:
                pass
        session.autocommit(what, run)
        log.info("created %s in schema %s", what, self.schema)

    # -- plans -----------------------------------------------------------------------------------

    def get_plan(self, conn: Conn, plan_hash: str) -> PlanRow | None:
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(sql.SQL("SELECT * FROM {} WHERE hash = %s").format(
                self.table("plans")), (plan_hash,)).fetchone()
        return None if row is None else PlanRow(**row)

    def unfinished_plans(self, conn: Conn) -> list[PlanRow]:
        with conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(sql.SQL(
                "SELECT * FROM {} WHERE status NOT IN (%s, %s) ORDER BY created_at").format(
                self.table("plans")), (DONE, ABANDONED)).fetchall()
        return [PlanRow(**r) for r in rows]

    def latest_plan(self, conn: Conn) -> PlanRow | None:
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(sql.SQL(
                "SELECT * FROM {} ORDER BY updated_at DESC LIMIT 1").format(
                self.table("plans"))).fetchone()
        return None if row is None else PlanRow(**row)

    def finished_plans(self, conn: Conn, limit: int) -> list[PlanRow]:
        """The ``limit`` plans that finished last, newest first."""
        with conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(sql.SQL(
                "SELECT * FROM {} WHERE status = %s AND finished_at IS NOT NULL "
                "ORDER BY finished_at DESC LIMIT %s").format(self.table("plans")),
                (DONE, limit)).fetchall()
        return [PlanRow(**r) for r in rows]

    def insert_plan(self, conn: Conn, plan: Plan, *, label: str | None, run_id: str) -> None:
        conn.execute(sql.SQL(
            "INSERT INTO {} (hash, label, profile, plan, status, step_count, run_id, "
            "created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, now(), now())").format(
            self.table("plans")),
            (plan.hash, label, plan.profile, plan.to_json(), RUNNING, len(plan.steps), run_id))

    def insert_steps(self, conn: Conn, plan_hash: str, steps: Sequence[Any]) -> None:
        """The state rows of ``steps`` (plan steps): keep them well under the row limit per
        transaction; the plan row is inserted first, on its own (:meth:`insert_plan`)."""
        rows = [(plan_hash, s.id, s.kind.value, s.summary, PENDING, s.estimate.rows)
                for s in steps]
        with conn.cursor() as cur:
            cur.executemany(sql.SQL(
                "INSERT INTO {} (plan_hash, step, kind, summary, status, attempts, "
                "statements_done, rows_done, batches_done, rows_estimate, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, 0, 0, 0, 0, %s, now())").format(
                self.table("steps")), rows)

    def set_plan_status(self, conn: Conn, plan_hash: str, status: str, *, run_id: str,
                        error: str | None = None) -> None:
        finished = sql.SQL(", finished_at = now()") if status == DONE else sql.SQL("")
        conn.execute(sql.SQL(
            "UPDATE {} SET status = %s, run_id = %s, error = %s, updated_at = now(){} "
            "WHERE hash = %s").format(self.table("plans"), finished),
            (status, run_id, error, plan_hash))

    # -- steps -----------------------------------------------------------------------------------

    def get_steps(self, conn: Conn, plan_hash: str) -> list[StepRow]:
        with conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(sql.SQL(
                "SELECT * FROM {} WHERE plan_hash = %s ORDER BY step").format(
                self.table("steps")), (plan_hash,)).fetchall()
        return [StepRow(**r) for r in rows]

    def get_step(self, conn: Conn, plan_hash: str, step: int, *,
                 for_update: bool = False) -> StepRow:
        lock = sql.SQL(" FOR UPDATE") if for_update else sql.SQL("")
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(sql.SQL(
                "SELECT * FROM {} WHERE plan_hash = %s AND step = %s{}").format(
                self.table("steps"), lock), (plan_hash, step)).fetchone()
        if row is None:  # pragma: no cover - rows are inserted with the plan
            raise LookupError(f"no state row for step {step} of plan {plan_hash}")
        return StepRow(**row)

    def update_step(self, conn: Conn, plan_hash: str, step: int,
                    values: Mapping[str, Any], *, increments: Sequence[str] = ()) -> None:
        """Set ``values`` (and add 1 to each column in ``increments``) on one step row."""
        parts: list[sql.Composable] = [sql.SQL("{} = %s").format(sql.Identifier(k)) for k in values]
        parts += [sql.SQL("{0} = {0} + 1").format(sql.Identifier(k)) for k in increments]
        parts.append(sql.SQL("updated_at = now()"))
        conn.execute(sql.SQL("UPDATE {} SET {} WHERE plan_hash = %s AND step = %s").format(
            self.table("steps"), sql.SQL(", ").join(parts)),
            (*values.values(), plan_hash, step))

    def mark_step(self, conn: Conn, plan_hash: str, step: int, status: str, *, run_id: str,
                  error: str | None = None, error_sql: str | None = None,
                  attempt: bool = False) -> None:
        values: dict[str, Any] = {"status": status, "run_id": run_id}
        if status == RUNNING:
            values.update(error=None, error_sql=None)
        if status == FAILED:
            values.update(error=error, error_sql=error_sql)
        self.update_step(conn, plan_hash, step, values,
                         increments=("attempts",) if attempt else ())
        column = "started_at" if status == RUNNING else "finished_at" \
            if status in (DONE, FAILED) else None
        if column is not None:
            conn.execute(sql.SQL(
                "UPDATE {} SET {} = now() WHERE plan_hash = %s AND step = %s").format(
                self.table("steps"), sql.Identifier(column)), (plan_hash, step))

    def record_batch(self, conn: Conn, plan_hash: str, step: int, lane: int, batch: int, *,
                     after: list[Any] | None, upto: list[Any], rows: int, run_id: str) -> None:
        conn.execute(sql.SQL(
            "INSERT INTO {} (plan_hash, step, lane, batch, after_key, upto_key, rows, run_id, "
            "committed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now())").format(
            self.table("batches")),
            (plan_hash, step, lane, batch, None if after is None else encode_key(after),
             encode_key(upto), rows, run_id))

    def batches(self, conn: Conn, plan_hash: str, step: int) -> list[tuple[Any, ...]]:
        return conn.execute(sql.SQL(
            "SELECT lane, batch, after_key, upto_key, rows, run_id FROM {} "
            "WHERE plan_hash = %s AND step = %s ORDER BY lane, batch").format(
            self.table("batches")), (plan_hash, step)).fetchall()

    def batch_totals(self, conn: Conn, plan_hash: str,
                     step: int | None = None) -> dict[int, tuple[int, int]]:
        """(rows, batches) committed so far, per step (of one step, or of the whole plan)."""
        where = sql.SQL(" AND step = %s") if step is not None else sql.SQL("")
        params: tuple[Any, ...] = (plan_hash,) if step is None else (plan_hash, step)
        rows = conn.execute(sql.SQL(
            "SELECT step, coalesce(sum(rows), 0), count(*) FROM {} WHERE plan_hash = %s{} "
            "GROUP BY step").format(self.table("batches"), where), params).fetchall()
        return {int(r[0]): (int(r[1]), int(r[2])) for r in rows}

    # -- lanes -----------------------------------------------------------------------------------

    def get_lanes(self, conn: Conn, plan_hash: str, step: int) -> list[LaneRow]:
        with conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(sql.SQL(
                "SELECT lane, start_key, end_key, cursor, batches_done, batch_size, done, run_id "
                "FROM {} WHERE plan_hash = %s AND step = %s ORDER BY lane").format(
                self.table("lanes")), (plan_hash, step)).fetchall()
        return [LaneRow(**r) for r in rows]

    def insert_lanes(self, conn: Conn, plan_hash: str, step: int,
                     ranges: Sequence[tuple[list[Any] | None, list[Any] | None]], *,
                     batch_size: int, run_id: str) -> None:
        for lane, (start, end) in enumerate(ranges):
            conn.execute(sql.SQL(
                "INSERT INTO {} (plan_hash, step, lane, start_key, end_key, cursor, "
                "batches_done, batch_size, done, run_id, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, NULL, 0, %s, false, %s, now())").format(
                self.table("lanes")),
                (plan_hash, step, lane, _key_text(start), _key_text(end), batch_size, run_id))

    def claim_lanes(self, conn: Conn, plan_hash: str, step: int, run_id: str) -> None:
        """Make this run the owner of the step's unfinished lanes: a batch of the previous
        owner still in flight conflicts with this write and cannot commit after it."""
        conn.execute(sql.SQL(
            "UPDATE {} SET run_id = %s, updated_at = now() WHERE plan_hash = %s AND step = %s "
            "AND NOT done").format(self.table("lanes")), (run_id, plan_hash, step))

    def advance_lane(self, conn: Conn, plan_hash: str, step: int, lane: int, *,
                     expect_batches: int, cursor: list[Any] | None, batch_size: int,
                     done: bool, run_id: str,
                     lease: tuple[sql.Composable, tuple[Any, ...]]) -> psycopg.Cursor[Any]:
        """Queue the cursor advance of one lane. It returns a row only while this run owns the
        lane, the lane's cursor is where the caller thinks and ``lease`` (a condition on the
        lock) holds: the fence of a lane's batch."""
        condition, lease_params = lease
        return conn.execute(sql.SQL(
            "UPDATE {} SET cursor = %s, batches_done = %s, batch_size = %s, done = %s, "
            "updated_at = now() WHERE plan_hash = %s AND step = %s AND lane = %s "
            "AND run_id = %s AND batches_done = %s AND {} RETURNING lane").format(
            self.table("lanes"), condition),
            (_key_text(cursor), expect_batches + (0 if done else 1), batch_size, done,
             plan_hash, step, lane, run_id, expect_batches, *lease_params))


@dataclass(frozen=True)
class LaneRow:
    """One lane of a batched step: the key range ``(start, end]`` and how far it got."""

    lane: int
    start_key: str | None
    end_key: str | None
    cursor: str | None
    batches_done: int
    batch_size: int | None
    done: bool
    run_id: str | None

    @property
    def start(self) -> list[Any] | None:
        return _key_values(self.start_key)

    @property
    def end(self) -> list[Any] | None:
        return _key_values(self.end_key)

    @property
    def position(self) -> list[Any] | None:
        """The last key done (the lane's start before its first batch)."""
        return _key_values(self.cursor) if self.cursor is not None else self.start


def _key_text(values: Sequence[Any] | None) -> str | None:
    return None if values is None else encode_key(values)


def _key_values(text: str | None) -> list[Any] | None:
    return None if text is None else list(json.loads(text))


def encode_key(values: Sequence[Any]) -> str:
    """A keyset cursor as JSON text (keys are numbers, strings, UUIDs, dates...), each value in
    a form PostgreSQL reads back as the same value when cast to the key's type."""
    return json.dumps([_key_value(v) for v in values])


def _key_value(value: Any) -> Any:
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()  # bytea's hex input format
    if isinstance(value, timedelta):
        return f"{value.total_seconds()!r} seconds"
    return str(value)
