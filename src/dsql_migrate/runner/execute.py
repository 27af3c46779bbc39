"""Executing a Plan: one step at a time, each recorded in the state tables so that a crash, a kill
or a lost connection at any instant resumes exactly where it stopped.

Transaction shapes, per step kind (DSQL.md §2: one DDL per transaction, never with DML):

``ddl`` / ``swap``
    mark running (DML) → each statement alone (DDL) → record it (DML) → ... → done (DML). On
    resume, a catalog postcondition (:mod:`.postcondition`) says whether a statement whose record
    is missing took effect. A swap re-runs its verification before the first rename.
``async_index`` / ``async_validate``
    mark running → submit (DDL, returns ``job_id``) → store the job id → poll ``sys.jobs`` outside
    any transaction until a terminal status or the timeout → done when the object is usable. A
    failed unique index is dropped (it would keep enforcing uniqueness) and the step fails.
``backfill`` / ``copy``
    split into lanes (disjoint key ranges walked at once, on their own connections, when the
    table is large); one transaction per batch of a lane holding: the lane's cursor advance
    (conditional on the lease, on the run owning the lane and on the cursor it started from: the
    fence), the step's statements, the next page bound and a ``batches`` audit row.
``verify``
    the checks, then their figures and the outcome recorded in one DML transaction.
``dml``
    the statements and the done mark in one transaction: exactly once.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import psycopg
from psycopg import sql

from ..errors import ConfigError, DsqlMigrateError, ExitCode
from ..plan import Batch, Plan, Step, StepKind
from ..profiles import STATE_ROWS_PER_BATCH, Limits
from . import guard, postcondition
from .events import Event, Listener, ignore, serialized
from .faults import CrashPoints
from .lock import LeaseLock, LeaseLost
from .retry import describe, is_limit_error
from .session import Conn, RetriesExhausted, Session
from .state import (
    ABANDONED,
    DONE,
    FAILED,
    PENDING,
    RUNNING,
    STOPPED,
    LaneRow,
    StateStore,
    StepRow,
)

log = logging.getLogger(__name__)

#: passes of a re-syncing verification (repair the changed ranges, compare again)
MAX_VERIFY_PASSES = 5
#: a lane only when the table has at least this many batches for each
MIN_BATCHES_PER_LANE = 4
#: step state rows inserted per transaction when a plan is registered
STEP_ROWS_PER_TRANSACTION = 1000
#: keys read per transaction while a large step is split into lanes
SPLIT_READ_ROWS = 200_000
RESUME_HINT = ("run 'dsql-migrate apply' again to resume where it stopped; or give up: "
               "'dsql-migrate status' shows what was applied, then fix the cause and re-plan")


class StepFailed(DsqlMigrateError):
    exit_code = ExitCode.FAILED

    def __init__(self, message: str, *, sql_text: str | None = None,
                 hint: str | None = RESUME_HINT) -> None:
        super().__init__(message, hint=hint)
        self.sql_text = sql_text


class VerificationFailed(StepFailed):
    pass


class AsyncTimeout(StepFailed):
    pass


class DestructiveRefused(DsqlMigrateError):
    exit_code = ExitCode.REFUSED


class PlanConflict(DsqlMigrateError):
    exit_code = ExitCode.REFUSED


@dataclass(frozen=True)
class RunOptions:
    allow_destructive: bool = False
    #: rows per batch to start from; None: the plan's batch size
    batch_size: int | None = None
    lease_seconds: float = 60.0
    wait_lock_seconds: float = 0.0
    async_timeout_seconds: float = 3600.0
    async_poll_seconds: float = 1.0
    #: lanes a large batched step is split into, each walked on its own connection
    parallel: int = 4
    #: share of the per-transaction byte limit a batch may use, by estimated row width
    byte_budget_share: float = 0.5
    label: str | None = None
    #: mark a different, unfinished plan abandoned instead of refusing to run
    abandon_previous: bool = False
    #: run a plan that was applied again, when its tables are back to its premise
    reapply: bool = False
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def from_config(cls, section: Mapping[str, Any], **overrides: Any) -> RunOptions:
        known = {"batch_size": int, "parallel": int, "lease_seconds": float,
                 "async_timeout_seconds": float, "async_poll_seconds": float,
                 "byte_budget_share": float}
        values: dict[str, Any] = {}
        for key, value in section.items():
            if key in ("retry", "state_schema"):
                continue
            if key not in known:
                raise ConfigError(
                    f"unknown setting {key!r} in [runner]",
                    hint=f"known: {', '.join(sorted([*known, 'retry', 'state_schema']))}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"[runner] {key} must be a positive number")
            values[key] = known[key](value)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass
class ApplyResult:
    plan_hash: str
    status: str  # done | nothing
    steps_run: list[int] = field(default_factory=list)
    steps_skipped: list[int] = field(default_factory=list)


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


class Runner:
    """Applies plans through one :class:`Session`, under one :class:`LeaseLock`."""

    def __init__(self, session: Session, *, store: StateStore | None = None,
                 options: RunOptions | None = None, on_event: Listener = ignore,
                 crash_points: CrashPoints | None = None) -> None:
        self.session = session
        self.store = store or StateStore()
        self.options = options or RunOptions()
        self.emit: Listener = serialized(on_event)  # lanes report from their own threads
        self.crash = crash_points or CrashPoints.from_env()
        self.lock = LeaseLock(self.store, session, lease_seconds=self.options.lease_seconds)
        self.plan: Plan | None = None
        self._plan_hash: str | None = None

    @property
    def run_id(self) -> str:
        return self.lock.run_id

    @property
    def _hash(self) -> str:
        assert self._plan_hash is not None
        return self._plan_hash

    # -- the whole plan --------------------------------------------------------------------------

    def apply(self, plan: Plan) -> ApplyResult:
        self.plan = plan
        self._plan_hash = plan.hash  # computed once: it serialises the whole plan
        self.store.ensure(self.session)
        if self.options.wait_lock_seconds:
            self.emit(Event("lock.waiting", "waiting for the lock",
                            data={"seconds": self.options.wait_lock_seconds}))
        self.lock.acquire(self.options.wait_lock_seconds)
        self.emit(Event("lock.acquired", f"lock taken (fencing token {self.lock.token})",
                        data={"run_id": self.run_id, "fencing_token": self.lock.token}))
        try:
            return self._apply_locked(plan)
        finally:
            try:
                self.lock.release()
            except (psycopg.Error, DsqlMigrateError) as exc:  # the lease expires by itself
                log.warning("could not release the lock: %s", exc)

    def _apply_locked(self, plan: Plan) -> ApplyResult:
        result = ApplyResult(plan.hash, "done")
        if self.session.transaction("register the plan", self._register) == DONE:
            # premise/promise (DESIGN.md §3.2a): done only while its end state is there
            if not self._guarded(guard.check_already_applied, reapply=self.options.reapply):
                self.emit(Event("plan.nothing", f"plan {plan.hash} was already applied: "
                                "nothing to do", data={"hash": plan.hash}))
                result.status = "nothing"
                return result
            guard.forget_run(self.session, self.store, self._hash, self.lock.fence)
            self._set_plan_status(RUNNING)  # reverted by hand since: --reapply runs it again
        self.emit(Event("plan.start", f"applying plan {plan.hash} ({len(plan.steps)} steps)",
                        data={"hash": plan.hash, "steps": len(plan.steps)}))
        rows = {r.step: r for r in self._step_rows(plan)}
        self._guarded(guard.check_start, resumed=any(  # premise/promise (DESIGN.md §3.2a)
            r.status != PENDING or r.attempts for r in rows.values()))
        for step in plan.steps:
            row = rows[step.id]
            if row.status == DONE:
                result.steps_skipped.append(step.id)
                self.emit(Event("step.skip", f"step {step.id} already done: {step.summary}",
                                step.id))
                continue
            if step.destructive and not (self.options.allow_destructive
                                         or plan.approved_destructive):
                self._set_plan_status(STOPPED, f"stopped before destructive step {step.id}")
                self.emit(Event("plan.stopped", f"stopped before destructive step {step.id}",
                                step.id))
                raise DestructiveRefused(
                    f"step {step.id} is destructive ({step.summary}); the run stopped before it "
                    + (f"with steps 1-{step.id - 1} applied" if step.id > 1 else "with nothing "
                       "applied"),
                    hint="review it, then run 'dsql-migrate apply --allow-destructive' to go on")
            self._guarded(guard.check_before, step, begun=row.statements_done > 0)
            try:
                self._run_step(step, row)
            except StepFailed as exc:
                self._fail(step, exc)
                raise
            except RetriesExhausted as exc:
                self._fail(step, StepFailed(exc.message, hint=exc.hint))
                raise
            except DsqlMigrateError:
                raise
            except psycopg.Error as exc:
                failure = StepFailed(f"step {step.id} ({step.kind.value}) failed: "
                                     f"{describe(exc)}", sql_text=getattr(exc, "_dm_sql", None))
                self._fail(step, failure)
                raise failure from None
            result.steps_run.append(step.id)
        self._guarded(guard.check_end)
        self._set_plan_status(DONE)
        self.emit(Event("plan.done", f"plan {plan.hash} applied",
                        data={"hash": plan.hash, "steps_run": len(result.steps_run)}))
        return result

    def _guarded(self, check: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a premise/promise check of :mod:`.guard`; record the plan's status if it fails."""
        assert self.plan is not None
        try:
            return check(self.session, self.plan, *args, emit=self.emit, **kwargs)
        except guard.GuardError as exc:
            if exc.plan_status is not None:
                self._set_plan_status(exc.plan_status, exc.message.split("\n", 1)[0])
            headline, _, differences = exc.message.partition("\n")
            self.emit(Event("plan.refused" if exc.exit_code == ExitCode.REFUSED
                            else "plan.failed", headline.rstrip(":"),
                            data={"hash": self._hash,
                                  "differences": [d.strip() for d in differences.splitlines()]}))
            raise

    def _register(self, conn: Conn) -> str:
        plan = self.plan
        assert plan is not None
        self.lock.fence(conn)
        for other in self.store.unfinished_plans(conn):
            if other.hash == plan.hash or other.status == ABANDONED:
                continue
            if self.options.abandon_previous:
                self.store.set_plan_status(conn, other.hash, ABANDONED, run_id=self.run_id,
                                           error=f"abandoned for {plan.hash}")
                continue
            raise PlanConflict(
                f"another plan is partially applied: {other.hash} ({other.status} since "
                f"{other.updated_at.isoformat(timespec='seconds')}); refusing to start "
                f"{plan.hash}",
                hint="finish it with 'dsql-migrate apply' of that plan, or see "
                "'dsql-migrate status' and pass --abandon-previous to leave it as it is")
        existing = self.store.get_plan(conn, plan.hash)
        if existing is None:
            self.store.insert_plan(conn, plan, label=self.options.label, run_id=self.run_id)
            return PENDING
        if existing.status == DONE:
            return DONE
        self.store.set_plan_status(conn, plan.hash, RUNNING, run_id=self.run_id)
        return existing.status

    def _step_rows(self, plan: Plan) -> list[StepRow]:
        """The state rows of the plan's steps, inserting those missing (a new plan, or one
        whose registration was interrupted) in transactions of at most
        ``STEP_ROWS_PER_TRANSACTION`` rows: a plan of thousands of steps stays legal."""
        rows = self.session.transaction("read the state",
                                        lambda c: self.store.get_steps(c, plan.hash))
        have = {row.step for row in rows}
        missing = [step for step in plan.steps if step.id not in have]
        for start in range(0, len(missing), STEP_ROWS_PER_TRANSACTION):
            chunk = missing[start:start + STEP_ROWS_PER_TRANSACTION]

            def insert(conn: Conn, chunk: list[Step] = chunk) -> None:
                self.lock.fence(conn)
                self.store.insert_steps(conn, plan.hash, chunk)
            self.session.transaction("record the plan's steps", insert)
        if not missing:
            return rows
        return self.session.transaction("read the state",
                                        lambda c: self.store.get_steps(c, plan.hash))

    def _set_plan_status(self, status: str, error: str | None = None) -> None:
        def run(conn: Conn) -> None:
            self.lock.fence(conn)
            self.store.set_plan_status(conn, self._hash, status, run_id=self.run_id,
                                       error=error)
        self.session.transaction(f"mark the plan {status}", run)

    def _fail(self, step: Step, exc: StepFailed) -> None:
        def run(conn: Conn) -> None:
            self.lock.fence(conn)
            self.store.mark_step(conn, self._hash, step.id, FAILED, run_id=self.run_id,
                                 error=exc.message, error_sql=exc.sql_text)
            self.store.set_plan_status(conn, self._hash, FAILED, run_id=self.run_id,
                                       error=exc.message)
        try:
            self.session.transaction(f"mark step {step.id} failed", run)
        except (psycopg.Error, DsqlMigrateError) as err:
            log.warning("could not record the failure of step %s: %s", step.id, err)
        self.emit(Event("step.failed", f"step {step.id} failed: {exc.message}", step.id,
                        data={"error": exc.message, "sql": exc.sql_text}))

    # -- one step --------------------------------------------------------------------------------

    def _mark_running(self, step: Step) -> StepRow:
        def run(conn: Conn) -> StepRow:
            self.lock.fence(conn)
            before = self.store.get_step(conn, self._hash, step.id, for_update=True)
            self.store.mark_step(conn, self._hash, step.id, RUNNING, run_id=self.run_id,
                                 attempt=True)
            return before
        before = self.session.transaction(f"mark step {step.id} running", run)
        self.crash.reach("step.after_mark_running")
        return before

    def _mark_done(self, conn: Conn, step: Step, **values: Any) -> None:
        if values:
            self.store.update_step(conn, self._hash, step.id, values)
        self.store.mark_step(conn, self._hash, step.id, DONE, run_id=self.run_id)

    def _run_step(self, step: Step, row: StepRow) -> None:
        resumed = row.status in (RUNNING, FAILED) or row.attempts > 0
        verb = "resuming" if resumed else "running"
        self.emit(Event("step.resume" if resumed else "step.start",
                        f"step {step.id} ({step.kind.value}) {verb}: {step.summary}", step.id,
                        data={"kind": step.kind.value, "table": step.table,
                              "rows_estimate": step.estimate.rows,
                              "rows_done": row.rows_done}))
        started = time.monotonic()
        before = self._mark_running(step)
        executor = self._EXECUTORS[step.kind]
        executor(self, step, before)
        self.emit(Event("step.done", f"step {step.id} done", step.id,
                        data={"seconds": round(time.monotonic() - started, 3)}))

    # ddl and swap ---------------------------------------------------------------------------------

    def _run_ddl(self, step: Step, before: StepRow) -> None:
        resumed = before.status in (RUNNING, FAILED)
        if step.kind == StepKind.SWAP and before.statements_done == 0:
            first = postcondition.for_statement(step.sql[0]) if step.sql else None
            if not (resumed and first is not None and self._holds(first)):
                self._reverify(step)
        for index in range(before.statements_done, len(step.sql)):
            statement = step.sql[index]
            check = postcondition.for_statement(statement)
            if index > before.statements_done:
                self.crash.reach("swap.between" if step.kind == StepKind.SWAP
                                 else "ddl.between")
            if resumed and index == before.statements_done and check is not None \
                    and self._holds(check):
                log.info("step %s: %s already took effect (%s)", step.id, statement,
                         check.description)
            else:
                self._execute_ddl(step, statement, check)
                self.crash.reach("ddl.after_execute")
            last = index == len(step.sql) - 1

            def record(conn: Conn, done: int = index + 1, last: bool = last) -> None:
                self.lock.fence(conn)
                self.store.update_step(conn, self._hash, step.id, {"statements_done": done})
                if last:
                    self._mark_done(conn, step)
            self.session.transaction(f"record step {step.id}", record)
        if not step.sql or before.statements_done >= len(step.sql):
            self._finish_async(step, None)

    def _holds(self, check: postcondition.Postcondition) -> bool:
        row = self.session.autocommit("check the catalog",
                                      lambda c: c.execute(check.query, check.params).fetchone())
        return bool(row and row[0])

    def _execute_ddl(self, step: Step, statement: str,
                     check: postcondition.Postcondition | None) -> None:
        # the lease must still be ours right before a write that cannot carry the fence
        self.session.transaction("lock fence", self.lock.fence)
        self.crash.reach("ddl.before_execute")
        tried = False

        def run(conn: Conn) -> None:
            nonlocal tried
            if tried and check is not None:
                # the connection dropped or the commit conflicted: did it take effect anyway?
                row = conn.execute(check.query, check.params).fetchone()
                if row and row[0]:
                    return
            tried = True
            _execute(conn, statement)
        try:
            self.session.autocommit(f"step {step.id}", run)
        except psycopg.Error as exc:
            raise StepFailed(f"step {step.id} ({step.kind.value}) failed: {describe(exc)}",
                             sql_text=statement) from None

    def _reverify(self, step: Step) -> None:
        assert self.plan is not None
        verified_by = step.details.get("verified_by")
        if verified_by is None:
            return
        ids = verified_by if isinstance(verified_by, list) else [verified_by]
        for vid in ids:
            verify = next((s for s in self.plan.steps if s.id == int(vid)), None)
            if verify is None:
                raise StepFailed(f"step {step.id}: verification step {vid} is not in the plan")
            ok, figures, failed_sql = self._check(verify)
            self.emit(Event("verify", f"step {step.id}: re-ran verification {vid} before the "
                            f"swap: {'passed' if ok else 'FAILED'}", step.id,
                            data={"figures": figures, "ok": ok}))
            if not ok:
                raise VerificationFailed(
                    f"step {step.id}: verification {vid} no longer passes, the swap did not "
                    f"happen: {_figures_text(figures)}", sql_text=failed_sql,
                    hint="the source changed since it was copied; nothing was lost. Pause "
                    "writes, then re-plan (or run again with writes paused)")

    # verify ---------------------------------------------------------------------------------------

    def _check(self, step: Step) -> tuple[bool, list[dict[str, Any]], str | None]:
        """Run a verification; (passed, figures, the SQL of the first failing check).

        Three shapes, as the planner writes them: with a ``batch``, statement pairs (source,
        target) compared per key range, plus ``details["totals"]`` compared whole; with
        ``details["compare"]``/``["totals"]``, statement pairs compared whole; otherwise each
        statement on its own (see :func:`_passes`).
        """
        if step.batch is not None:
            return self._check_ranges(step, step.batch)
        if "compare" in step.details or "totals" in step.details:
            return self._check_pairs(step, step.sql)
        return self._check_rows(step)

    def _check_rows(self, step: Step) -> tuple[bool, list[dict[str, Any]], str | None]:
        figures: list[dict[str, Any]] = []
        failed_sql: str | None = None
        ok = True

        def run(conn: Conn) -> None:
            nonlocal ok, failed_sql
            figures.clear()
            ok, failed_sql = True, None
            for statement in step.sql:
                cursor = _execute(conn, statement)
                columns = [c.name for c in cursor.description or ()]
                rows = [dict(zip(columns, _jsonable(r), strict=True))
                        for r in cursor.fetchmany(50)]
                passed = _passes(columns, rows)
                figures.append({"sql": statement, "rows": rows, "ok": passed})
                if not passed and ok:
                    ok, failed_sql = False, statement
        self.session.transaction(f"verify step {step.id}", run)
        return ok, figures, failed_sql

    def _check_pairs(self, step: Step, statements: Sequence[str],
                     ) -> tuple[bool, list[dict[str, Any]], str | None]:
        def run(conn: Conn) -> list[list[Any]]:
            return [_jsonable(_execute(conn, s).fetchone() or ()) for s in statements]
        results = self.session.transaction(f"verify step {step.id}", run)
        figures: list[dict[str, Any]] = []
        failed_sql: str | None = None
        for index in range(0, len(results) - 1, 2):
            equal = results[index] == results[index + 1]
            figures.append({"sql": statements[index + 1], "ok": equal, "rows": [
                {"source": results[index], "target": results[index + 1], "equal": equal}]})
            if not equal and failed_sql is None:
                failed_sql = statements[index + 1]
        return failed_sql is None, figures, failed_sql

    def _check_ranges(self, step: Step, batch: Batch,
                      ) -> tuple[bool, list[dict[str, Any]], str | None]:
        bounds = sized_bounds(batch)
        repair = [str(s) for s in step.details.get("repair") or ()]
        tail = step.details.get("tail")
        totals = [str(s) for s in step.details.get("totals") or ()]
        figures: list[dict[str, Any]] = []
        ok = False
        failed_sql: str | None = None
        for attempt in range(1, MAX_VERIFY_PASSES + 1):
            mismatched, ranges, last = self._compare_ranges(step, batch, bounds)
            totals_ok, total_figures, totals_sql = (self._check_pairs(step, totals) if totals
                                                    else (True, [], None))
            ok = not mismatched and totals_ok
            figures = [{"sql": step.sql[-1] if step.sql else "", "ok": not mismatched,
                        "rows": [{"pass": attempt, "ranges": ranges,
                                  "mismatched_ranges": len(mismatched)}, *mismatched[:5]]},
                       *total_figures]
            failed_sql = None if ok else (totals_sql if not mismatched else step.sql[-1])
            if ok or not repair:
                break
            self._repair(step, batch, mismatched, repair=repair,
                         tail=tail if isinstance(tail, str) and not totals_ok else None,
                         last=last)
            self.emit(Event("verify.repair", f"step {step.id}: copied {len(mismatched)} "
                            "changed key range(s) again", step.id,
                            data={"ranges": len(mismatched), "pass": attempt}))
        return ok, figures, failed_sql

    def _compare_ranges(self, step: Step, batch: Batch, bounds: str,
                        ) -> tuple[list[dict[str, Any]], int, list[Any] | None]:
        mismatched: list[dict[str, Any]] = []
        after: list[Any] | None = None
        ranges = 0

        def one(conn: Conn, after: list[Any] | None) -> tuple[list[Any], list[Any]] | None:
            params = page_params(batch, after, batch.size)
            page = conn.execute(bounds, params, prepare=False).fetchone()
            if page is None or all(v is None for v in page):
                return None
            upto = list(page)
            params.update(key_params(batch, "upto", upto))
            return upto, [_jsonable(_execute(conn, s, params).fetchone() or ())
                          for s in step.sql]
        while True:
            out = self.session.transaction(f"verify step {step.id} range",
                                           functools.partial(one, after=after))
            if out is None:
                return mismatched, ranges, after
            upto, results = out
            ranges += 1
            for index in range(0, len(results) - 1, 2):
                if results[index] != results[index + 1]:
                    mismatched.append({"after": _jsonable(after or []), "upto": _jsonable(upto),
                                       "source": results[index], "target": results[index + 1]})
                    break
            after = upto
            self.lock.heartbeat_if_due()

    def _repair(self, step: Step, batch: Batch, mismatched: list[dict[str, Any]], *,
                repair: list[str], tail: str | None, last: list[Any] | None) -> None:
        for item in mismatched:
            def run(conn: Conn, item: dict[str, Any] = item) -> None:
                self.lock.fence(conn)
                params = key_params(batch, "after", item["after"] or None)
                params.update(key_params(batch, "upto", item["upto"]))
                for statement in repair:
                    _execute(conn, statement, params)
            self.session.transaction(f"step {step.id} repair", run)
        if tail is not None and last is not None:
            def cut(conn: Conn) -> None:
                self.lock.fence(conn)
                _execute(conn, tail, key_params(batch, "after", last))
            self.session.transaction(f"step {step.id} repair tail", cut)

    def _run_verify(self, step: Step, before: StepRow) -> None:
        ok, figures, failed_sql = self._check(step)
        self.crash.reach("verify.after_check")
        text = json.dumps(figures, default=str)

        def record(conn: Conn) -> None:
            self.lock.fence(conn)
            self.store.update_step(conn, self._hash, step.id, {"figures": text})
            if ok:
                self._mark_done(conn, step)
        self.session.transaction(f"record verification {step.id}", record)
        self.emit(Event("verify", f"step {step.id}: {'passed' if ok else 'FAILED'}: "
                        f"{_figures_text(figures)}", step.id,
                        data={"figures": figures, "ok": ok}))
        if not ok:
            raise VerificationFailed(
                f"step {step.id}: verification failed: {_figures_text(figures)}",
                sql_text=failed_sql,
                hint="nothing destructive ran. If the source changed during the copy, pause "
                "writes and re-plan; otherwise fix the data and run 'dsql-migrate apply' again")

    # dml ------------------------------------------------------------------------------------------

    def _run_dml(self, step: Step, before: StepRow) -> None:
        def run(conn: Conn) -> int:
            self.lock.fence(conn)
            current = self.store.get_step(conn, self._hash, step.id, for_update=True)
            if current.status == DONE:
                return 0
            rows = 0
            for statement in step.sql:
                try:
                    rows += max(conn.execute(statement.encode()).rowcount, 0)
                except psycopg.Error as exc:
                    exc._dm_sql = statement  # type: ignore[attr-defined]
                    raise
            self.crash.reach("dml.before_commit")
            self._mark_done(conn, step, rows_done=rows)
            return rows
        self.session.transaction(f"step {step.id}", run)

    # batched --------------------------------------------------------------------------------------

    def _initial_batch_size(self, batch: Batch) -> int:
        """The configured (else the plan's) batch size within the limits; a size a previous
        run had to shrink is kept in the step's lanes (see :meth:`_run_batched`)."""
        limits = self.options.limits
        size = self.options.batch_size or batch.size
        # the state rows written with each batch count against the row limit too
        size = min(size, limits.rows_per_transaction - STATE_ROWS_PER_BATCH)
        width = self.session.autocommit("estimate the row width", lambda c: _row_width(c, batch))
        if width:
            budget = int(limits.bytes_per_transaction * self.options.byte_budget_share)
            size = min(size, max(budget // width, 1))
        return max(size, 1)

    def _run_batched(self, step: Step, before: StepRow) -> None:
        """Walk the step's key range in batches, each a transaction with its cursor advance.

        A large table is split into lanes, disjoint key ranges walked at once on their own
        connections (``RunOptions.parallel``): DSQL scales with concurrent transactions, and
        every batch stays within the per-transaction limits. A single lane left to walk runs on
        this session.
        """
        batch = step.batch
        if batch is None:
            raise StepFailed(f"step {step.id} ({step.kind.value}) has no batch definition")
        size = self._initial_batch_size(batch)
        bounds = sized_bounds(batch)
        lanes = self._lanes(step, batch, bounds, size)
        pending = [lane for lane in lanes if not lane.done]
        # a batch size a previous run had to shrink (a 54000 limit error) stays shrunk
        size = min([size, *(lane.batch_size for lane in pending if lane.batch_size)])
        totals = self.session.transaction(
            f"read the batches of step {step.id}",
            lambda c: self.store.batch_totals(c, self._hash, step.id)).get(step.id, (0, 0))
        progress = _Progress(*totals)
        if len(pending) == 1:
            self._run_lane(self.session, step, batch, bounds, size, pending[0], progress,
                           inline=True)
        elif pending:
            self._run_lanes(step, batch, bounds, size, pending, progress)

        def finish(conn: Conn) -> None:
            self.lock.fence(conn)
            rows, batches = self.store.batch_totals(conn, self._hash, step.id).get(step.id,
                                                                                  (0, 0))
            self._mark_done(conn, step, rows_done=rows, batches_done=batches)
        self.session.transaction(f"mark step {step.id} done", finish)

    def _lanes(self, step: Step, batch: Batch, bounds: str, size: int) -> list[LaneRow]:
        """The step's lanes, claimed for this run; split on the first run of the step."""
        def claim(conn: Conn) -> list[LaneRow]:
            self.lock.fence(conn)
            self.store.claim_lanes(conn, self._hash, step.id, self.run_id)
            return self.store.get_lanes(conn, self._hash, step.id)
        lanes = self.session.transaction(f"claim the lanes of step {step.id}", claim)
        if lanes:
            return lanes
        ranges = self._split(step, batch, bounds, size)

        def create(conn: Conn) -> list[LaneRow]:
            self.lock.fence(conn)
            if not self.store.get_lanes(conn, self._hash, step.id):
                self.store.insert_lanes(conn, self._hash, step.id, ranges, batch_size=size,
                                        run_id=self.run_id)
            return claim(conn)
        lanes = self.session.transaction(f"split step {step.id} into lanes", create)
        if len(lanes) > 1:
            self.emit(Event("step.lanes", f"step {step.id}: {len(lanes)} lanes over "
                            f"{batch.table}, walked at once", step.id,
                            data={"lanes": len(lanes)}))
        return lanes

    def _split(self, step: Step, batch: Batch, bounds: str,
               size: int) -> list[tuple[list[Any] | None, list[Any] | None]]:
        """Key ranges of about the same number of rows, one per lane: ``(start, end]``."""
        whole: list[tuple[list[Any] | None, list[Any] | None]] = [(None, None)]
        if self.options.parallel <= 1 or "%(end_" not in bounds:
            return whole  # a plan whose page query cannot stop at a lane's end
        rows = step.estimate.rows or self.session.autocommit(
            "estimate the rows", lambda c: _reltuples(c, batch.table))
        count = min(self.options.parallel, (rows or 0) // (size * MIN_BATCHES_PER_LANE))
        if count <= 1:
            return whole
        stride = -(-int(rows or 0) // count)
        keys: list[list[Any]] = []
        after: list[Any] | None = None

        def walk(conn: Conn, rows: int) -> Any:
            return conn.execute(bounds, page_params(batch, after, rows),
                                prepare=False).fetchone()
        for _ in range(count - 1):
            # read transactions of at most SPLIT_READ_ROWS keys: DSQL ends long transactions
            left = stride
            while left > 0:
                take = min(left, SPLIT_READ_ROWS)
                page = self.session.transaction(f"split step {step.id} into lanes",
                                                functools.partial(walk, rows=take))
                if page is None or all(v is None for v in page):
                    break
                after, left = list(page), left - take
            if left > 0 or after is None:  # the table ended first
                break
            keys.append(after)
        starts: list[list[Any] | None] = [None, *keys]
        ends: list[list[Any] | None] = [*keys, None]
        return list(zip(starts, ends, strict=True))

    def _run_lanes(self, step: Step, batch: Batch, bounds: str, size: int,
                   lanes: list[LaneRow], progress: _Progress) -> None:
        """Each lane in its own thread and session; this thread keeps the lease alive."""
        stop = threading.Event()
        errors: list[BaseException] = []

        def work(lane: LaneRow) -> None:
            session = self.session.fork()
            try:
                self._run_lane(session, step, batch, bounds, size, lane, progress, stop=stop)
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)
                stop.set()
            finally:
                session.close()
        threads = [threading.Thread(target=work, args=(lane,), daemon=True,
                                    name=f"step-{step.id}-lane-{lane.lane}") for lane in lanes]
        for thread in threads:
            thread.start()
        try:
            while alive := [t for t in threads if t.is_alive()]:
                alive[0].join(0.2)
                if not stop.is_set():
                    self.lock.heartbeat_if_due()
        except BaseException:
            stop.set()
            for thread in threads:
                thread.join()
            raise
        if errors:
            # the first failure decides; a lost lease is the cause of the others' stops
            raise next((e for e in errors if isinstance(e, LeaseLost)), errors[0])

    def _run_lane(self, session: Session, step: Step, batch: Batch, bounds: str, size: int,
                  lane: LaneRow, progress: _Progress, *, inline: bool = False,
                  stop: threading.Event | None = None) -> None:
        cursor = _Cursor(lane.position, lane.batches_done, lane.done)
        while not cursor.done:
            if stop is not None and stop.is_set():
                return
            one = functools.partial(self._lane_batch, step=step, batch=batch, bounds=bounds,
                                    size=size, lane=lane, cursor=cursor)
            try:
                cursor = session.transaction(f"step {step.id} batch", one, pipeline=True)
            except (_LaneMoved, psycopg.errors.UniqueViolation) as exc:
                # the lane's cursor is not where this loop thought: after a lost connection
                # whose COMMIT went through, or because another runner took the lane over
                session.transaction("check the lease", self.lock.ensure_held)
                fresh = self._reload_lane(session, step, lane.lane)
                if fresh.run_id != self.run_id:
                    raise LeaseLost(
                        f"step {step.id}: lane {lane.lane} was taken over by run "
                        f"{fresh.run_id}; this runner stopped before its next write",
                        hint="run 'dsql-migrate status' to see what the other runner did"
                    ) from None
                if fresh.batches_done != cursor.batches_done or fresh.done:
                    cursor = _Cursor(fresh.position, fresh.batches_done, fresh.done)
                    continue
                raise StepFailed(f"step {step.id} ({step.kind.value}) failed: {describe(exc)}",
                                 sql_text=getattr(exc, "_dm_sql", None)) from None
            except psycopg.Error as exc:
                if is_limit_error(exc) and size > 1:
                    new = max(size // 2, 1)
                    self.emit(Event("batch.shrink", f"step {step.id}: {describe(exc)}; batch "
                                    f"size {size} -> {new}", step.id,
                                    data={"from": size, "to": new, "lane": lane.lane}))
                    size = new
                    cursor = dataclasses.replace(cursor, next_upto=None)
                    continue
                # pipelined: an error may surface at a later fetch, untagged; name the batch
                where = f"lane {lane.lane}, " if lane.lane else ""
                raise StepFailed(
                    f"step {step.id} ({step.kind.value}) failed in the batch after key "
                    f"{cursor.after} ({where}{cursor.batches_done} batches done): "
                    f"{describe(exc)}",
                    sql_text=getattr(exc, "_dm_sql", None) or ";\n".join(step.sql)) from None
            if cursor.done:
                return
            self.crash.reach("batch.after_commit")

            def report(rows_done: int, batches: int, rows: int = cursor.last_rows,
                       lane_number: int = lane.lane, size: int = size) -> None:
                self.emit(Event("batch", f"step {step.id}: batch {batches} committed, "
                                f"{rows} rows ({rows_done} in all)", step.id,
                                data={"batch": batches, "lane": lane_number, "rows": rows,
                                      "rows_done": rows_done, "batch_size": size,
                                      "rows_estimate": step.estimate.rows}))
            progress.add(cursor.last_rows, report)
            if inline:
                self.lock.heartbeat_if_due()

    def _reload_lane(self, session: Session, step: Step, lane: int) -> LaneRow:
        lanes = session.transaction(f"read the lanes of step {step.id}",
                                    lambda c: self.store.get_lanes(c, self._hash, step.id))
        return next(row for row in lanes if row.lane == lane)

    def _lane_batch(self, conn: Conn, *, step: Step, batch: Batch, bounds: str, size: int,
                    lane: LaneRow, cursor: _Cursor) -> _Cursor:
        """One batch of one lane in one pipelined transaction: two round trips.

        The first carries BEGIN, the cursor advance (which is also the fence: it matches only
        while this run holds the lease and owns the lane, and the cursor is where this loop
        thinks), the batch's statements and the bound of the *next* page (read-only, so
        the next batch need not wait for it); the second the batch's audit row and COMMIT.
        """
        lease = self.lock.held()
        upto = cursor.next_upto
        if upto is None:
            page = conn.execute(bounds, page_params(batch, cursor.after, size, lane.end),
                                prepare=False).fetchone()
            if page is None or all(v is None for v in page):
                fence = self.store.advance_lane(
                    conn, self._hash, step.id, lane.lane, expect_batches=cursor.batches_done,
                    cursor=cursor.after, batch_size=size, done=True, run_id=self.run_id,
                    lease=lease)
                if fence.fetchone() is None:
                    raise _LaneMoved()
                return dataclasses.replace(cursor, done=True)
            upto = list(page)
        fence = self.store.advance_lane(
            conn, self._hash, step.id, lane.lane, expect_batches=cursor.batches_done,
            cursor=upto, batch_size=size, done=False, run_id=self.run_id, lease=lease)
        params = {**key_params(batch, "after", cursor.after), **key_params(batch, "upto", upto)}
        results = [_execute(conn, statement, params) for statement in step.sql]
        next_page = conn.execute(bounds, page_params(batch, upto, size, lane.end),
                                 prepare=False)
        if fence.fetchone() is None:
            raise _LaneMoved()
        rows = 0
        for statement, result in zip(step.sql, results, strict=True):
            try:
                count = max(_rowcount(conn, result), 0)
                if (result.statusmessage or "").split(" ", 1)[0] in _WRITES:
                    rows += count  # a check that returns rows does not count as rows done
            except psycopg.Error as exc:
                exc._dm_sql = statement  # type: ignore[attr-defined]
                raise
        page = next_page.fetchone()
        next_upto = None if page is None or all(v is None for v in page) else list(page)
        number = cursor.batches_done + 1
        self.crash.reach("batch.before_commit")
        self.store.record_batch(conn, self._hash, step.id, lane.lane, number,
                                after=cursor.after, upto=upto, rows=rows, run_id=self.run_id)
        return _Cursor(upto, number, False, rows, next_upto)

    # async ----------------------------------------------------------------------------------------

    def _run_async(self, step: Step, before: StepRow) -> None:
        statement = step.sql[0] if step.sql else ""
        target = _async_target(step.kind, statement)
        if target is None:
            raise StepFailed(f"step {step.id}: cannot tell which object {statement!r} builds",
                             sql_text=statement)
        kind, name, table = target
        usable = _usable_check(kind, name, table, step.details.get("check"))
        job_id = before.job_id
        if job_id is None and (before.status in (RUNNING, FAILED) or before.attempts > 0):
            job_id = self._adopt_previous(step, kind, name, table, usable)
            if job_id == "":  # already usable
                self._finish_async(step, None)
                return
        if job_id is None:
            try:
                job_id = self._submit(step, statement, target)
            except _AlreadySubmitted:
                # the connection dropped after the submit went through: adopt that job
                job_id = self._adopt_previous(step, kind, name, table, usable)
                if job_id == "":
                    self._finish_async(step, None)
                    return
                if job_id is None:  # an invalid leftover was dropped: build again
                    job_id = self._submit(step, statement, target)
        self._wait(step, job_id, kind, name, table, usable=usable)
        self._finish_async(step, job_id)

    def _adopt_previous(self, step: Step, kind: str, name: str, table: str,
                        usable: tuple[str, tuple[Any, ...]]) -> str | None:
        """After a crash between submit and storing the job id (or a submit whose answer was
        lost): find what is there. "" when the object is usable already, a job id to wait
        for, or None to submit anew."""
        if self._query_bool(*usable):
            return ""
        exists = self._object_exists(kind, name, table)
        job = self.session.autocommit("find the job", lambda c: c.execute(
            "SELECT job_id, lower(status) FROM sys.jobs WHERE object_name = %s OR "
            "object_name LIKE %s ORDER BY start_time DESC LIMIT 1",
            (name, f"%.{name}")).fetchone())
        if job is not None and (exists or job[1] in ("submitted", "processing")):
            self._store_job(step, str(job[0]))
            return str(job[0])
        if not exists:
            return None
        if kind == "index":
            # an invalid leftover with no job to tell its story: drop it and build again
            self._drop_index(step, name, table)
        return None

    def _submit(self, step: Step, statement: str, target: tuple[str, str, str]) -> str:
        self.session.transaction("lock fence", self.lock.fence)

        attempts = 0

        def run(conn: Conn) -> str:
            nonlocal attempts
            attempts += 1
            # a retry after a lost connection: the first submit may have gone through
            if attempts > 1 and self._object_exists(*target):
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
            job_id = self.session.autocommit(f"step {step.id} submit", run)
        except psycopg.Error as exc:
            raise StepFailed(f"step {step.id} ({step.kind.value}) failed: {describe(exc)}",
                             sql_text=statement) from None
        self.crash.reach("async.after_submit")
        self._store_job(step, job_id)
        self.emit(Event("async.submitted", f"step {step.id}: job {job_id} submitted", step.id,
                        data={"job_id": job_id}))
        return job_id

    def _store_job(self, step: Step, job_id: str) -> None:
        def run(conn: Conn) -> None:
            self.lock.fence(conn)
            self.store.update_step(conn, self._hash, step.id, {"job_id": job_id})
        self.session.transaction(f"record job of step {step.id}", run)

    def _wait(self, step: Step, job_id: str, kind: str, name: str, table: str, *,
              usable: tuple[str, tuple[Any, ...]]) -> None:
        deadline = time.monotonic() + self.options.async_timeout_seconds
        announced = False
        while True:
            self.crash.reach("async.wait")
            self.lock.heartbeat_if_due()
            job = self.session.autocommit("poll sys.jobs", lambda c: c.execute(
                "SELECT status, details FROM sys.jobs WHERE job_id = %s",
                (job_id,)).fetchone())
            status = None if job is None else str(job[0]).lower()
            if status == "completed" or (job is None and self._query_bool(*usable)):
                if not self._query_bool(*usable):
                    self._async_failed(step, job_id, kind, name, table, usable=usable,
                                       details="the job completed but the object is not usable")
                return
            if status in ("failed", "cancelled") or job is None:
                details = "the job is gone from sys.jobs" if job is None else \
                    f"{status}: {job[1] or 'no details'}"
                self._async_failed(step, job_id, kind, name, table, details=details,
                                   usable=usable)
            if not announced:
                self.emit(Event("async.wait", f"step {step.id}: waiting for job {job_id}",
                                step.id, data={"job_id": job_id}))
                announced = True
            if time.monotonic() > deadline:
                raise AsyncTimeout(
                    f"step {step.id}: job {job_id} did not finish within "
                    f"{self.options.async_timeout_seconds:g}s (status {status})",
                    hint="it goes on running; 'dsql-migrate apply' again resumes the wait")
            time.sleep(self.options.async_poll_seconds)

    def _async_failed(self, step: Step, job_id: str, kind: str, name: str, table: str, *,
                      details: str, usable: tuple[str, tuple[Any, ...]]) -> None:
        dropped = ""
        if kind == "index" and self._object_exists(kind, name, table):
            if self._query_bool(*usable):  # not this job's: a valid index of that name
                dropped = f"; a valid index {name} exists and was left as it is"
            else:
                # an invalid unique index keeps enforcing uniqueness: it must not stay behind
                self._drop_index(step, name, table)
                dropped = f"; the invalid index {name} was dropped"
        # the next attempt starts with a fresh job
        self._store_job_cleared(step)
        raise StepFailed(f"step {step.id}: job {job_id} failed: {details}{dropped}",
                         sql_text=step.sql[0] if step.sql else None,
                         hint="fix the data (for a unique index: the duplicates), then run "
                         "'dsql-migrate apply' again")

    def _store_job_cleared(self, step: Step) -> None:
        def run(conn: Conn) -> None:
            self.lock.fence(conn)
            self.store.update_step(conn, self._hash, step.id, {"job_id": None})
        self.session.transaction(f"clear job of step {step.id}", run)

    def _drop_index(self, step: Step, name: str, table: str) -> None:
        schema = _schema_of(table)
        ident = sql.Identifier(schema, name) if schema else sql.Identifier(name)
        statement = sql.SQL("DROP INDEX IF EXISTS {}").format(ident)
        self.session.transaction("lock fence", self.lock.fence)
        self.session.autocommit(f"step {step.id} drop invalid index",
                                lambda c: c.execute(statement))

    def _finish_async(self, step: Step, job_id: str | None) -> None:
        def run(conn: Conn) -> None:
            self.lock.fence(conn)
            self._mark_done(conn, step)
        self.session.transaction(f"mark step {step.id} done", run)

    def _object_exists(self, kind: str, name: str, table: str) -> bool:
        if kind == "index":
            schema = _schema_of(table)
            rel = f'"{schema}"."{name}"' if schema else f'"{name}"'
            return self._query_bool("SELECT to_regclass(%s) IS NOT NULL", (rel,))
        return self._query_bool(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = "
            "to_regclass(%s) AND conname = %s)", (table, name))

    def _query_bool(self, query: str, params: Sequence[Any]) -> bool:
        def run(conn: Conn) -> Any:
            try:
                return conn.execute(query.encode() if not params else query,
                                    params or None).fetchone()
            except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedObject):
                return None  # a ::regclass cast of an object that is not there (yet)
        row = self.session.autocommit("check the catalog", run)
        return bool(row and row[0])

    _EXECUTORS: ClassVar[dict[StepKind, Callable[[Runner, Step, StepRow], None]]] = dict({
        StepKind.DDL: _run_ddl,
        StepKind.SWAP: _run_ddl,
        StepKind.DML: _run_dml,
        StepKind.VERIFY: _run_verify,
        StepKind.BACKFILL: _run_batched,
        StepKind.COPY: _run_batched,
        StepKind.ASYNC_INDEX: _run_async,
        StepKind.ASYNC_VALIDATE: _run_async,
    })


@dataclass(frozen=True)
class _Cursor:
    """Where a lane stands: the last key done and its batches so far."""

    after: list[Any] | None
    batches_done: int
    done: bool
    last_rows: int = 0
    #: the bound of the next page, read with the previous batch (None: read it first)
    next_upto: list[Any] | None = None


#: the command tags of statements whose row count is rows written
_WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE"})


class _LaneMoved(Exception):
    """The fence of a lane's batch matched nothing: another run owns the lane, or its cursor
    moved (a retried batch whose first COMMIT went through)."""


class _AlreadySubmitted(Exception):
    """A retried async submit found its object already there: the first try went through."""


class _Progress:
    """Rows and batches of a step so far, added to by every lane."""

    def __init__(self, rows: int, batches: int) -> None:
        self.rows = rows
        self.batches = batches
        self._lock = threading.Lock()

    def add(self, rows: int, report: Callable[[int, int], None]) -> None:
        """Count a committed batch and report the totals, under one lock: batch numbers are
        reported in order whatever lane committed them."""
        with self._lock:
            self.rows += rows
            self.batches += 1
            report(self.rows, self.batches)


def _rowcount(conn: Conn, cursor: psycopg.Cursor[Any]) -> int:
    """The rows a statement touched; in pipeline mode, wait for its result first."""
    if conn.pgconn.pipeline_status:  # in pipeline mode results arrive at a sync
        with conn.pipeline() as pipeline:
            pipeline.sync()
    return cursor.rowcount


def _execute(conn: Conn, statement: str,
             params: Mapping[str, Any] | None = None) -> psycopg.Cursor[Any]:
    """Run one statement of a plan (as written: no placeholders unless ``params``), tagging a
    failure with the statement for the error report."""
    try:
        if params is None:
            return conn.execute(statement.encode())
        # never a server-side prepared statement: a generic plan cannot fold
        # "%(after)s IS NULL OR key > %(after)s" and would scan every batch from the start
        return conn.execute(statement, params, prepare=False)
    except psycopg.Error as exc:
        exc._dm_sql = statement  # type: ignore[attr-defined]
        raise


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
        rel = f'"{schema}"."{name}"' if schema else f'"{name}"'
        return ("SELECT coalesce((SELECT indisvalid AND indisready FROM pg_catalog.pg_index "
                "WHERE indexrelid = to_regclass(%s)), false)", (rel,))
    return ("SELECT coalesce((SELECT convalidated FROM pg_catalog.pg_constraint WHERE conrelid "
            "= to_regclass(%s) AND conname = %s), false)", (table, name))


def key_params(batch: Batch, prefix: str, values: Sequence[Any] | None) -> dict[str, Any]:
    """``prefix_<column>`` and ``prefix_<n>`` (1-based) for each key column: both spellings."""
    params: dict[str, Any] = {}
    for index, key in enumerate(batch.key):
        value = None if values is None else values[index]
        params[f"{prefix}_{key}"] = value
        params[f"{prefix}_{index + 1}"] = value
    return params


def page_params(batch: Batch, after: Sequence[Any] | None, size: int,
                end: Sequence[Any] | None = None) -> dict[str, Any]:
    """The parameters of the page-bound query: the cursor, the page size and the lane's end."""
    return {**key_params(batch, "after", after), **key_params(batch, "end", end), "size": size}


def _reltuples(conn: Conn, table: str) -> int:
    row = conn.execute("SELECT reltuples::bigint FROM pg_catalog.pg_class "
                       "WHERE oid = to_regclass(%s)", (table,)).fetchone()
    return max(int(row[0]), 0) if row is not None and row[0] is not None else 0


def sized_bounds(batch: Batch) -> str:
    """The plan's page-bound query with its page size made a parameter (``%(size)s``), so the
    runner can shrink batches; a query without a recognisable LIMIT is replaced by an
    equivalent keyset query."""
    if "%(size)s" in batch.bounds:
        return batch.bounds
    pattern = re.compile(rf"\bLIMIT\s+{batch.size}\b(?=\s*\)\s*(AS\s+)?\w+)", re.IGNORECASE)
    if pattern.search(batch.bounds):
        return pattern.sub("LIMIT %(size)s", batch.bounds, count=1)
    return _keyset_bounds(batch)


def _keyset_bounds(batch: Batch) -> str:
    """The last key of the next page of at most ``%(size)s`` rows after the cursor."""
    cols = [sql.Identifier(k).as_string() for k in batch.key]
    afters = [f"%(after_{k})s::{t}" for k, t in zip(batch.key, batch.key_types, strict=True)]
    ends = [f"%(end_{k})s::{t}" for k, t in zip(batch.key, batch.key_types, strict=True)]
    keys = ", ".join(cols)
    cond = f"({keys}) > ({', '.join(afters)})"
    cap = f"({ends[0]} IS NULL OR ({keys}) <= ({', '.join(ends)}))"
    desc = ", ".join(f"{c} DESC" for c in cols)
    table = batch.table if batch.table.startswith('"') or "." in batch.table \
        else sql.Identifier(batch.table).as_string()
    return (f"SELECT {keys} FROM (SELECT {keys} FROM {table} WHERE ({afters[0]} IS NULL "
            f"OR {cond}) AND {cap} ORDER BY {keys} LIMIT %(size)s) AS page "
            f"ORDER BY {desc} LIMIT 1")


def _row_width(conn: Conn, batch: Batch) -> int | None:
    """Average bytes per row of the batched table, index entries counted."""
    try:
        row = conn.execute(
            f"SELECT avg(pg_column_size(s.*))::bigint, (SELECT count(*) FROM "
            f"pg_catalog.pg_index WHERE indrelid = to_regclass(%s)) FROM (SELECT * FROM "
            f"{batch.table} LIMIT 200) AS s", (batch.table,)).fetchone()
    except psycopg.Error as exc:
        log.info("could not estimate the row width of %s: %s", batch.table, describe(exc))
        return None
    if row is None or row[0] is None:
        return None
    width, indexes = int(row[0]), int(row[1] or 0)
    # every index stores about the key plus a tuple pointer: count each as half a row
    return max(int(width * (1 + 0.5 * indexes)), 1)


def _passes(columns: list[str], rows: list[dict[str, Any]]) -> bool:
    """A check passes when its ``ok`` column is true in every row, or, with no ``ok`` column,
    when it returns no row (a data pre-check lists the offending rows)."""
    if "ok" in columns:
        return all(r.get("ok") is True for r in rows)
    return not rows


def _jsonable(row: Sequence[Any]) -> list[Any]:
    from ..query import to_jsonable
    return [to_jsonable(v) for v in row]


def _figures_text(figures: list[dict[str, Any]]) -> str:
    parts = []
    for figure in figures:
        for row in figure["rows"][:5]:
            parts.append(", ".join(f"{k}={v}" for k, v in row.items()))
        if not figure["rows"]:
            parts.append("no rows")
    return "; ".join(parts)
