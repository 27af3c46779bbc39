"""The Runner core: applies a Plan one step at a time, each recorded in the state tables so that a
crash, a kill or a lost connection at any instant resumes exactly where it stopped.

The core keeps the orchestration: the lease lock, the plan's registration and state, the order of
the steps, the destructive-step gate and the events. How each step kind runs, resumes and tells
that it is already done lives in its own module under :mod:`.steps`, found by step kind
(:func:`.steps.implementation`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import psycopg

from ..errors import DsqlMigrateError, ExitCode
from ..plan import Plan, Step
from . import guard
from .cdc import cutover as cdc
from .cdc.freeze import recover as recover_freezes
from .errors import (
    RESUME_HINT,
    AsyncTimeout,
    DestructiveRefused,
    PlanConflict,
    StepFailed,
    VerificationFailed,
)
from .events import Event, Listener, ignore, serialized
from .faults import CrashPoints
from .lock import LeaseLock
from .options import ApplyResult, RunOptions
from .retry import describe
from .session import Conn, RetriesExhausted, Session
from .state import (
    ABANDONED,
    DONE,
    FAILED,
    PENDING,
    RUNNING,
    STOPPED,
    StateStore,
    StepRow,
)
from .steps import StepContext, implementation

__all__ = [
    "RESUME_HINT",
    "ApplyResult",
    "AsyncTimeout",
    "DestructiveRefused",
    "PlanConflict",
    "RunOptions",
    "Runner",
    "StepFailed",
    "VerificationFailed",
]

log = logging.getLogger(__name__)

#: step state rows inserted per transaction when a plan is registered
STEP_ROWS_PER_TRANSACTION = 1000


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
        self._check_role(plan)  # before anything, the state tables included, is changed
        cdc.preflight(plan, self.options)  # a --writes=cdc plan: its stream, before anything
        self.store.ensure(self.session)
        holder = self.lock.try_acquire()
        if holder is not None:
            if self.options.wait_lock_seconds:  # only when there is something to wait for
                self.emit(Event("lock.waiting", f"waiting for the lock held by "
                                f"{holder.describe()}",
                                data={"seconds": self.options.wait_lock_seconds,
                                      "holder": holder.as_dict()}))
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

    def _check_role(self, plan: Plan) -> None:
        """Refuse a plan with role statements the connection may not run (only admin may
        ``AWS IAM GRANT`` on DSQL): :func:`dsql_migrate.roles.check_connection`."""
        needs = {str(s.details["requires"]) for s in plan.steps if s.details.get("requires")}
        if needs:
            from ..roles import check_connection, psycopg_fetch

            self.session.autocommit("check the connection's role", lambda conn: check_connection(
                psycopg_fetch(conn), needs))

    def _apply_locked(self, plan: Plan) -> ApplyResult:
        result = ApplyResult(plan.hash, "done")
        status, resuming = self.session.transaction("register the plan", self._register)
        if status == DONE:
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
        self._on_start(plan, rows)
        for step in plan.steps:
            row = rows[step.id]
            if row.status == DONE:
                result.steps_skipped.append(step.id)
                self.emit(Event("step.skip", f"step {step.id} already done: {step.summary}",
                                step.id))
                continue
            self._refuse_unapproved(plan, step)
            if resuming and _untouched(row) and self._already_in_place(step):
                result.steps_skipped.append(step.id)
                continue
            self._before_step(step, row)
            self._run_recorded(step, row)
            result.steps_run.append(step.id)
        self._on_end(plan)
        self._set_plan_status(DONE)
        self.emit(Event("plan.done", f"plan {plan.hash} applied",
                        data={"hash": plan.hash, "steps_run": len(result.steps_run)}))
        return result

    # -- hook points: checks of the whole database around the steps ------------------------------

    def _on_start(self, plan: Plan, rows: dict[int, StepRow]) -> None:
        """Before the first step that runs (the plan is registered, the lock held): the
        premise, unless a run already began (then the tables are partly changed)."""
        self._guarded(guard.check_start, resumed=any(
            r.status != PENDING or r.attempts for r in rows.values()))
        if cdc.uses_cdc(plan):  # a write freeze a stopped run left in place is undone first
            recover_freezes(self._context())

    def _before_step(self, step: Step, row: StepRow) -> None:
        """Right before ``step`` runs (after the destructive-step gate and the resume probe):
        the premise again before a destructive step."""
        self._guarded(guard.check_before, step, begun=row.statements_done > 0)

    def _on_end(self, plan: Plan) -> None:
        """After the last step, before the plan is marked done: the promise."""
        self._guarded(guard.check_end)

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

    # -- the steps in order ----------------------------------------------------------------------

    def _refuse_unapproved(self, plan: Plan, step: Step) -> None:
        if not step.destructive or self.options.allow_destructive or plan.approved_destructive:
            return
        self._set_plan_status(STOPPED, f"stopped before destructive step {step.id}")
        self.emit(Event("plan.stopped", f"stopped before destructive step {step.id}", step.id))
        raise DestructiveRefused(
            f"step {step.id} is destructive ({step.summary}); the run stopped before it "
            + (f"with steps 1-{step.id - 1} applied" if step.id > 1 else "with nothing "
               "applied"),
            hint="review it, then run 'dsql-migrate apply --allow-destructive' to go on")

    def _run_recorded(self, step: Step, row: StepRow) -> None:
        """Run ``step``; a failure is recorded in the state (step and plan failed) first."""
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

    def _register(self, conn: Conn) -> tuple[str, bool]:
        """Record the plan (or find it); its status and whether an earlier run registered it."""
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
            return PENDING, False
        if existing.status == DONE:
            return DONE, True
        self.store.set_plan_status(conn, plan.hash, RUNNING, run_id=self.run_id)
        return existing.status, True

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

    def _context(self) -> StepContext:
        assert self.plan is not None
        return StepContext(session=self.session, store=self.store, lock=self.lock,
                           options=self.options, emit=self.emit, crash=self.crash,
                           plan=self.plan, plan_hash=self._hash)

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

    def _already_in_place(self, step: Step) -> bool:
        """A step of a resumed plan that no run started: its kind's probe says whether its
        effect is already there (an earlier run made it and lost the record; DESIGN.md §3.3).
        Asked at the step's turn, after the steps before it: a drop's "gone" only means done
        once whatever comes before it has run."""
        evidence = implementation(step.kind).probe(self._context(), step)
        if evidence is None:
            return False

        def record(conn: Conn) -> None:
            self.lock.fence(conn)
            self.store.update_step(conn, self._hash, step.id,
                                   {"statements_done": len(step.sql)})
            self.store.mark_step(conn, self._hash, step.id, DONE, run_id=self.run_id)
        self.session.transaction(f"mark step {step.id} done", record)
        self.emit(Event("step.skip", f"step {step.id} already in place ({evidence}): "
                        f"{step.summary}", step.id, data={"evidence": evidence}))
        return True

    def _run_step(self, step: Step, row: StepRow) -> None:
        impl = implementation(step.kind)
        ctx = self._context()
        resumed = not _untouched(row)
        verb = "resuming" if resumed else "running"
        rows_done = impl.rows_done(ctx, step, row) if resumed else row.rows_done
        self.emit(Event("step.resume" if resumed else "step.start",
                        f"step {step.id} ({step.kind.value}) {verb}: {step.summary}", step.id,
                        data={"kind": step.kind.value, "table": step.table,
                              "rows_estimate": step.estimate.rows,
                              "rows_done": rows_done}))
        started = time.monotonic()
        before = self._mark_running(step)
        if resumed:
            impl.resume(ctx, step, before)
        else:
            impl.execute(ctx, step, before)
        self.emit(Event("step.done", f"step {step.id} done", step.id,
                        data={"seconds": round(time.monotonic() - started, 3)}))


def _untouched(row: StepRow) -> bool:
    """No run has started the step: its own resume rule has nothing to pick up."""
    return row.status not in (RUNNING, FAILED) and row.attempts == 0
