"""``dml``: bounded DML statements, run exactly once.

Shape: the statements and the done mark in one transaction: either both commit or neither.

Resume: the state row, read under ``FOR UPDATE`` in the same transaction, says whether the
statements committed; if so nothing runs again.

Probe: none; the state row is the evidence, in the statements' own transaction.
"""

from __future__ import annotations

import psycopg

from ...plan import Step, StepKind
from ..session import Conn
from ..state import DONE, StepRow
from .base import StepContext, StepKindImpl, implementation_for


@implementation_for(StepKind.DML)
class Dml(StepKindImpl):
    def execute(self, ctx: StepContext, step: Step, before: StepRow) -> None:
        def run(conn: Conn) -> int:
            current = ctx.store.get_step(conn, ctx.plan_hash, step.id, for_update=True)
            if current.status == DONE:
                return 0
            rows = 0
            for statement in step.sql:
                try:
                    rows += max(conn.execute(statement.encode()).rowcount, 0)
                except psycopg.Error as exc:
                    exc._dm_sql = statement  # type: ignore[attr-defined]
                    raise
            ctx.crash.reach("dml.before_commit")
            ctx.mark_done(conn, step, rows_done=rows)
            return rows
        ctx.fenced(f"step {step.id}", run)
