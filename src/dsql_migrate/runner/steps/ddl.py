"""``ddl``: DDL statements, each alone in its transaction, each recorded once it took effect.

Shape: mark running (DML) → each statement alone (DDL) → record it (DML) → ... → done (DML).
The backup drop of a recreation (``DROP TABLE t__old``, destructive) is a ``ddl`` step too.

Resume: the statements recorded as done are skipped; the first one not recorded may have taken
effect before the kill, which its catalog postcondition (:mod:`..postcondition`) tells; without
one, the statement runs again (the module only leaves out statements that are safe to repeat).

Probe: every statement has a postcondition and every one holds.

The rename that ends a ``--writes=cdc`` cut-over (``details["unfreeze"]``) then gives back the
privileges its freeze revoked (:func:`..cdc.cutover.unfreeze`).
"""

from __future__ import annotations

import logging

import psycopg

from ...plan import Step, StepKind
from .. import postcondition
from ..errors import StepFailed
from ..retry import describe
from ..session import Conn
from ..state import FAILED, RUNNING, StepRow
from ._sql import execute as run_statement
from .base import StepContext, StepKindImpl, implementation_for

log = logging.getLogger(__name__)


@implementation_for(StepKind.DDL)
class Ddl(StepKindImpl):
    def execute(self, ctx: StepContext, step: Step, before: StepRow) -> None:
        run_statements(ctx, step, before, resumed=False)
        _unfreeze(ctx, step)

    def resume(self, ctx: StepContext, step: Step, before: StepRow) -> None:
        run_statements(ctx, step, before, resumed=before.status in (RUNNING, FAILED))
        _unfreeze(ctx, step)

    def probe(self, ctx: StepContext, step: Step) -> str | None:
        return statements_probe(ctx, step)


def _unfreeze(ctx: StepContext, step: Step) -> None:
    """The rename that ends a --writes=cdc cut-over gives back the privileges the freeze
    took (``details["unfreeze"]``; a kill before this is undone when the next run starts)."""
    if step.details.get("unfreeze"):
        from ..cdc.cutover import unfreeze

        unfreeze(ctx, step)


def statements_probe(ctx: StepContext, step: Step) -> str | None:
    """The descriptions of the statements' postconditions when every one holds."""
    if not step.sql:
        return None
    checks = [postcondition.for_statement(statement) for statement in step.sql]
    if any(check is None for check in checks):
        return None
    held: list[str] = []
    for check in checks:
        assert check is not None
        if not ctx.holds(check):
            return None
        held.append(check.description)
    return "; ".join(held)


def run_statements(ctx: StepContext, step: Step, before: StepRow, *, resumed: bool) -> None:
    """Run the step's statements from the first one not recorded, each recorded after it."""
    between = "swap.between" if step.kind == StepKind.SWAP else "ddl.between"
    for index in range(before.statements_done, len(step.sql)):
        statement = step.sql[index]
        check = postcondition.for_statement(statement)
        if index > before.statements_done:
            ctx.crash.reach(between)
        if resumed and index == before.statements_done and check is not None \
                and ctx.holds(check):
            log.info("step %s: %s already took effect (%s)", step.id, statement,
                     check.description)
        else:
            execute_ddl(ctx, step, statement, check)
            ctx.crash.reach("ddl.after_execute")
        last = index == len(step.sql) - 1

        def record(conn: Conn, done: int = index + 1, last: bool = last) -> None:
            ctx.store.update_step(conn, ctx.plan_hash, step.id, {"statements_done": done})
            if last:
                ctx.mark_done(conn, step)
        ctx.fenced(f"record step {step.id}", record)
    if not step.sql or before.statements_done >= len(step.sql):
        ctx.finish(step)


def execute_ddl(ctx: StepContext, step: Step, statement: str,
                check: postcondition.Postcondition | None) -> None:
    """One DDL statement in its own transaction (autocommit); a retry after a lost connection
    first asks the postcondition whether the first try went through."""
    # the lease must still be ours right before a write that cannot carry the fence
    ctx.session.transaction("lock fence", ctx.lock.fence)
    ctx.crash.reach("ddl.before_execute")
    tried = False

    def run(conn: Conn) -> None:
        nonlocal tried
        if tried and check is not None:
            # the connection dropped or the commit conflicted: did it take effect anyway?
            row = conn.execute(check.query, check.params).fetchone()
            if row and row[0]:
                return
        tried = True
        run_statement(conn, statement)
    try:
        ctx.session.autocommit(f"step {step.id}", run)
    except psycopg.Error as exc:
        raise StepFailed(f"step {step.id} ({step.kind.value}) failed: {describe(exc)}",
                         sql_text=statement) from None
