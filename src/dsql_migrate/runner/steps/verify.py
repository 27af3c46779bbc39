"""``verify``: read-only checks -- a data pre-check, or counts and checksums of a copy, whole
or per key range (with a repair of the ranges a concurrent write changed).

Shape: the checks, then their figures and the outcome recorded in one DML transaction.

Resume: the checks run again (they change nothing but what a repair copies again).

Probe: none; a verification is its own evidence, and it is cheap next to what it guards.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

from ...plan import Batch, Step, StepKind
from ..errors import VerificationFailed
from ..events import Event
from ..session import Conn
from ..state import StepRow
from ._sql import execute as run_statement
from ._sql import jsonable, key_params, page_params, sized_bounds
from .base import StepContext, StepKindImpl, implementation_for

#: passes of a re-syncing verification (repair the changed ranges, compare again)
MAX_VERIFY_PASSES = 5


@implementation_for(StepKind.VERIFY)
class Verify(StepKindImpl):
    def execute(self, ctx: StepContext, step: Step, before: StepRow) -> None:
        _run_verify(ctx, step, before)


def check(ctx: StepContext, step: Step) -> tuple[bool, list[dict[str, Any]], str | None]:
    """Run a verification; (passed, figures, the SQL of the first failing check).

    Three shapes, as the planner writes them: with a ``batch``, statement pairs (source,
    target) compared per key range, plus ``details["totals"]`` compared whole; with
    ``details["compare"]``/``["totals"]``, statement pairs compared whole; otherwise each
    statement on its own (see :func:`_passes`).
    """
    if step.batch is not None:
        return _check_ranges(ctx, step, step.batch)
    if "compare" in step.details or "totals" in step.details:
        return _check_pairs(ctx, step, step.sql)
    return _check_rows(ctx, step)


def _check_rows(ctx: StepContext, step: Step) -> tuple[bool, list[dict[str, Any]], str | None]:
    figures: list[dict[str, Any]] = []
    failed_sql: str | None = None
    ok = True

    def run(conn: Conn) -> None:
        nonlocal ok, failed_sql
        figures.clear()
        ok, failed_sql = True, None
        for statement in step.sql:
            cursor = run_statement(conn, statement)
            columns = [c.name for c in cursor.description or ()]
            rows = [dict(zip(columns, jsonable(r), strict=True))
                    for r in cursor.fetchmany(50)]
            passed = _passes(columns, rows)
            figures.append({"sql": statement, "rows": rows, "ok": passed})
            if not passed and ok:
                ok, failed_sql = False, statement
    ctx.session.transaction(f"verify step {step.id}", run)
    return ok, figures, failed_sql


def _check_pairs(ctx: StepContext, step: Step, statements: Sequence[str],
                 ) -> tuple[bool, list[dict[str, Any]], str | None]:
    def run(conn: Conn) -> list[list[Any]]:
        return [jsonable(run_statement(conn, s).fetchone() or ()) for s in statements]
    results = ctx.session.transaction(f"verify step {step.id}", run)
    figures: list[dict[str, Any]] = []
    failed_sql: str | None = None
    for index in range(0, len(results) - 1, 2):
        equal = results[index] == results[index + 1]
        figures.append({"sql": statements[index + 1], "ok": equal, "rows": [
            {"source": results[index], "target": results[index + 1], "equal": equal}]})
        if not equal and failed_sql is None:
            failed_sql = statements[index + 1]
    return failed_sql is None, figures, failed_sql


def _check_ranges(ctx: StepContext, step: Step, batch: Batch,
                  ) -> tuple[bool, list[dict[str, Any]], str | None]:
    bounds = sized_bounds(batch)
    repair = [str(s) for s in step.details.get("repair") or ()]
    tail = step.details.get("tail")
    totals = [str(s) for s in step.details.get("totals") or ()]
    figures: list[dict[str, Any]] = []
    ok = False
    failed_sql: str | None = None
    for attempt in range(1, MAX_VERIFY_PASSES + 1):
        mismatched, ranges, last = _compare_ranges(ctx, step, batch, bounds)
        totals_ok, total_figures, totals_sql = (_check_pairs(ctx, step, totals) if totals
                                                else (True, [], None))
        ok = not mismatched and totals_ok
        figures = [{"sql": step.sql[-1] if step.sql else "", "ok": not mismatched,
                    "rows": [{"pass": attempt, "ranges": ranges,
                              "mismatched_ranges": len(mismatched)}, *mismatched[:5]]},
                   *total_figures]
        failed_sql = None if ok else (totals_sql if not mismatched else step.sql[-1])
        if ok or not repair:
            break
        _repair(ctx, step, batch, mismatched, repair=repair,
                tail=tail if isinstance(tail, str) and not totals_ok else None,
                last=last)
        ctx.emit(Event("verify.repair", f"step {step.id}: copied {len(mismatched)} "
                       "changed key range(s) again", step.id,
                       data={"ranges": len(mismatched), "pass": attempt}))
    return ok, figures, failed_sql


def _compare_ranges(ctx: StepContext, step: Step, batch: Batch, bounds: str,
                    ) -> tuple[list[dict[str, Any]], int, list[Any] | None]:
    mismatched: list[dict[str, Any]] = []
    after: list[Any] | None = None
    ranges = 0

    def one(conn: Conn, after: list[Any] | None) -> tuple[list[Any], list[Any]] | None:
        params = page_params(batch, after, batch.size)
        page = run_statement(conn, bounds, params).fetchone()
        if page is None or all(v is None for v in page):
            return None
        upto = list(page)
        params.update(key_params(batch, "upto", upto))
        return upto, [jsonable(run_statement(conn, s, params).fetchone() or ())
                      for s in step.sql]
    while True:
        out = ctx.session.transaction(f"verify step {step.id} range",
                                      functools.partial(one, after=after))
        if out is None:
            return mismatched, ranges, after
        upto, results = out
        ranges += 1
        for index in range(0, len(results) - 1, 2):
            if results[index] != results[index + 1]:
                mismatched.append({"after": jsonable(after or []), "upto": jsonable(upto),
                                   "source": results[index], "target": results[index + 1]})
                break
        after = upto
        ctx.lock.heartbeat_if_due()


def _repair(ctx: StepContext, step: Step, batch: Batch, mismatched: list[dict[str, Any]], *,
            repair: list[str], tail: str | None, last: list[Any] | None) -> None:
    for item in mismatched:
        def run(conn: Conn, item: dict[str, Any] = item) -> None:
            ctx.lock.fence(conn)
            params = key_params(batch, "after", item["after"] or None)
            params.update(key_params(batch, "upto", item["upto"]))
            for statement in repair:
                run_statement(conn, statement, params)
        ctx.session.transaction(f"step {step.id} repair", run)
    if tail is not None and last is not None:
        def cut(conn: Conn) -> None:
            ctx.lock.fence(conn)
            run_statement(conn, tail, key_params(batch, "after", last))
        ctx.session.transaction(f"step {step.id} repair tail", cut)


def _run_verify(ctx: StepContext, step: Step, before: StepRow) -> None:
    if step.details.get("writes") == "cdc" and step.batch is not None:
        from ..cdc.cutover import prepass

        ok, figures, failed_sql = prepass(ctx, step)
    else:
        ok, figures, failed_sql = check(ctx, step)
    ctx.crash.reach("verify.after_check")
    text = json.dumps(figures, default=str)

    def record(conn: Conn) -> None:
        ctx.lock.fence(conn)
        ctx.store.update_step(conn, ctx.plan_hash, step.id, {"figures": text})
        if ok:
            ctx.mark_done(conn, step)
    ctx.session.transaction(f"record verification {step.id}", record)
    ctx.emit(Event("verify", f"step {step.id}: {'passed' if ok else 'FAILED'}: "
                   f"{figures_text(figures)}", step.id,
                   data={"figures": figures, "ok": ok}))
    if not ok:
        raise VerificationFailed(
            f"step {step.id}: verification failed: {figures_text(figures)}",
            sql_text=failed_sql,
            hint="nothing destructive ran. If the source changed during the copy, pause "
            "writes and re-plan; otherwise fix the data and run 'dsql-migrate apply' again")


def _passes(columns: list[str], rows: list[dict[str, Any]]) -> bool:
    """A check passes when its ``ok`` column is true in every row, or, with no ``ok`` column,
    when it returns no row (a data pre-check lists the offending rows)."""
    if "ok" in columns:
        return all(r.get("ok") is True for r in rows)
    return not rows


def figures_text(figures: list[dict[str, Any]]) -> str:
    parts = []
    for figure in figures:
        for row in figure["rows"][:5]:
            parts.append(", ".join(f"{k}={v}" for k, v in row.items()))
        if not figure["rows"]:
            parts.append("no rows")
    return "; ".join(parts)
