"""``copy``: the rows of a table being recreated, ``INSERT ... SELECT`` into ``t__new`` batch by
batch over the source key, in lanes walked at once.

Shape and resume: the lanes of :mod:`.lanes`. Nothing but the copy writes ``t__new`` until the
swap, so its batches can use the most rows a transaction allows next to the state rows.

Probe: none; whether every row arrived is the next ``verify`` step's question, and the cursors
in the state tables say which batches committed.

With ``--writes=cdc`` (``details["writes"]``), the moment the CDC stream is read from is recorded
first (:func:`..cdc.cutover.record_start`, once per plan and table).
"""

from __future__ import annotations

from ...plan import Step, StepKind
from ..state import StepRow
from .base import StepContext, StepKindImpl, implementation_for
from .lanes import rows_so_far, run_batched


@implementation_for(StepKind.COPY)
class Copy(StepKindImpl):
    def execute(self, ctx: StepContext, step: Step, before: StepRow) -> None:
        if step.details.get("writes") == "cdc":
            from ..cdc.cutover import record_start

            record_start(ctx, step)
        run_batched(ctx, step, before)

    def rows_done(self, ctx: StepContext, step: Step, row: StepRow) -> int | None:
        return rows_so_far(ctx, step)
