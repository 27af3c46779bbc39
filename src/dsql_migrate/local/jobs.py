"""Asynchronous jobs: what ``CREATE INDEX ASYNC`` and ``ALTER TABLE ASYNC`` submitted.

``sys._submit_job`` (see :mod:`.server_sql`) inserts a row in ``sys._jobs`` and notifies channel
``dsql_emulator_jobs``; PostgreSQL delivers a notification only when the transaction commits, so
a rolled-back transaction leaves neither a job nor a build. The :class:`JobRunner` listens on that
channel (and polls, to pick up jobs submitted while it was down), claims each job and runs it as
the superuser on a connection of its own:

- an index build is ``CREATE [UNIQUE] INDEX CONCURRENTLY``: ``pg_index.indisvalid`` is false while
  it builds, and a failed unique build leaves an invalid index that still enforces uniqueness on
  new writes, as on DSQL;
- a constraint validation is ``ALTER TABLE ... VALIDATE CONSTRAINT``; on a violating row the job
  fails and the constraint stays NOT VALID.

``DROP INDEX`` through the proxy cancels a build in progress (:meth:`JobRunner.cancel_builds`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from typing import Any

import psycopg
from pglast import parser
from psycopg import sql

log = logging.getLogger(__name__)

CHANNEL = "dsql_emulator_jobs"
POLL_SECONDS = 2.0
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
    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
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
                with contextlib.suppress(BaseException):
                    await task

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

    async def _run_one(self) -> bool:
        async with await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as conn:
            row = await (await conn.execute(
                "UPDATE sys._jobs SET status = 'processing', worker_pid = pg_backend_pid() "
                "WHERE job_id = (SELECT job_id FROM sys._jobs WHERE status = 'submitted' "
                "ORDER BY start_time LIMIT 1 FOR UPDATE SKIP LOCKED) "
                "RETURNING job_id, statement, search_path, job_type, object_name, "
                "table_oid")).fetchone()
            if row is None:
                return False
            job_id, statement, search_path, job_type, object_name, table_oid = row
            log.info("running job %s: %s", job_id, statement)
            status, details = "completed", None
            try:
                if not is_job_statement(statement, job_type):
                    raise psycopg.errors.InsufficientPrivilege(
                        "not a statement an asynchronous job runs")
                if search_path:
                    await conn.execute(sql.SQL("SELECT set_config('search_path', {}, false)")
                                       .format(sql.Literal(search_path)))
                # as the table's owner: the job can do no more than its submitter could
                owner = await (await conn.execute(
                    "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = %s",
                    (table_oid,))).fetchone()
                if owner is None:
                    raise psycopg.errors.UndefinedTable("the table of the job no longer exists")
                await conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(owner[0])))
                try:
                    await conn.execute(statement)
                finally:
                    await conn.execute("RESET ROLE")
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
            await conn.execute(
                "UPDATE sys._jobs SET status = %s, details = %s, end_time = clock_timestamp(), "
                "worker_pid = NULL WHERE job_id = %s", (status, details, job_id))
            await conn.execute(
                "DELETE FROM sys._jobs WHERE end_time < clock_timestamp() - interval '30 min'")
            return True

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

    async def cancel_builds(self, names: tuple[str, ...]) -> None:
        """Cancel index builds of indexes called ``names`` (DROP INDEX cancels a build)."""
        try:
            async with await psycopg.AsyncConnection.connect(self.conninfo,
                                                             autocommit=True) as conn:
                await conn.execute(
                    "UPDATE sys._jobs SET status = 'cancelled', end_time = clock_timestamp(), "
                    "details = 'cancelled by DROP INDEX' WHERE status = 'submitted' "
                    "AND job_type = 'INDEX_BUILD' AND object_name = ANY(%s)", (list(names),))
                await conn.execute(
                    "SELECT pg_cancel_backend(worker_pid) FROM sys._jobs "
                    "WHERE status = 'processing' AND job_type = 'INDEX_BUILD' "
                    "AND object_name = ANY(%s) AND worker_pid IS NOT NULL", (list(names),))
        except psycopg.Error as exc:
            log.warning("could not cancel builds of %s: %s", names, exc)
