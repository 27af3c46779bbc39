"""Re-syncing changed keys from the source into the new table.

One transaction per batch of keys: delete them from the new table, copy the rows the source
still has. That is an upsert for a key the source has and a delete for one it no longer has,
whatever the stream said last, so duplicate and reordered records do no harm. A batch holds at
most the verify step's batch size (which the planner sized for two writes per row under the
row and byte limits of a transaction), and is retried whole on an optimistic-concurrency
conflict by the session (:mod:`..retry`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ...plan import Step
from ..errors import StepFailed
from ..session import Conn
from ..steps._sql import execute as run_statement
from ..steps.base import StepContext


def statements(step: Step) -> list[str]:
    found = step.details.get("resync_keys")
    if not isinstance(found, list) or not found:
        raise StepFailed(f"step {step.id}: the plan has no re-sync statements for --writes=cdc",
                         hint="plan again with --writes=cdc")
    return [str(s) for s in found]


def resync(ctx: StepContext, verify: Step, keys: Iterable[Sequence[str]]) -> int:
    """Re-sync ``keys`` (text values, in the key's column order); the number of keys."""
    todo = sorted(set(tuple(k) for k in keys))
    if not todo:
        return 0
    sql = statements(verify)
    size = verify.batch.size if verify.batch is not None else 500
    width = len(todo[0])
    for start in range(0, len(todo), size):
        chunk = todo[start:start + size]
        params: dict[str, Any] = {f"keys_{i + 1}": [k[i] for k in chunk] for i in range(width)}

        def run(conn: Conn, params: dict[str, Any] = params) -> None:
            ctx.lock.fence(conn)
            for statement in sql:
                run_statement(conn, statement, params)
        ctx.session.transaction(f"step {verify.id} re-sync {len(chunk)} changed key(s)", run)
        ctx.lock.heartbeat_if_due()
    return len(todo)
