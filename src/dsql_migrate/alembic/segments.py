"""A revision that uses the database connection while it is recorded: segments and writes.

Real revisions mix DDL and data migrations (``op.add_column`` then ``op.get_bind().execute(
update(...))``, an ORM session, ``sa.inspect(bind).get_columns(...)``). Stock Alembic runs each
op as it is called, so the statement sees the ops before it. The plugin records ops instead of
running them, so when the revision touches the connection (:class:`.record.Recorder` calls
:meth:`Segments.before_statement`), the ops recorded so far are compiled and run first: a
*part* of the revision's plan, a plan of its own in the state tables, labelled
``alembic upgrade a -> b (run N, part K)``. Then the statement runs, then recording goes on. The
ops after the last connection use are the revision's last plan (labelled as before), with the
``alembic_version`` step.

Each write statement the revision sends through the connection (INSERT, UPDATE, DELETE, MERGE)
commits in one transaction with a row of ``<state schema>.alembic_writes`` (the run and the
write's ordinal), so that it is either done and recorded, or neither. DDL sent through the
connection is not run there: it is recorded like ``op.execute`` (linted, planned, one statement
per transaction) and runs with the next part.

Resuming (the guarantee, see docs/alembic.md): a run killed anywhere in a revision is resumed by
running the revision again. The revision function is recorded again from its start; a part
whose plan is recorded as done is not run again (and not compiled again), a part that stopped
part-way is resumed where it stopped (its stored plan, as any plan), a write whose ordinal is
recorded as done is skipped (the statement is not sent; its result is empty), reads run again.
This holds when the revision asks for the same ops and writes in the same order on every run
(a revision that branches on data it changed itself can ask for others: keep data migrations
idempotent when you can). The run number N (how many times this revision step's final plan
was started before) keeps a new upgrade after a downgrade from being taken for a resume.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
import sqlalchemy as sa
from alembic.operations import ops
from psycopg import sql

from ..errors import DsqlMigrateError
from ..plan import Plan
from ..runner import StateStore
from ..runner.events import Event, Listener
from ..runner.faults import CrashPoints
from .record import NeedsConnection, Recorder, mark

log = logging.getLogger(__name__)

WRITES_TABLE = "alembic_writes"
_WRITE = re.compile(r"^\s*(insert|update|delete|merge)\b", re.IGNORECASE)
_WITH_WRITE = re.compile(r"^\s*with\b.*\b(insert|update|delete|merge)\b", re.IGNORECASE | re.S)
_DDL = re.compile(r"^\s*(create|alter|drop|comment|grant|revoke|truncate)\b", re.IGNORECASE)


def statement_kind(statement: str) -> str:
    """``write``, ``ddl`` or ``read``, from the statement's first words."""
    if _WRITE.match(statement) or _WITH_WRITE.match(statement):
        return "write"
    if _DDL.match(statement):
        return "ddl"
    return "read"


def preview(statement: str, width: int = 80) -> str:
    one = " ".join(statement.split())
    return one if len(one) <= width else one[:width - 3] + "..."


class StatementHook:
    """What the revision sends through its connection, seen before the driver gets it: each
    statement goes to ``_statement``, whose answer SQLAlchemy takes as done (``True``: the
    hook ran it, or chose not to) or not (``None``: SQLAlchemy runs it)."""

    def listen(self, engine: sa.Engine) -> None:
        sa.event.listen(engine, "do_execute", self._do_execute)
        sa.event.listen(engine, "do_executemany", self._do_executemany)
        sa.event.listen(engine, "do_execute_no_params", self._do_execute_no_params)

    def forget(self, engine: sa.Engine) -> None:
        sa.event.remove(engine, "do_execute", self._do_execute)
        sa.event.remove(engine, "do_executemany", self._do_executemany)
        sa.event.remove(engine, "do_execute_no_params", self._do_execute_no_params)

    def _do_execute(self, cursor: Any, statement: str, parameters: Any, context: Any) -> Any:
        return self._statement(cursor, statement, parameters, context, many=False)

    def _do_executemany(self, cursor: Any, statement: str, parameters: Any,
                        context: Any) -> Any:
        return self._statement(cursor, statement, parameters, context, many=True)

    def _do_execute_no_params(self, cursor: Any, statement: str, context: Any) -> Any:
        return self._statement(cursor, statement, None, context, many=False)

    def _statement(self, cursor: Any, statement: str, parameters: Any, context: Any, *,
                   many: bool) -> Any:
        raise NotImplementedError


@dataclass
class Segments(StatementHook):
    """The online side: runs the parts of a revision's plan and records its writes."""

    label: str
    run: str
    recorder: Recorder
    store: StateStore
    factory: Callable[[], psycopg.Connection[Any]]
    #: compiles ops (recorded since the last part) into a plan against the live schema now
    compile_part: Callable[[list[ops.MigrateOperation], int, str], Plan]
    #: applies a plan under a label (the runner, with the revision's run options)
    apply: Callable[[Plan, str], None]
    on_event: Listener
    abandon_previous: bool = False
    parts: int = 0
    writes: int = 0
    done_writes: set[int] = field(default_factory=set)
    crash: CrashPoints = field(default_factory=CrashPoints.from_env)
    _busy: bool = False
    _table_ready: bool = False

    # -- parts ---------------------------------------------------------------------------------

    def before_statement(self, pending: list[ops.MigrateOperation], where: str,
                         statement: str) -> None:
        if self._busy or not pending:
            return
        self._busy = True  # compiling reflects through the revision's connection too
        try:
            self.parts += 1
            label = f"{self.label} (run {self.run}, part {self.parts})"
            stored = self._stored(label)
            if stored is not None and stored[0] == "done":
                self.on_event(Event("revision.part", f"{label}: already applied (up to {where})",
                                    data={"label": label}))
                return
            if stored is not None and not self.abandon_previous:
                plan = Plan.from_json(stored[1], where=f"stored plan of {label}")
                self.on_event(Event("revision.resume", f"resuming the stored plan of {label}",
                                    data={"hash": plan.hash}))
            else:
                try:
                    plan = self.compile_part(pending, self.parts, where)
                except DsqlMigrateError as exc:
                    if self.parts > 1 or self.writes:
                        exc.message = exc.message.replace(
                            "nothing of it was run", "what the revision did before the "
                            "previous connection use has been applied (parts 1-"
                            f"{self.parts - 1}); nothing after it ran")
                    raise

                self.on_event(Event("revision.part",
                                    f"{label}: the ops up to {where} run first, since the "
                                    f"revision runs SQL there "
                                    f"({preview(statement, 60)})", data={"label": label}))
            self.apply(plan, label)
        finally:
            self._busy = False

    def _stored(self, label: str) -> tuple[str, str] | None:
        conn = self.factory()
        try:
            if "plans" not in self.store.existing_tables(conn):
                return None
            row = conn.execute(sql.SQL(
                "SELECT status, plan FROM {} WHERE label = %s AND status <> 'abandoned' "
                "ORDER BY created_at DESC LIMIT 1").format(self.store.table("plans")),
                (label,)).fetchone()
        finally:
            conn.close()
        return None if row is None else (str(row[0]), str(row[1]))

    # -- statements ----------------------------------------------------------------------------

    def _statement(self, cursor: Any, statement: str, parameters: Any, context: Any, *,
                   many: bool) -> Any:
        if self._busy:
            return None  # our own reflection: runs as it is
        kind = statement_kind(statement)
        if kind == "read":
            return send_as_is(cursor, statement, parameters, context)
        if kind == "ddl" and not parameters:
            # planned like op.execute (linted, own transaction), with the next part
            self.recorder.recorded.append(mark(ops.ExecuteSQLOp(statement),
                                               self.recorder.line()))
            return True
        self.writes += 1
        if self.writes in self.done_writes:
            self.on_event(Event("revision.write", f"{self.label}: write #{self.writes} "
                                f"({preview(statement, 60)}) was committed by an earlier run: "
                                "skipped"))
            return True
        self._ensure_table()
        raw = cursor.connection
        marker = sql.SQL("INSERT INTO {} (run, n, statement, sha) VALUES (%s, %s, %s, %s)"
                         ).format(self.store.table(WRITES_TABLE))
        values = (self.run_key, self.writes, preview(statement, 200),
                  hashlib.sha256(statement.encode()).hexdigest())

        def run() -> None:
            if many:
                cursor.executemany(statement, parameters)
            elif parameters is None:
                cursor.execute(statement)
            else:
                cursor.execute(statement, parameters)
            raw.execute(marker, values)

        if raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE and raw.autocommit:
            with raw.transaction():  # the write and its record commit together
                run()
        else:
            run()  # env.py's own transaction: both commit with it
        self.crash.reach("alembic.write.after_commit")
        return True

    @property
    def run_key(self) -> str:
        return f"{self.label} (run {self.run})"

    def load_done_writes(self) -> None:
        conn = self.factory()
        try:
            if WRITES_TABLE not in self.store.existing_tables(conn):
                return
            self._table_ready = True
            rows = conn.execute(sql.SQL("SELECT n FROM {} WHERE run = %s").format(
                self.store.table(WRITES_TABLE)), (self.run_key,)).fetchall()
        finally:
            conn.close()
        self.done_writes = {int(r[0]) for r in rows}

    def _ensure_table(self) -> None:
        if self._table_ready:
            return
        conn = self.factory()
        try:
            conn.execute(sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (run TEXT NOT NULL, n INTEGER NOT NULL, "
                "statement TEXT, sha TEXT, done_at TIMESTAMPTZ NOT NULL DEFAULT now(), "
                "PRIMARY KEY (run, n))").format(self.store.table(WRITES_TABLE)))
        finally:
            conn.close()
        self._table_ready = True


@dataclass
class Rehearsal(StatementHook):
    """The pre-flight of a revision that may use the connection: the revision is recorded once
    with nothing it asks for run, so that an op or a statement DSQL cannot do is refused before
    the first part runs (a refusal found only at the third connection use would otherwise come
    after the first two parts were applied).

    While rehearsing, writes are not sent (their result is empty), DDL sent through the
    connection is recorded like ``op.execute``, and a read runs only after it ran on a
    connection of its own: a read that fails there (a table the revision creates before it)
    would leave the revision's transaction aborted, so the rehearsal stops at it instead
    (``stopped_at``) and what was recorded before it is what is checked.
    """

    recorder: Recorder
    factory: Callable[[], psycopg.Connection[Any]]
    stopped_at: str | None = None
    _conn: psycopg.Connection[Any] | None = None

    def _statement(self, cursor: Any, statement: str, parameters: Any, context: Any, *,
                   many: bool) -> Any:
        kind = statement_kind(statement)
        if kind == "ddl" and not parameters:
            self.recorder.recorded.append(mark(ops.ExecuteSQLOp(statement),
                                               self.recorder.line()))
            return True
        if kind == "write" or many:
            return True
        driver_sql = getattr(context, "compiled", None) is None
        if not self._reads(statement, None if driver_sql and not parameters else parameters):
            self.stopped_at = preview(statement, 60)
            raise Unrehearsable(statement)
        return send_as_is(cursor, statement, parameters, context)  # runs as it would

    def _reads(self, statement: str, parameters: Any) -> bool:
        if self._conn is None:  # one connection for the rehearsal's reads, not one per read
            self._conn = self.factory()
            self._conn.autocommit = True
        try:
            with psycopg.ClientCursor(self._conn) as cur:
                cur.execute(statement, parameters)
        except psycopg.Error:
            return False
        return True

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def send_as_is(cursor: Any, statement: str, parameters: Any, context: Any) -> Any:
    """Driver SQL (``exec_driver_sql``) with no bound values goes to the server as it is
    written, as PostgreSQL's other drivers (asyncpg) send it: SQLAlchemy hands psycopg an empty
    parameter set, and psycopg then reads every ``%`` as a placeholder (``format('%I.%I',
    ...)`` fails: prefect c8d5f2a71b3e). Compiled SQL (``text()``, Core) is left to SQLAlchemy:
    its ``%`` are doubled for the driver. ``None``: SQLAlchemy runs the statement."""
    if parameters or getattr(context, "compiled", None) is not None:
        return None
    cursor.execute(statement)
    return True


class Unrehearsable(Exception):
    """Raised into the revision's code when the rehearsal cannot go on (see :class:`Rehearsal`)."""


__all__ = ["WRITES_TABLE", "NeedsConnection", "Rehearsal", "Segments", "statement_kind"]
