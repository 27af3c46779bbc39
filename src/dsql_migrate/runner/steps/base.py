"""What every step kind's module gets (:class:`StepContext`) and implements (:class:`StepKindImpl`),
and the registry that finds a kind's implementation (:func:`implementation_for`), the way Alembic
dispatches an op to ``@Operations.implementation_for``.

A kind's module holds, side by side:

``execute``
    the step's first run: its transaction shape (DSQL.md §2: one DDL per transaction, never with
    DML), each write recorded in the state tables under the lease fence.
``resume``
    the step's run after an earlier attempt of it was interrupted (its state row is ``running``
    or ``failed``): where it picks up, and why nothing is done twice.
``probe``
    the postcondition: whether the step's whole effect is already in the database. When the
    Runner resumes a plan, it asks it of every step that no run has started yet (the one that
    was interrupted follows ``resume``), at the step's turn (DESIGN.md §3.3), and marks a step
    whose effect is there done instead of running it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import psycopg

from ...plan import Plan, Step, StepKind
from ..events import Listener
from ..faults import CrashPoints
from ..lock import LeaseLock
from ..options import RunOptions
from ..postcondition import Postcondition
from ..session import Conn, Session
from ..state import DONE, StateStore, StepRow

T = TypeVar("T")


@dataclass
class StepContext:
    """The services of one run that a step kind uses: the session, the state, the lease, the
    options, the event listener and the crash points, for one plan."""

    session: Session
    store: StateStore
    lock: LeaseLock
    options: RunOptions
    emit: Listener
    crash: CrashPoints
    plan: Plan
    plan_hash: str

    @property
    def run_id(self) -> str:
        return self.lock.run_id

    def fenced(self, what: str, fn: Callable[[Conn], T]) -> T:
        """``fn`` in one transaction that first checks the lease is still this run's."""
        def run(conn: Conn) -> T:
            self.lock.fence(conn)
            return fn(conn)
        return self.session.transaction(what, run)

    def mark_done(self, conn: Conn, step: Step, **values: Any) -> None:
        """Mark ``step`` done in the transaction of ``conn`` (with its figures, if any)."""
        if values:
            self.store.update_step(conn, self.plan_hash, step.id, values)
        self.store.mark_step(conn, self.plan_hash, step.id, DONE, run_id=self.run_id)

    def finish(self, step: Step) -> None:
        """Mark ``step`` done in a transaction of its own."""
        self.fenced(f"mark step {step.id} done", lambda conn: self.mark_done(conn, step))

    def update(self, step: Step, values: dict[str, Any], what: str) -> None:
        self.fenced(what, lambda conn: self.store.update_step(conn, self.plan_hash, step.id,
                                                              values))

    def holds(self, check: Postcondition) -> bool:
        return self.query_bool(check.query, check.params)

    def query_bool(self, query: str, params: Sequence[Any]) -> bool:
        """A catalog query's one boolean, outside any transaction; an object that is not there
        (a ``::regclass`` cast of it) answers false."""
        def run(conn: Conn) -> Any:
            try:
                return conn.execute(query.encode() if not params else query,
                                    params or None).fetchone()
            except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedObject):
                return None
        row = self.session.autocommit("check the catalog", run)
        return bool(row and row[0])


class StepKindImpl:
    """How one step kind runs, resumes and tells that it is done. Subclasses register with
    :func:`implementation_for`."""

    #: the kinds this implementation was registered for
    kinds: ClassVar[tuple[StepKind, ...]] = ()

    def execute(self, ctx: StepContext, step: Step, before: StepRow) -> None:
        raise NotImplementedError

    def resume(self, ctx: StepContext, step: Step, before: StepRow) -> None:
        """The run of a step an earlier attempt started; by default the step runs again from
        the start (its kind makes that safe)."""
        self.execute(ctx, step, before)

    def probe(self, ctx: StepContext, step: Step) -> str | None:
        """What shows the step's whole effect is in place, or None: not in place, or this kind
        cannot tell from the database (it then runs, and running again is safe)."""
        return None

    def rows_done(self, ctx: StepContext, step: Step, row: StepRow) -> int | None:
        """Rows the step has written so far (reported when it resumes)."""
        return row.rows_done


_IMPLEMENTATIONS: dict[StepKind, StepKindImpl] = {}

ImplT = TypeVar("ImplT", bound=type[StepKindImpl])


def implementation_for(*kinds: StepKind) -> Callable[[ImplT], ImplT]:
    """Class decorator: the decorated class implements ``kinds``."""
    def register(cls: ImplT) -> ImplT:
        instance = cls()
        for kind in kinds:
            if kind in _IMPLEMENTATIONS:
                raise RuntimeError(f"step kind {kind.value} is implemented twice: "
                                   f"{type(_IMPLEMENTATIONS[kind]).__name__} and {cls.__name__}")
            _IMPLEMENTATIONS[kind] = instance
        cls.kinds = (*cls.kinds, *kinds)
        return cls
    return register


def implementation(kind: StepKind) -> StepKindImpl:
    try:
        return _IMPLEMENTATIONS[kind]
    except KeyError:
        raise LookupError(f"no implementation for step kind {kind.value}") from None


def registered() -> dict[StepKind, StepKindImpl]:
    return dict(_IMPLEMENTATIONS)
