"""Function calls and data statements (DSQL.md §1, §3, §4)."""

from __future__ import annotations

from collections.abc import Iterator

from ...sql import ParsedStatement
from .. import _tree as t
from ..core import Finding, FixStatus, LintContext, Severity, any_of, rule, table_rule
from ..fixer import FixTarget


@rule("wait_for_job_select", nodes=("SelectStmt",), prefilter=any_of("wait_for_job"))
def wait_for_job_select(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """`sys.wait_for_job` must be called with CALL, not SELECT.

    `SELECT sys.wait_for_job(...)` fails on DSQL. `--fix` rewrites a plain
    `SELECT sys.wait_for_job(x)` into `CALL sys.wait_for_job(x)`.

    Example: `SELECT sys.wait_for_job('j1');` → `CALL sys.wait_for_job('j1');`
    """
    if "wait_for_job" not in p.text.lower():
        return
    assert p.node is not None
    for call in t.walk(p.node, "FuncCall"):
        if t.func_name(call) == "sys.wait_for_job":
            simple = len(p.node.get("targetList") or ()) == 1 and not p.node.get("fromClause")
            yield Finding(
                "sys.wait_for_job must be invoked with CALL, not SELECT",
                "CALL sys.wait_for_job('<job_id>')", location=call.get("location"),
                status=FixStatus.FIXED if simple else FixStatus.UNFIXABLE,
                detail="replaced SELECT with CALL" if simple
                else "call it on its own: CALL sys.wait_for_job('<job_id>')",
            )


@wait_for_job_select.fixer
def _fix_wait_for_job(target: FixTarget, ctx: LintContext) -> None:
    from ..fixer import render_tree

    call = target.tree.targetList[0].val
    target.replacement = ["CALL " + render_tree(call)]


@rule("advisory_lock", nodes=("SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt",
                              "CallStmt", "ViewStmt", "CreateFunctionStmt"),
      prefilter=any_of("advisory"))
def advisory_lock(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """Advisory locks are not supported.

    `pg_advisory_lock`, `pg_try_advisory_lock` and their variants fail with 0A000. Use a lock
    row in a table (a lease with an owner and an expiry, updated with optimistic concurrency).

    Example: `SELECT pg_advisory_lock(42);`
    """
    if "advisory" not in p.text.lower():
        return
    for call in t.walk(p.node, "FuncCall"):
        name = t.func_name(call).rsplit(".", 1)[-1]
        if name.startswith(("pg_advisory", "pg_try_advisory")):
            todo = "use a lease row in a lock table instead"
            yield Finding(f"{name}() (advisory locks) is not supported in DSQL", todo,
                          location=call.get("location"), detail=todo)


@rule("unbatched_dml", nodes=("UpdateStmt", "DeleteStmt"), severity=Severity.WARNING)
def unbatched_dml(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """UPDATE or DELETE without a WHERE clause may exceed the per-transaction row limit.

    A DSQL transaction modifies at most 3,000 rows (`rows_per_transaction` in the profile) and
    10 MiB. An unbounded UPDATE/DELETE fails on any larger table. Run it as a batched backfill:
    repeat a statement bounded by a key range (or `WHERE key IN (SELECT key ... LIMIT 1000)`),
    one batch per transaction.

    Example: `UPDATE orders SET archived = true;` → repeat
    `UPDATE orders SET archived = true WHERE id IN (SELECT id FROM orders WHERE archived IS
    DISTINCT FROM true LIMIT 1000);` until it updates no row.
    """
    raw = p.json or ""
    if '"whereClause"' in raw and not any(
        k in raw for k in ('"SubLink"', '"RangeSubselect"', '"withClause"')
    ):
        return  # the only WHERE is the statement's own: no need to decode the tree
    assert p.node is not None
    if not p.node.get("whereClause"):
        verb = "UPDATE" if p.node_type == "UpdateStmt" else "DELETE"
        limit = ctx.limits.rows_per_transaction
        todo = (f"run it in batches of at most 1,000 rows per transaction (the limit is "
                f"{limit:,} rows)")
        yield Finding(f"{verb} on {t.relname(p.node.get('relation'))} has no WHERE clause and "
                      f"fails if it touches more than {limit:,} rows", todo, detail=todo)


table_rule("for_key_share", """SELECT ... FOR KEY SHARE needs the `current` profile.

    DSQL added `FOR KEY SHARE` on 2026-08-25; before that only `FOR UPDATE` locks rows. In the
    `classic` profile use `FOR UPDATE` (it conflicts with more writers) or target `current`.

    Example (classic): `SELECT id FROM customers WHERE id = 7 FOR KEY SHARE;` →
    `SELECT id FROM customers WHERE id = 7 FOR UPDATE;`
    """, __name__)
