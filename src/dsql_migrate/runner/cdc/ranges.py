"""The verification of every key range with writes frozen, made short enough for the freeze.

The verify step's own check (:func:`..steps.verify.check`) walks the ranges one after the other,
asking for each range's bound first. Under the freeze both costs matter, so here the ranges'
bounds are found *before* the freeze (:func:`bounds`), and with writes frozen the ranges are
compared on several connections at once (:func:`compare_all`): the precomputed ranges in
parallel, then the keys past the last bound (rows inserted since) walked as the step would,
then the totals. A range that differs is copied again with the step's repair statements (delete
and insert the range, one transaction) and compared again; the same passes as the step's own
check. The precomputed bounds only cut the key space: rows inserted or deleted since fall into
some range, and every range is compared under the freeze.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ...plan import Batch, Step
from ..session import Conn, Session
from ..steps._sql import execute as run_statement
from ..steps._sql import jsonable, key_params, page_params, sized_bounds
from ..steps.base import StepContext

#: passes of compare-and-repair under the freeze
MAX_PASSES = 5

Range = tuple[list[Any] | None, list[Any]]  # (after, upto]


def bounds(ctx: StepContext, step: Step) -> list[list[Any]]:
    """The last key of each range of ``step``'s batch size over the source, in order."""
    assert step.batch is not None
    batch = step.batch
    query = sized_bounds(batch)
    out: list[list[Any]] = []
    after: list[Any] | None = None

    def one(conn: Conn, after: list[Any] | None) -> list[Any] | None:
        page = run_statement(conn, query, page_params(batch, after, batch.size)).fetchone()
        return None if page is None or all(v is None for v in page) else list(page)
    while True:
        upto = ctx.session.autocommit(f"step {step.id} range bounds",
                                      functools.partial(one, after=after))
        if upto is None:
            return out
        out.append(upto)
        after = upto


def _differs(conn: Conn, step: Step, batch: Batch, item: Range) -> bool:
    after, upto = item
    params = key_params(batch, "after", after)
    params.update(key_params(batch, "upto", upto))
    results = [jsonable(run_statement(conn, s, params).fetchone() or ()) for s in step.sql]
    return any(results[i] != results[i + 1] for i in range(0, len(results) - 1, 2))


def _compare(session: Session, step: Step, batch: Batch, items: list[Range]) -> list[Range]:
    def run(conn: Conn) -> list[Range]:
        return [item for item in items if _differs(conn, step, batch, item)]
    return session.transaction(f"step {step.id} compare ranges", run)


def compare_all(ctx: StepContext, step: Step, known: list[list[Any]]) -> tuple[bool, int, int]:
    """Compare and repair every range under the freeze: (equal in the end, ranges compared,
    ranges repaired)."""
    assert step.batch is not None
    batch = step.batch
    ranges: list[Range] = [(known[i - 1] if i else None, upto) for i, upto in enumerate(known)]
    ranges += _tail_ranges(ctx, step, known[-1] if known else None)
    workers = max(1, min(ctx.options.parallel, len(ranges)))
    sessions = [ctx.session.fork() for _ in range(workers - 1)]
    repaired = 0
    try:
        todo = ranges
        for _ in range(MAX_PASSES):
            chunks = [todo[i::workers] for i in range(workers)]
            with ThreadPoolExecutor(max_workers=workers) as pool:
                found = list(pool.map(
                    lambda pair: _compare(pair[0], step, batch, pair[1]),
                    zip([ctx.session, *sessions], chunks, strict=True)))
            differing = [item for part in found for item in part]
            totals_ok = _totals_equal(ctx, step)
            if not differing and totals_ok:
                return True, len(ranges), repaired
            _repair(ctx, step, batch, differing, tail_after=None if totals_ok else
                    (ranges[-1][1] if ranges else None))
            repaired += len(differing)
            todo = differing or ranges
        return False, len(ranges), repaired
    finally:
        for session in sessions:
            session.close()


def _tail_ranges(ctx: StepContext, step: Step, last: list[Any] | None) -> list[Range]:
    """The ranges past the last precomputed bound: rows inserted after it was found."""
    assert step.batch is not None
    batch = step.batch
    query = sized_bounds(batch)
    out: list[Range] = []
    after = last
    while True:
        def one(conn: Conn, after: list[Any] | None = after) -> list[Any] | None:
            page = run_statement(conn, query, page_params(batch, after, batch.size)).fetchone()
            return None if page is None or all(v is None for v in page) else list(page)
        upto = ctx.session.autocommit(f"step {step.id} range bounds", one)
        if upto is None:
            return out
        out.append((after, upto))
        after = upto


def _totals_equal(ctx: StepContext, step: Step) -> bool:
    totals = [str(s) for s in step.details.get("totals") or ()]
    if not totals:
        return True

    def run(conn: Conn) -> list[Any]:
        return [jsonable(run_statement(conn, s).fetchone() or ()) for s in totals]
    results = ctx.session.transaction(f"step {step.id} totals", run)
    return all(results[i] == results[i + 1] for i in range(0, len(results) - 1, 2))


def _repair(ctx: StepContext, step: Step, batch: Batch, differing: list[Range], *,
            tail_after: list[Any] | None) -> None:
    repair = [str(s) for s in step.details.get("repair") or ()]
    for after, upto in differing:
        params = key_params(batch, "after", after)
        params.update(key_params(batch, "upto", upto))

        def run(conn: Conn, params: dict[str, Any] = params) -> None:
            ctx.lock.fence(conn)
            for statement in repair:
                run_statement(conn, statement, params)
        ctx.session.transaction(f"step {step.id} repair", run)
    tail = step.details.get("tail")
    if isinstance(tail, str) and tail_after is not None:
        def cut(conn: Conn) -> None:
            ctx.lock.fence(conn)
            run_statement(conn, tail, key_params(batch, "after", tail_after))
        ctx.session.transaction(f"step {step.id} repair tail", cut)
