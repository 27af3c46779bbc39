"""``swap``: the rename that keeps a recreated table's original as its backup (``t`` →
``t__old``); the next step (a ``ddl``) puts ``t__new`` in place.

Shape: as ``ddl``, after re-running the verification the step names (``details["verified_by"]``)
right before the first rename: the source may have changed since it was verified.

Resume: as ``ddl``; when the first rename already took effect, the verification is not run
again (the source is the backup now, and nothing writes it).

Probe: the renames' postconditions hold.

With ``--writes=cdc`` (``details["writes"]``) the step is the cut-over of
:mod:`..cdc.cutover`: both renames, inside a recorded write freeze, after a verification of
every key range with writes frozen.
"""

from __future__ import annotations

from ...plan import Step, StepKind
from .. import postcondition
from ..errors import StepFailed, VerificationFailed
from ..events import Event
from ..state import FAILED, RUNNING, StepRow
from .base import StepContext, StepKindImpl, implementation_for
from .ddl import run_statements, statements_probe
from .verify import check, figures_text


@implementation_for(StepKind.SWAP)
class Swap(StepKindImpl):
    def execute(self, ctx: StepContext, step: Step, before: StepRow) -> None:
        if step.details.get("writes") == "cdc":
            from ..cdc.cutover import cut_over

            cut_over(ctx, step, before, resumed=False)
            return
        if before.statements_done == 0:
            reverify(ctx, step)
        run_statements(ctx, step, before, resumed=False)

    def resume(self, ctx: StepContext, step: Step, before: StepRow) -> None:
        resumed = before.status in (RUNNING, FAILED)
        if step.details.get("writes") == "cdc":
            from ..cdc.cutover import cut_over

            cut_over(ctx, step, before, resumed=resumed)
            return
        if before.statements_done == 0:
            first = postcondition.for_statement(step.sql[0]) if step.sql else None
            if not (resumed and first is not None and ctx.holds(first)):
                reverify(ctx, step)
        run_statements(ctx, step, before, resumed=resumed)

    def probe(self, ctx: StepContext, step: Step) -> str | None:
        return statements_probe(ctx, step)


def reverify(ctx: StepContext, step: Step) -> None:
    verified_by = step.details.get("verified_by")
    if verified_by is None:
        return
    ids = verified_by if isinstance(verified_by, list) else [verified_by]
    for vid in ids:
        verify = next((s for s in ctx.plan.steps if s.id == int(vid)), None)
        if verify is None:
            raise StepFailed(f"step {step.id}: verification step {vid} is not in the plan")
        ok, figures, failed_sql = check(ctx, verify)
        ctx.emit(Event("verify", f"step {step.id}: re-ran verification {vid} before the "
                       f"swap: {'passed' if ok else 'FAILED'}", step.id,
                       data={"figures": figures, "ok": ok}))
        if not ok:
            raise VerificationFailed(
                f"step {step.id}: verification {vid} no longer passes, the swap did not "
                f"happen: {figures_text(figures)}", sql_text=failed_sql,
                hint="the source changed since it was copied; nothing was lost. Pause "
                "writes, then re-plan (or run again with writes paused)")
