"""``async_index`` / ``async_validate``: a statement that starts an asynchronous job
(``CREATE INDEX ASYNC``, ``ALTER TABLE ASYNC ... VALIDATE CONSTRAINT``).

Shape: mark running → submit (DDL, returns ``job_id``) → store the job id → poll ``sys.jobs``
outside any transaction until a terminal status or the timeout → done when the object is usable.
A failed unique index is dropped (it would keep enforcing uniqueness) and the step fails.

Resume: with a stored job id, the wait goes on; without one (killed between the submit and
storing its id, or a submit whose answer was lost), the object and ``sys.jobs`` say whether to
adopt a job, finish at once (the object is usable) or submit again (an invalid leftover index
is dropped first).

Probe: the object is usable (``details["check"]``, else ``indisvalid`` / ``convalidated``).
"""

from __future__ import annotations

import re
import time
from typing import Any

import psycopg
from psycopg import sql

from ...plan import Step, StepKind
from ...sql.quoting import quote_qualified
from ..errors import AsyncTimeout, StepFailed
from ..events import Event
from ..retry import describe
from ..session import Conn
from ..state import FAILED, RUNNING, StepRow
from .base import StepContext, StepKindImpl, implementation_for


@implementation_for(StepKind.ASYNC_INDEX, StepKind.ASYNC_VALIDATE)
class AsyncJob(StepKindImpl):
    def execute(self, ctx: StepContext, step: Step, before: StepRow) -> None:
        _run_async(ctx, step, before)

    def probe(self, ctx: StepContext, step: Step) -> str | None:
        target = _async_target(step.kind, step.sql[0] if step.sql else "")
        if target is None:
            return None
        kind, name, table = target
        usable = _usable_check(kind, name, table, step.details.get("check"))
        return f"{kind} {name} is usable" if ctx.query_bool(*usable) else None


def _run_async(ctx: StepContext, step: Step, before: StepRow) -> None:
    statement = step.sql[0] if step.sql else ""
    target = _async_target(step.kind, statement)
    if target is None:
        raise StepFailed(f"step {step.id}: cannot tell which object {statement!r} builds",
                         sql_text=statement)
    kind, name, table = target
    usable = _usable_check(kind, name, table, step.details.get("check"))
    job_id = before.job_id
    if job_id is None and (before.status in (RUNNING, FAILED) or before.attempts > 0):
        job_id = _adopt_previous(ctx, step, kind, name, table, usable)
        if job_id == "":  # already usable
            ctx.finish(step)
            return
    if job_id is None:
        try:
            job_id = _submit(ctx, step, statement, target)
        except _AlreadySubmitted:
            # the connection dropped after the submit went through: adopt that job
            job_id = _adopt_previous(ctx, step, kind, name, table, usable)
            if job_id == "":
                ctx.finish(step)
                return
            if job_id is None:  # an invalid leftover was dropped: build again
                job_id = _submit(ctx, step, statement, target)
    _wait(ctx, step, job_id, kind, name, table, usable=usable)
    ctx.finish(step)


def _adopt_previous(ctx: StepContext, step: Step, kind: str, name: str, table: str,
                    usable: tuple[str, tuple[Any, ...]]) -> str | None:
    """After a crash between submit and storing the job id (or a submit whose answer was
    lost): find what is there. "" when the object is usable already, a job id to wait
    for, or None to submit anew."""
    if ctx.query_bool(*usable):
        return ""
    exists = _object_exists(ctx, kind, name, table)
    job = ctx.session.autocommit("find the job", lambda c: c.execute(
        "SELECT job_id, lower(status) FROM sys.jobs WHERE object_name = %s OR "
        "object_name LIKE %s ORDER BY start_time DESC LIMIT 1",
        (name, f"%.{name}")).fetchone())
    if job is not None and (exists or job[1] in ("submitted", "processing")):
        _store_job(ctx, step, str(job[0]))
        return str(job[0])
    if not exists:
        return None
    if kind == "index":
        # an invalid leftover with no job to tell its story: drop it and build again
        _drop_index(ctx, step, name, table)
    return None


def _submit(ctx: StepContext, step: Step, statement: str, target: tuple[str, str, str]) -> str:
    ctx.session.transaction("lock fence", ctx.lock.fence)

    attempts = 0

    def run(conn: Conn) -> str:
        nonlocal attempts
        attempts += 1
        # a retry after a lost connection: the first submit may have gone through
        if attempts > 1 and _object_exists(ctx, *target):
            raise _AlreadySubmitted()
        try:
            cursor = conn.execute(statement.encode())
        except (psycopg.errors.DuplicateTable, psycopg.errors.DuplicateObject):
            if attempts > 1:
                raise _AlreadySubmitted() from None
            raise
        result = cursor.fetchone() if cursor.description else None
        if result is None:
            raise StepFailed(f"step {step.id}: the statement returned no job id "
                             "(is the target DSQL or the emulator?)", sql_text=statement)
        return str(result[0])
    try:
        job_id = ctx.session.autocommit(f"step {step.id} submit", run)
    except psycopg.Error as exc:
        raise StepFailed(f"step {step.id} ({step.kind.value}) failed: {describe(exc)}",
                         sql_text=statement) from None
    ctx.crash.reach("async.after_submit")
    _store_job(ctx, step, job_id)
    ctx.emit(Event("async.submitted", f"step {step.id}: job {job_id} submitted", step.id,
                   data={"job_id": job_id}))
    return job_id


def _store_job(ctx: StepContext, step: Step, job_id: str) -> None:
    def run(conn: Conn) -> None:
        ctx.lock.fence(conn)
        ctx.store.update_step(conn, ctx.plan_hash, step.id, {"job_id": job_id})
    ctx.session.transaction(f"record job of step {step.id}", run)


def _wait(ctx: StepContext, step: Step, job_id: str, kind: str, name: str, table: str, *,
          usable: tuple[str, tuple[Any, ...]]) -> None:
    deadline = time.monotonic() + ctx.options.async_timeout_seconds
    announced = False
    while True:
        ctx.crash.reach("async.wait")
        ctx.lock.heartbeat_if_due()
        job = ctx.session.autocommit("poll sys.jobs", lambda c: c.execute(
            "SELECT status, details FROM sys.jobs WHERE job_id = %s",
            (job_id,)).fetchone())
        status = None if job is None else str(job[0]).lower()
        if status == "completed" or (job is None and ctx.query_bool(*usable)):
            if not ctx.query_bool(*usable):
                _async_failed(ctx, step, job_id, kind, name, table, usable=usable,
                              details="the job completed but the object is not usable")
            return
        if status in ("failed", "cancelled") or job is None:
            details = "the job is gone from sys.jobs" if job is None else \
                f"{status}: {job[1] or 'no details'}"
            _async_failed(ctx, step, job_id, kind, name, table, details=details,
                          usable=usable)
        if not announced:
            ctx.emit(Event("async.wait", f"step {step.id}: waiting for job {job_id}",
                           step.id, data={"job_id": job_id}))
            announced = True
        if time.monotonic() > deadline:
            raise AsyncTimeout(
                f"step {step.id}: job {job_id} did not finish within "
                f"{ctx.options.async_timeout_seconds:g}s (status {status})",
                hint="it goes on running; 'dsql-migrate apply' again resumes the wait")
        time.sleep(ctx.options.async_poll_seconds)


def _async_failed(ctx: StepContext, step: Step, job_id: str, kind: str, name: str, table: str, *,
                  details: str, usable: tuple[str, tuple[Any, ...]]) -> None:
    dropped = ""
    if kind == "index" and _object_exists(ctx, kind, name, table):
        if ctx.query_bool(*usable):  # not this job's: a valid index of that name
            dropped = f"; a valid index {name} exists and was left as it is"
        else:
            # an invalid unique index keeps enforcing uniqueness: it must not stay behind
            _drop_index(ctx, step, name, table)
            dropped = f"; the invalid index {name} was dropped"
    # the next attempt starts with a fresh job
    _store_job_cleared(ctx, step)
    raise StepFailed(f"step {step.id}: job {job_id} failed: {details}{dropped}",
                     sql_text=step.sql[0] if step.sql else None,
                     hint="fix the data (for a unique index: the duplicates), then run "
                     "'dsql-migrate apply' again")


def _store_job_cleared(ctx: StepContext, step: Step) -> None:
    def run(conn: Conn) -> None:
        ctx.lock.fence(conn)
        ctx.store.update_step(conn, ctx.plan_hash, step.id, {"job_id": None})
    ctx.session.transaction(f"clear job of step {step.id}", run)


def _drop_index(ctx: StepContext, step: Step, name: str, table: str) -> None:
    schema = _schema_of(table)
    ident = sql.Identifier(schema, name) if schema else sql.Identifier(name)
    statement = sql.SQL("DROP INDEX IF EXISTS {}").format(ident)
    ctx.session.transaction("lock fence", ctx.lock.fence)
    ctx.session.autocommit(f"step {step.id} drop invalid index",
                           lambda c: c.execute(statement))


def _object_exists(ctx: StepContext, kind: str, name: str, table: str) -> bool:
    if kind == "index":
        schema = _schema_of(table)
        rel = quote_qualified(schema, name)
        return ctx.query_bool("SELECT to_regclass(%s) IS NOT NULL", (rel,))
    return ctx.query_bool(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = "
        "to_regclass(%s) AND conname = %s)", (table, name))


_ASYNC_INDEX = re.compile(
    r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+ASYNC\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    r"(?P<name>\"(?:[^\"]|\"\")+\"|\w+)\s+ON\s+(?:ONLY\s+)?(?P<table>(?:\"(?:[^\"]|\"\")+\"|\w+)"
    r"(?:\.(?:\"(?:[^\"]|\"\")+\"|\w+))?)", re.IGNORECASE)
_ASYNC_VALIDATE = re.compile(
    r"ALTER\s+TABLE\s+ASYNC\s+(?:ONLY\s+)?(?P<table>(?:\"(?:[^\"]|\"\")+\"|\w+)"
    r"(?:\.(?:\"(?:[^\"]|\"\")+\"|\w+))?)\s+VALIDATE\s+CONSTRAINT\s+"
    r"(?P<name>\"(?:[^\"]|\"\")+\"|\w+)", re.IGNORECASE)


def _unquote(ident: str) -> str:
    if ident.startswith('"'):
        return ident[1:-1].replace('""', '"')
    return ident.lower()


def _schema_of(table: str) -> str | None:
    parts = re.findall(r'"(?:[^"]|"")+"|\w+', table)
    return _unquote(parts[0]) if len(parts) == 2 else None


def _async_target(kind: StepKind, statement: str) -> tuple[str, str, str] | None:
    if kind == StepKind.ASYNC_INDEX:
        match = _ASYNC_INDEX.search(statement)
        if match:
            return "index", _unquote(match["name"]), match["table"]
    else:
        match = _ASYNC_VALIDATE.search(statement)
        if match:
            return "constraint", _unquote(match["name"]), match["table"]
    return None


def _usable_check(kind: str, name: str, table: str,
                  custom: Any) -> tuple[str, tuple[Any, ...]]:
    if isinstance(custom, str) and custom.strip():
        return custom, ()
    if kind == "index":
        schema = _schema_of(table)
        rel = quote_qualified(schema, name)
        return ("SELECT coalesce((SELECT indisvalid AND indisready FROM pg_catalog.pg_index "
                "WHERE indexrelid = to_regclass(%s)), false)", (rel,))
    return ("SELECT coalesce((SELECT convalidated FROM pg_catalog.pg_constraint WHERE conrelid "
            "= to_regclass(%s) AND conname = %s), false)", (table, name))


class _AlreadySubmitted(Exception):
    """A retried async submit found its object already there: the first try went through."""


