"""Asynchronous jobs: what ``CREATE INDEX ASYNC`` and ``ALTER TABLE ASYNC`` submitted.

``sys._submit_job`` (see :mod:`.server_sql`) inserts a row in ``sys._jobs`` and notifies channel
``dsql_emulator_jobs``; PostgreSQL delivers a notification only when the transaction commits, so
a rolled-back transaction leaves neither a job nor a build. The :class:`JobRunner` listens on that
channel (and polls, to pick up jobs submitted while it was down), claims each job (as the
superuser, on the bookkeeping connection) and runs it on a connection of its own, logged in as the
role that submitted it (``SET ROLE`` to the table's owner there can be undone by the job's own
code only as far as the submitter, never to the superuser):

- an index build is ``CREATE [UNIQUE] INDEX CONCURRENTLY``: ``pg_index.indisvalid`` is false while
  it builds, and a failed unique build leaves an invalid index that still enforces uniqueness on
  new writes, as on DSQL;
- a constraint validation is ``ALTER TABLE ... VALIDATE CONSTRAINT``; on a violating row the job
  fails and the constraint stays NOT VALID.

``DROP INDEX`` through the proxy cancels a build in progress (:meth:`JobRunner.cancel_builds`),
synchronously, before the DROP reaches the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import psycopg
from pglast import parser
from psycopg import sql

from .rules import IndexName

log = logging.getLogger(__name__)

CHANNEL = "dsql_emulator_jobs"
POLL_SECONDS = 2.0
#: how long stopping waits at most for each of the job runner's tasks
CLOSE_TIMEOUT_SECONDS = 5.0
#: how long a DROP INDEX waits at most for the builds it cancels to stop
CANCEL_TIMEOUT_SECONDS = 10.0
CANCEL_POLL_SECONDS = 0.02
_UNIQUE = re.compile(r"^\s*CREATE\s+UNIQUE\s+INDEX", re.IGNORECASE)
_NULLS_NOT_DISTINCT = re.compile(r"\bNULLS\s+NOT\s+DISTINCT\b", re.IGNORECASE)


def is_job_statement(statement: str, job_type: str) -> bool:
    """Whether ``statement`` is one the proxy would have submitted for ``job_type``.

    The job runner is a superuser: this keeps ``sys._submit_job``, which any role can call, from
    being a way to run anything else.
    """
    try:
        stmts = json.loads(parser.parse_sql_json(statement)).get("stmts", [])
    except Exception:
        return False
    if len(stmts) != 1:
        return False
    (kind, node), = stmts[0]["stmt"].items()
    if job_type == "INDEX_BUILD":
        return kind == "IndexStmt" and bool(node.get("concurrent"))
    if job_type == "CONSTRAINT_VALIDATION":
        cmds = node.get("cmds", []) if kind == "AlterTableStmt" else []
        return len(cmds) == 1 and cmds[0]["AlterTableCmd"].get("subtype") == \
            "AT_ValidateConstraint"
    return False


class JobRunner:
    """``conninfo`` is the superuser's, for the bookkeeping; ``role_conninfo(role)`` a connection
    string that logs in as ``role`` (the server lets the emulator in as any role but the
    superuser), for running a job as its submitter. Without it jobs run as the superuser."""

    def __init__(self, conninfo: str,
                 role_conninfo: Callable[[str], str] | None = None) -> None:
        self.conninfo = conninfo
        self.role_conninfo = role_conninfo
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())
        self._listener = asyncio.ensure_future(self._listen())

    async def close(self) -> None:
        for task in (self._task, self._listener):
            if task is not None:
                task.cancel()
                # bounded: a stop must not hang on a task that ignores its cancellation
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(task, CLOSE_TIMEOUT_SECONDS)

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                        self.conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._wake.set()
                    async for _ in conn.notifies():
                        self._wake.set()
            except psycopg.Error as exc:
                log.warning("job listener: %s", exc)
                await asyncio.sleep(1)

    async def _run(self) -> None:
        await self._fail_orphans()
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            self._wake.clear()
            try:
                while await self._run_one():
                    pass
            except psycopg.Error as exc:
                log.warning("job runner: %s", exc)
                await asyncio.sleep(1)

    async def _fail_orphans(self) -> None:
        """Jobs left 'processing' by an emulator that stopped during them ended with it."""
        try:
            async with await psycopg.AsyncConnection.connect(self.conninfo,
                                                             autocommit=True) as conn:
                await conn.execute(
                    "UPDATE sys._jobs SET status = 'failed', end_time = clock_timestamp(), "
                    "details = 'the local emulator stopped during the job', worker_pid = NULL "
                    "WHERE status = 'processing' AND (worker_pid IS NULL OR worker_pid NOT IN "
                    "(SELECT pid FROM pg_stat_activity))")
        except psycopg.Error as exc:
            log.warning("job runner: %s", exc)

    def _build_conninfo(self, submitter: str | None) -> str:
        if self.role_conninfo is None or submitter is None:
            return self.conninfo
        return self.role_conninfo(submitter)

    async def _run_one(self) -> bool:
        # two connections: ``build`` runs only the job's statement (its pid is the one a DROP
        # INDEX signals, so a cancel can never hit the bookkeeping on ``conn``)
        async with await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as conn:
            row = await (await conn.execute(
                "UPDATE sys._jobs SET status = 'processing', worker_pid = NULL "
                "WHERE job_id = (SELECT job_id FROM sys._jobs WHERE status = 'submitted' "
                "ORDER BY start_time LIMIT 1 FOR UPDATE SKIP LOCKED) "
                "RETURNING job_id, statement, search_path, job_type, object_name, "
                "table_oid, submitter, submitter IN (SELECT rolname FROM pg_roles "
                "WHERE rolsuper)")).fetchone()
            if row is None:
                return False
            job_id, statement, search_path, job_type, object_name, table_oid, submitter, \
                by_superuser = row
            log.info("running job %s: %s", job_id, statement)
            status, details = "completed", None
            try:
                if not is_job_statement(statement, job_type):
                    raise psycopg.errors.InsufficientPrivilege(
                        "not a statement an asynchronous job runs")
                async with await psycopg.AsyncConnection.connect(
                        self._build_conninfo(None if by_superuser else submitter),
                        autocommit=True) as build:
                    # a DROP INDEX that came first cancelled the job: it must not run; one that
                    # comes later finds the build's pid here and signals it
                    claimed = await (await conn.execute(
                        "UPDATE sys._jobs SET worker_pid = %s WHERE job_id = %s AND "
                        "status = 'processing' RETURNING job_id",
                        (build.info.backend_pid, job_id))).fetchone()
                    if claimed is None:
                        raise psycopg.errors.QueryCanceled("cancelled before it started")
                    await self._execute(build, statement, search_path, table_oid)
            except psycopg.errors.QueryCanceled:
                status, details = "cancelled", "cancelled by DROP INDEX"
            except psycopg.Error as exc:
                status = "failed"
                diag = exc.diag
                details = "; ".join(p for p in (diag.message_primary, diag.message_detail)
                                    if p) or str(exc)
                if isinstance(exc, psycopg.errors.UniqueViolation) and job_type == "INDEX_BUILD":
                    await self._leave_enforcing_index(conn, statement, object_name, table_oid)
            if status != "completed" and job_type == "INDEX_BUILD":
                log.info("job %s %s: %s", job_id, status, details)
            # a job a DROP INDEX cancelled stays cancelled, even if its build got to the end
            # before the signal did: the DROP, which waited for this, removes the index
            await conn.execute(
                "UPDATE sys._jobs SET status = CASE WHEN status = 'cancelled' THEN status "
                "ELSE %s END, details = CASE WHEN status = 'cancelled' THEN details ELSE %s END, "
                "end_time = clock_timestamp(), worker_pid = NULL WHERE job_id = %s",
                (status, details, job_id))
            await conn.execute(
                "DELETE FROM sys._jobs WHERE end_time < clock_timestamp() - interval '30 min'")
            return True

    @staticmethod
    async def _execute(build: psycopg.AsyncConnection[Any], statement: str,
                       search_path: str | None, table_oid: int) -> None:
        if search_path:
            await build.execute(sql.SQL("SELECT set_config('search_path', {}, false)")
                                .format(sql.Literal(search_path)))
        # as the table's owner: the job can do no more than its submitter could
        owner = await (await build.execute(
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = %s",
            (table_oid,))).fetchone()
        if owner is None:
            raise psycopg.errors.UndefinedTable("the table of the job no longer exists")
        await build.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(owner[0])))
        await build.execute(statement)
        # no RESET ROLE: the connection is closed after the job, and a cancel signal that
        # arrives just after the build ended must not fail anything else

    async def _leave_enforcing_index(self, conn: psycopg.AsyncConnection[Any], statement: str,
                                     name: str, table_oid: int) -> None:
        """After a unique build failed on duplicates, leave what DSQL leaves: an index that is
        invalid (the planner ignores it) but checks uniqueness on new writes.

        PostgreSQL's failed build leaves an empty index that is not even maintained, so the
        index is rebuilt as a plain index (duplicates and all) and then marked unique and
        invalid in the catalog: new writes are checked against every existing row.
        """
        find = ("SELECT c.oid::regclass::text FROM pg_class c WHERE c.relname = %s AND "
                "c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = %s)")
        try:
            found = await (await conn.execute(find, (name, table_oid))).fetchone()
            if found is not None:
                await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {found[0]}")
            plain = _UNIQUE.sub("CREATE INDEX", statement, count=1)
            nulls_not_distinct = bool(_NULLS_NOT_DISTINCT.search(plain))
            plain = _NULLS_NOT_DISTINCT.sub("", plain)
            await conn.execute(plain)
            found = await (await conn.execute(find, (name, table_oid))).fetchone()
            if found is None:
                return
            await conn.execute(
                "UPDATE pg_index SET indisunique = true, indisvalid = false, "
                "indnullsnotdistinct = %s WHERE indexrelid = %s::regclass",
                (nulls_not_distinct, found[0]))
        except psycopg.Error as exc:
            log.warning("could not leave an enforcing invalid index %s: %s", name, exc)

    def cancel_builds(self, indexes: tuple[IndexName, ...], *,
                      timeout: float = CANCEL_TIMEOUT_SECONDS) -> None:
        """Cancel the builds of ``indexes`` (DROP INDEX cancels a build) and return once none
        of them runs any more.

        Called by the proxy *before* it forwards the DROP INDEX, from the client's thread: the
        builds cancelled are exactly those that exist when the DROP is sent, so a build of the
        same name submitted right after the DROP's reply is never hit, and the DROP does not
        wait behind a build it was meant to stop. Unqualified names match in every schema.
        """
        try:
            with psycopg.connect(self.conninfo, autocommit=True,
                                 connect_timeout=max(1, int(timeout))) as conn:
                ids: list[str] = []
                for schema, name in indexes:
                    ids.extend(r[0] for r in conn.execute(
                        "UPDATE sys._jobs j SET status = 'cancelled', "
                        "end_time = clock_timestamp(), details = 'cancelled by DROP INDEX' "
                        "WHERE j.status IN ('submitted', 'processing') "
                        "AND j.job_type = 'INDEX_BUILD' AND j.object_name = %s "
                        "AND (%s::text IS NULL OR EXISTS (SELECT FROM pg_class c JOIN "
                        "pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = j.table_oid "
                        "AND n.nspname = %s)) RETURNING j.job_id",
                        (name, schema, schema)).fetchall())
                deadline = time.monotonic() + timeout
                # signal until the worker has let go: a signal that arrives while the worker is
                # between statements is lost, so it is sent again
                while ids and conn.execute(
                        "SELECT pg_cancel_backend(a.pid) FROM sys._jobs j "
                        "JOIN pg_stat_activity a ON a.pid = j.worker_pid "
                        "WHERE j.job_id = ANY(%s)", (ids,)).fetchall():
                    if time.monotonic() > deadline:
                        log.warning("builds of %s still running after %.0f s", indexes, timeout)
                        break
                    time.sleep(CANCEL_POLL_SECONDS)
        except psycopg.Error as exc:
            log.warning("could not cancel builds of %s: %s", indexes, exc)
