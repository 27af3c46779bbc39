"""``backfill``: an ``UPDATE`` of a table in place, batch by batch over its key (a new column's
values, a column being tightened).

Shape and resume: the lanes of :mod:`.lanes` (one transaction per batch with its cursor advance
and audit row).

Probe: none; a backfill's statements set each row to a value computed from the row, so a batch
run again writes the same values: the cursors in the state tables are what make it run once.
"""

from __future__ import annotations

from ...plan import Step, StepKind
from ..state import StepRow
from .base import StepContext, StepKindImpl, implementation_for
from .lanes import rows_so_far, run_batched


@implementation_for(StepKind.BACKFILL)
class Backfill(StepKindImpl):
    def execute(self, ctx: StepContext, step: Step, before: StepRow) -> None:
        run_batched(ctx, step, before)

    def rows_done(self, ctx: StepContext, step: Step, row: StepRow) -> int | None:
        return rows_so_far(ctx, step)
