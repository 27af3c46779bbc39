"""Lanes: the batched loop of ``backfill`` and ``copy`` steps (:mod:`.backfill`, :mod:`.copy`).

The step's key range is walked in batches, one transaction each, holding: the lane's cursor
advance (conditional on the lease, on the run owning the lane and on the cursor it started from:
the fence), the step's statements, the next page bound and a ``batches`` audit row. A large
table is split into lanes, disjoint key ranges walked at once on their own connections
(``RunOptions.parallel``); a batch that hits a DSQL limit (54000) is retried at half the size, and
the size a lane had to shrink to is kept in its state row for the next run.

Resume: the lanes and their cursors are in the state tables; a run claims them (the fence then
stops any older runner) and goes on from each lane's cursor. A batch is recorded in the same
transaction as its writes, so it is recorded once, and a batch whose COMMIT answer was lost is
refused by its lane's fence when it is tried again.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from ...plan import Batch, Step
from ...profiles import STATE_ROWS_PER_BATCH
from ..errors import StepFailed
from ..events import Event
from ..lock import LeaseLost
from ..retry import describe, is_limit_error
from ..session import Conn, Session
from ..state import LaneRow, StepRow
from ._sql import WRITES, key_params, page_params, reltuples, row_width, sized_bounds
from ._sql import execute as run_statement
from .base import StepContext

#: a lane only when the table has at least this many batches for each
MIN_BATCHES_PER_LANE = 4
#: keys read per transaction while a large step is split into lanes
SPLIT_READ_ROWS = 200_000


def _initial_batch_size(ctx: StepContext, batch: Batch) -> int:
    """The configured (else the plan's) batch size within the limits; a size a previous
    run had to shrink is kept in the step's lanes (see :meth:`_run_batched`)."""
    limits = ctx.options.limits
    size = ctx.options.batch_size or batch.size
    # the state rows written with each batch count against the row limit too
    size = min(size, limits.rows_per_transaction - STATE_ROWS_PER_BATCH)
    width = ctx.session.autocommit("estimate the row width", lambda c: row_width(c, batch))
    if width:
        budget = int(limits.bytes_per_transaction * ctx.options.byte_budget_share)
        size = min(size, max(budget // width, 1))
    return max(size, 1)


def run_batched(ctx: StepContext, step: Step, before: StepRow) -> None:
    """Walk the step's key range in batches, each a transaction with its cursor advance.

    A large table is split into lanes, disjoint key ranges walked at once on their own
    connections (``RunOptions.parallel``): DSQL scales with concurrent transactions, and
    every batch stays within the per-transaction limits. A single lane left to walk runs on
    this session.
    """
    batch = step.batch
    if batch is None:
        raise StepFailed(f"step {step.id} ({step.kind.value}) has no batch definition")
    size = _initial_batch_size(ctx, batch)
    bounds = sized_bounds(batch)
    lanes = _lanes(ctx, step, batch, bounds, size)
    pending = [lane for lane in lanes if not lane.done]
    # a batch size a previous run had to shrink (a 54000 limit error) stays shrunk
    size = min([size, *(lane.batch_size for lane in pending if lane.batch_size)])
    totals = ctx.session.transaction(
        f"read the batches of step {step.id}",
        lambda c: ctx.store.batch_totals(c, ctx.plan_hash, step.id)).get(step.id, (0, 0))
    progress = _Progress(*totals)
    if len(pending) == 1:
        _run_lane(ctx, ctx.session, step, batch, bounds, size, pending[0], progress,
                  inline=True)
    elif pending:
        _run_lanes(ctx, step, batch, bounds, size, pending, progress)

    def finish(conn: Conn) -> None:
        ctx.lock.fence(conn)
        rows, batches = ctx.store.batch_totals(conn, ctx.plan_hash, step.id).get(step.id,
                                                                                 (0, 0))
        ctx.mark_done(conn, step, rows_done=rows, batches_done=batches)
    ctx.session.transaction(f"mark step {step.id} done", finish)


def _lanes(ctx: StepContext, step: Step, batch: Batch, bounds: str, size: int) -> list[LaneRow]:
    """The step's lanes, claimed for this run; split on the first run of the step.

    A read first: on DSQL a read-only transaction commits without the commit latency, so a
    first run writes its lanes once (split and claimed together) rather than claiming none
    and then writing them."""
    def claim(conn: Conn) -> list[LaneRow]:
        ctx.lock.fence(conn)
        ctx.store.claim_lanes(conn, ctx.plan_hash, step.id, ctx.run_id)
        return ctx.store.get_lanes(conn, ctx.plan_hash, step.id)
    if ctx.session.transaction(f"read the lanes of step {step.id}",
                               lambda c: ctx.store.get_lanes(c, ctx.plan_hash, step.id)):
        return ctx.session.transaction(f"claim the lanes of step {step.id}", claim)
    ranges = _split(ctx, step, batch, bounds, size)

    def create(conn: Conn) -> list[LaneRow]:
        ctx.lock.fence(conn)
        if not ctx.store.get_lanes(conn, ctx.plan_hash, step.id):
            ctx.store.insert_lanes(conn, ctx.plan_hash, step.id, ranges, batch_size=size,
                                   run_id=ctx.run_id)
        return claim(conn)
    lanes = ctx.session.transaction(f"split step {step.id} into lanes", create)
    if len(lanes) > 1:
        ctx.emit(Event("step.lanes", f"step {step.id}: {len(lanes)} lanes over "
                       f"{batch.table}, walked at once", step.id,
                       data={"lanes": len(lanes)}))
    return lanes


def _split(ctx: StepContext, step: Step, batch: Batch, bounds: str,
           size: int) -> list[tuple[list[Any] | None, list[Any] | None]]:
    """Key ranges of about the same number of rows, one per lane: ``(start, end]``."""
    whole: list[tuple[list[Any] | None, list[Any] | None]] = [(None, None)]
    if ctx.options.parallel <= 1 or "%(end_" not in bounds:
        return whole  # a plan whose page query cannot stop at a lane's end
    rows = step.estimate.rows or ctx.session.autocommit(
        "estimate the rows", lambda c: reltuples(c, batch.table))
    count = min(ctx.options.parallel, (rows or 0) // (size * MIN_BATCHES_PER_LANE))
    if count <= 1:
        return whole
    # whole batches per lane: a lane ending with a short batch costs one more commit
    stride = -(-int(rows or 0) // count)
    stride = -(-stride // size) * size
    keys: list[list[Any]] = []
    after: list[Any] | None = None

    def walk(conn: Conn, rows: int) -> Any:
        return run_statement(conn, bounds, page_params(batch, after, rows)).fetchone()
    for _ in range(count - 1):
        # read transactions of at most SPLIT_READ_ROWS keys: DSQL ends long transactions
        left = stride
        while left > 0:
            take = min(left, SPLIT_READ_ROWS)
            page = ctx.session.transaction(f"split step {step.id} into lanes",
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


def _run_lanes(ctx: StepContext, step: Step, batch: Batch, bounds: str, size: int,
               lanes: list[LaneRow], progress: _Progress) -> None:
    """Each lane in its own thread and session; this thread keeps the lease alive."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def work(lane: LaneRow) -> None:
        session = ctx.session.fork()
        try:
            _run_lane(ctx, session, step, batch, bounds, size, lane, progress, stop=stop)
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
                ctx.lock.heartbeat_if_due()
    except BaseException:
        stop.set()
        for thread in threads:
            thread.join()
        raise
    if errors:
        # the first failure decides; a lost lease is the cause of the others' stops
        raise next((e for e in errors if isinstance(e, LeaseLost)), errors[0])


def _run_lane(ctx: StepContext, session: Session, step: Step, batch: Batch, bounds: str, size: int,
              lane: LaneRow, progress: _Progress, *, inline: bool = False,
              stop: threading.Event | None = None) -> None:
    cursor = _Cursor(lane.position, lane.batches_done, lane.done)
    while not cursor.done:
        if stop is not None and stop.is_set():
            return
        before = cursor.batches_done
        one = functools.partial(_lane_batch, ctx, step=step, batch=batch, bounds=bounds,
                                size=size, lane=lane, cursor=cursor)
        try:
            cursor = session.transaction(f"step {step.id} batch", one, pipeline=True)
        except (_LaneMoved, psycopg.errors.UniqueViolation) as exc:
            # the lane's cursor is not where this loop thought: after a lost connection
            # whose COMMIT went through, or because another runner took the lane over
            session.transaction("check the lease", ctx.lock.ensure_held)
            fresh = _reload_lane(ctx, session, step, lane.lane)
            if fresh.run_id != ctx.run_id:
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
                ctx.emit(Event("batch.shrink", f"step {step.id}: {describe(exc)}; batch "
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
                # pipelined, the failing statement cannot be told: all the batch sends
                sql_text=getattr(exc, "_dm_sql", None) or ";\n".join([bounds, *step.sql])
            ) from None
        if cursor.batches_done == before:
            continue  # a transaction that only marked the lane done: no batch to report
        ctx.crash.reach("batch.after_commit")

        def report(rows_done: int, batches: int, rows: int = cursor.last_rows,
                   lane_number: int = lane.lane, size: int = size) -> None:
            ctx.emit(Event("batch", f"step {step.id}: batch {batches} committed, "
                           f"{rows} rows ({rows_done} in all)", step.id,
                           data={"batch": batches, "lane": lane_number, "rows": rows,
                                  "rows_done": rows_done, "batch_size": size,
                                  "rows_estimate": step.estimate.rows}))
        progress.add(cursor.last_rows, report)
        if inline:
            ctx.lock.heartbeat_if_due()


def _reload_lane(ctx: StepContext, session: Session, step: Step, lane: int) -> LaneRow:
    lanes = session.transaction(f"read the lanes of step {step.id}",
                                lambda c: ctx.store.get_lanes(c, ctx.plan_hash, step.id))
    return next(row for row in lanes if row.lane == lane)


def _lane_batch(ctx: StepContext, conn: Conn, *, step: Step, batch: Batch, bounds: str, size: int,
                lane: LaneRow, cursor: _Cursor) -> _Cursor:
    """One batch of one lane in one pipelined transaction: two round trips.

    The first carries BEGIN, the cursor advance (which is also the fence: it matches only
    while this run holds the lease and owns the lane, and the cursor is where this loop
    thinks), the batch's statements and the bound of the *next* page (read-only, so
    the next batch need not wait for it); the second the batch's audit row and COMMIT.
    """
    lease = ctx.lock.held()
    upto = cursor.next_upto
    if upto is None:
        page = run_statement(conn, bounds,
                             page_params(batch, cursor.after, size, lane.end)).fetchone()
        if page is None or all(v is None for v in page):
            fence = ctx.store.advance_lane(
                conn, ctx.plan_hash, step.id, lane.lane, expect_batches=cursor.batches_done,
                cursor=cursor.after, batch_size=size, done=True, run_id=ctx.run_id,
                lease=lease)
            if fence.fetchone() is None:
                raise _LaneMoved()
            return dataclasses.replace(cursor, done=True)
        upto = list(page)
    fence = ctx.store.advance_lane(
        conn, ctx.plan_hash, step.id, lane.lane, expect_batches=cursor.batches_done,
        cursor=upto, batch_size=size, done=False, run_id=ctx.run_id, lease=lease)
    params = {**key_params(batch, "after", cursor.after), **key_params(batch, "upto", upto)}
    results = [run_statement(conn, statement, params) for statement in step.sql]
    next_page = run_statement(conn, bounds, page_params(batch, upto, size, lane.end))
    if fence.fetchone() is None:
        raise _LaneMoved()
    # the page bound came last: once it is read, so are the statements' results before it,
    # with no Sync (one more round trip) to wait for them
    page = next_page.fetchone()
    next_upto = None if page is None or all(v is None for v in page) else list(page)
    rows = 0
    for result in results:
        if (result.statusmessage or "").split(" ", 1)[0] in WRITES:
            rows += max(result.rowcount, 0)  # a check that returns rows is not rows done
    number = cursor.batches_done + 1
    last = next_upto is None
    if last:
        # no page follows: the lane is done with this batch, in its transaction (one commit
        # less to wait for). Not fetched (no round trip): the fence above matched and this
        # transaction holds the row; should a takeover committed in between make it match
        # nothing, the lane stays not done and the run that took over finds it empty.
        ctx.store.advance_lane(
            conn, ctx.plan_hash, step.id, lane.lane, expect_batches=number, cursor=upto,
            batch_size=size, done=True, run_id=ctx.run_id, lease=lease)
    ctx.crash.reach("batch.before_commit")
    ctx.store.record_batch(conn, ctx.plan_hash, step.id, lane.lane, number,
                           after=cursor.after, upto=upto, rows=rows, run_id=ctx.run_id)
    return _Cursor(upto, number, last, rows, next_upto)


@dataclass(frozen=True)
class _Cursor:
    """Where a lane stands: the last key done and its batches so far."""

    after: list[Any] | None
    batches_done: int
    done: bool
    last_rows: int = 0
    #: the bound of the next page, read with the previous batch (None: read it first)
    next_upto: list[Any] | None = None


class _LaneMoved(Exception):
    """The fence of a lane's batch matched nothing: another run owns the lane, or its cursor
    moved (a retried batch whose first COMMIT went through)."""


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




def rows_so_far(ctx: StepContext, step: Step) -> int:
    """Rows written by the step's recorded batches (its state row counts them only when the step
    is done)."""
    rows, _ = ctx.session.transaction(
        f"read the batches of step {step.id}",
        lambda c: ctx.store.batch_totals(c, ctx.plan_hash, step.id)).get(step.id, (0, 0))
    return int(rows)
