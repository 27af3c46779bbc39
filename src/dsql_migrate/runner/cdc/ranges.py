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

Nothing but the runner writes the new table, so its side of a range can be checksummed before
the freeze too (:func:`prepare`), when the key is one integer column: a range is then compared
under the freeze against that checksum unless a key the runner re-synced since falls in it (the
key's range is found by bisecting the bounds), which halves the work under the freeze.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
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


#: key types whose text a re-synced key arrives as can be placed among the bounds in Python
_INTEGER_TYPES = frozenset({"smallint", "integer", "bigint", "int", "int2", "int4", "int8"})


@dataclass
class Prepared:
    """What is known before the freeze: the ranges' bounds and, for an integer key, the new
    table's checksum of each range."""

    known: list[list[Any]]
    target: dict[int, list[Any]] = field(default_factory=dict)

    def dirty(self, keys: Iterable[Sequence[str]]) -> set[int]:
        """The ranges (by index) the re-synced ``keys`` fall in; past the last bound: none
        (the ranges past it are always compared whole)."""
        bounds = [int(b[0]) for b in self.known]
        return {bisect.bisect_left(bounds, int(k[0])) for k in keys}


def prepare(ctx: StepContext, step: Step) -> Prepared:
    assert step.batch is not None
    found = Prepared(bounds(ctx, step))
    pairs = len(step.sql) == 2 and len(step.batch.key) == 1 and \
        step.batch.key_types[0].lower() in _INTEGER_TYPES
    if pairs and found.known:
        ranges = _ranges(found.known)
        results = _parallel(ctx, step, [(i, r, False) for i, r in enumerate(ranges)],
                            only=1)
        found.target = {i: result for i, result in results}
    return found


def refresh(ctx: StepContext, step: Step, prepared: Prepared,
            keys: Iterable[Sequence[str]]) -> None:
    """Checksum again the new table's ranges that ``keys`` (re-synced since) fall in, so that
    under the freeze only the keys re-synced after this count as changed."""
    if not prepared.target:
        return
    ranges = _ranges(prepared.known)
    todo = sorted(i for i in prepared.dirty(keys) if i < len(ranges))
    if todo:
        results = _parallel(ctx, step, [(i, ranges[i], False) for i in todo], only=1)
        prepared.target.update(dict(results))


def _ranges(known: list[list[Any]]) -> list[Range]:
    return [(known[i - 1] if i else None, upto) for i, upto in enumerate(known)]


def _results(conn: Conn, step: Step, batch: Batch, item: Range,
             statements: Sequence[str]) -> list[Any]:
    after, upto = item
    params = key_params(batch, "after", after)
    params.update(key_params(batch, "upto", upto))
    return [jsonable(run_statement(conn, s, params).fetchone() or ()) for s in statements]


Job = tuple[int, Range, bool]  # (index, range, target checksum known)


def _parallel(ctx: StepContext, step: Step, jobs: list[Job], *,
              only: int | None = None, cached: dict[int, list[Any]] | None = None,
              ) -> list[tuple[int, Any]]:
    """Run the range queries of ``jobs`` on several connections: with ``only``, that one
    statement of the pair (its result per job); else whether each range differs (the target
    side taken from ``cached`` where the job says so)."""
    assert step.batch is not None
    batch = step.batch
    workers = max(1, min(ctx.options.parallel, len(jobs)))
    sessions = [ctx.session.fork() for _ in range(workers - 1)]

    def chunk(session: Session, part: list[Job]) -> list[tuple[int, Any]]:
        def run(conn: Conn) -> list[tuple[int, Any]]:
            out: list[tuple[int, Any]] = []
            for index, item, known in part:
                if only is not None:
                    out.append((index, _results(conn, step, batch, item,
                                                [step.sql[only]])[0]))
                elif known and cached is not None:
                    source = _results(conn, step, batch, item, [step.sql[0]])[0]
                    out.append((index, source != cached[index]))
                else:
                    r = _results(conn, step, batch, item, step.sql)
                    out.append((index, any(r[i] != r[i + 1]
                                           for i in range(0, len(r) - 1, 2))))
            return out
        return session.transaction(f"step {step.id} compare ranges", run)
    try:
        parts = [jobs[i::workers] for i in range(workers)]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            found = list(pool.map(lambda pair: chunk(*pair),
                                  zip([ctx.session, *sessions], parts, strict=True)))
        return [item for part in found for item in part]
    finally:
        for session in sessions:
            session.close()


def compare_all(ctx: StepContext, step: Step, prepared: Prepared,
                resynced: Iterable[Sequence[str]] = ()) -> tuple[bool, int, int]:
    """Compare and repair every range under the freeze: (equal in the end, ranges compared,
    ranges repaired). ``resynced``: the keys re-synced since :func:`prepare`."""
    assert step.batch is not None
    batch = step.batch
    known = prepared.known
    ranges: list[Range] = _ranges(known)
    ranges += _tail_ranges(ctx, step, known[-1] if known else None)
    dirty = prepared.dirty(resynced) if prepared.target else set()
    jobs: list[Job] = [(i, r, i in prepared.target and i not in dirty)
                       for i, r in enumerate(ranges)]
    repaired = 0
    for _ in range(MAX_PASSES):
        found = _parallel(ctx, step, jobs, cached=prepared.target)
        differing = [ranges[i] for i, differs in found if differs]
        totals_ok = _totals_equal(ctx, step)
        if not differing and totals_ok:
            return True, len(ranges), repaired
        _repair(ctx, step, batch, differing, tail_after=None if totals_ok else
                (ranges[-1][1] if ranges else None))
        repaired += len(differing)
        again = {i for i, differs in found if differs} or set(range(len(ranges)))
        jobs = [(i, ranges[i], False) for i in sorted(again)]  # both sides, afresh
    return False, len(ranges), repaired


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
