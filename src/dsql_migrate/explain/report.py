"""The explain report, in the guide's structure (seed guide, workflow 8, report-format
reference): Query Information, SQL Statement, Plan Overview, numbered Findings (What we
observed / Why it happened / Recommendation), Summary; or the same facts as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from .analyze import Analysis, Estimate, FullScan
from .nodes import DSQL_NODES, dsql_explanation
from .rewrite import Explainable
from .tree import PlanNode

FORMATS = ("markdown", "json")
SLOW_MS = 30_000.0  # the guide's threshold above which GUC experiments are skipped


@dataclass
class Finding:
    title: str
    severity: str
    duration_ms: float
    observed: str
    why: str
    recommendation: str
    short_recommendation: str
    impact: str
    sql: str | None = None


def render(analysis: Analysis, statement: Explainable, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(as_json(analysis, statement), indent=2) + "\n"
    return render_markdown(analysis, statement)


def as_json(analysis: Analysis, statement: Explainable) -> dict[str, Any]:
    plan = analysis.plan
    return {
        "statement": statement.original,
        "explained_sql": statement.select,
        "kind": statement.kind,
        "rewrite_note": statement.note,
        "query": {"query_id": plan.query_id, "planning_ms": plan.planning_ms,
                  "execution_ms": plan.execution_ms, "dpu": plan.dpu},
        "nodes": [_node_json(n) for n in plan.nodes()],
        "estimates": [asdict(e) for e in analysis.estimates],
        "full_scans": [asdict(s) for s in analysis.full_scans],
        "dsql_nodes": {name: DSQL_NODES.get(name, dsql_explanation(name))
                       for name in analysis.dsql_nodes},
        "findings": [asdict(f) for f in findings(analysis)],
    }


def _node_json(node: PlanNode) -> dict[str, Any]:
    return {"number": node.number, "node": node.label, "estimated_rows": node.plan_rows,
            "actual_rows": node.actual_rows, "loops": node.loops,
            "duration_ms": round(node.duration_ms, 3), "predicates": node.predicates}


def findings(analysis: Analysis) -> list[Finding]:
    """Every finding, the most expensive first (by the duration of the node it is about)."""
    total = analysis.plan.execution_ms or analysis.plan.root.duration_ms or 0.0
    out = [_scan_finding(scan, total) for scan in analysis.full_scans]
    scanned = {scan.node for scan in analysis.full_scans}
    durations = {n.number: n.duration_ms for n in analysis.plan.nodes()}
    out += [_estimate_finding(e, durations.get(e.node, 0.0), total, e.node in scanned)
            for e in analysis.estimates if e.band in ("significant", "severe")]
    return sorted(out, key=lambda f: -f.duration_ms)


def _severity(duration_ms: float, total_ms: float) -> str:
    share = duration_ms / total_ms if total_ms > 0 else 0.0
    if share > 0.5:
        return "CRITICAL"
    if share >= 0.2:
        return "HIGH"
    return "MODERATE" if share >= 0.05 else "LOW"


def _scan_finding(scan: FullScan, total_ms: float) -> Finding:
    size = "an unknown number of rows" if scan.table_rows is None or scan.table_rows < 0 \
        else f"about {scan.table_rows:,} rows"
    width = f", about {scan.row_bytes} bytes a row" if scan.row_bytes else ""
    removed = "" if scan.rows_removed is None else (
        f"; the filter discarded {scan.rows_removed:,} of the rows read")
    observed = (f"Node {scan.node}, `{scan.label}`, reads the whole table {scan.table} "
                f"({size}{width} per the catalog's statistics) in {scan.duration_ms:.3f} ms, "
                f"returning {_rows(scan.rows_read)} rows{removed}.")
    if scan.candidate is None:
        why = ("No predicate of this query restricts the table's columns, so every row is "
               "needed (or the predicate could not be read from the plan).")
        return Finding(f"Full scan of {scan.table}", _severity(scan.duration_ms, total_ms),
                       scan.duration_ms, observed, why,
                       "A full scan is the right plan when the query needs every row; add "
                       "a WHERE clause (or LIMIT) if it does not.",
                       "restrict the rows the query needs", "proportional to rows skipped")
    cand = scan.candidate
    columns = ", ".join(cand.columns)
    if cand.existing:
        why = (f"The predicate's columns ({columns}) are already the leading keys of "
               f"{cand.existing}, yet the planner preferred a full scan: on a small table, or "
               "when most rows match, reading everything is cheaper; otherwise check the "
               "statistics (ANALYZE the table) and the predicate's types (a cast on the column "
               "side prevents an index).")
        recommendation = "Run `ANALYZE` on the table, then capture the plan again."
        return Finding(f"Full scan of {scan.table} despite an index",
                       _severity(scan.duration_ms, total_ms), scan.duration_ms, observed, why,
                       recommendation, "ANALYZE the table and re-check",
                       "an index scan if the predicate is selective",
                       sql=f"ANALYZE {scan.table};")
    lint = f"; rules applied: {', '.join(cand.lint)}" if cand.lint else ""
    why = (f"No index of {scan.table} leads with the predicate's columns ({columns}), so "
           "the planner can only read the whole table and filter it.")
    recommendation = (
        "Create the index below (checked and fixed by dsql-migrate's lint rules, as DSQL "
        f"requires ASYNC and at most 8 key columns{lint}), wait for its job to complete, "
        "then capture the plan again. Or let the planner do it: add the index to the model "
        "and run `dsql-migrate plan`.")
    return Finding(f"Full scan of {scan.table}", _severity(scan.duration_ms, total_ms),
                   scan.duration_ms, observed, why, recommendation,
                   f"index {scan.table} ({columns})",
                   "an index scan reading only the matching rows", sql=cand.statement)


def _estimate_finding(estimate: Estimate, duration_ms: float, total_ms: float,
                      is_scan: bool) -> Finding:
    direction = "more" if estimate.over else "fewer"
    observed = (
        "| Metric | Estimated | Actual | Error |\n| --- | --- | --- | --- |\n"
        f"| Rows (node {estimate.node}, per loop) | {_rows(estimate.estimated)} | "
        f"{_rows(estimate.actual)} | {estimate.ratio:g}x ({estimate.band}) |\n\n"
        f"`{estimate.label}`: the planner expected {direction} rows than came.")
    why = ("The planner's row estimate comes from the table statistics (pg_class.reltuples, "
           "pg_stats); a gap this size usually means stale statistics, correlated predicates "
           "(the planner multiplies their selectivities as if independent) or skewed data.")
    recommendation = ("Refresh the statistics with `ANALYZE` on the table and capture the plan "
                      "again; if the error stays, the predicates are correlated: extended "
                      "statistics (CREATE STATISTICS, current profile) can describe them.")
    impact = "a plan chosen on accurate row counts (join order and method)"
    if is_scan:
        impact += "; see the full scan finding for the same node"
    return Finding(f"{estimate.band.capitalize()} row-estimate error on node {estimate.node}: "
                   f"{estimate.ratio:g}x",
                   _severity(duration_ms, total_ms), duration_ms, observed, why,
                   recommendation, "ANALYZE; extended statistics if it persists", impact)


def render_markdown(analysis: Analysis, statement: Explainable) -> str:
    plan = analysis.plan
    found = findings(analysis)
    lines = ["# SQL Query Explainability — Diagnostic Report", "", "## Query Information", "",
             "| Field | Value |", "| --- | --- |",
             f"| Query Identifier | {plan.query_id or 'not reported by this target'} |",
             f"| Planning Time | {_ms(plan.planning_ms)} |",
             f"| Execution Time | {_ms(plan.execution_ms)} |",
             f"| DPU Estimate | {plan.dpu or 'not reported by this target (DSQL only)'} |",
             "", "## SQL Statement", "", "```sql", statement.original, "```", ""]
    if statement.rewritten:
        lines += [f"{statement.note}; the plan below is the plan of:", "", "```sql",
                  statement.select, "```", ""]
    lines += ["## Plan Overview", "", "```", *_tree_lines(plan.root, 0), "```", ""]
    lines += _estimate_table(analysis)
    if analysis.dsql_nodes:
        lines += ["## DSQL Plan Nodes", ""]
        lines += [f"- **{name}**: {dsql_explanation(name)}" for name in analysis.dsql_nodes]
        lines.append("")
    lines += ["## Findings", ""]
    if not found:
        lines += ["No full scan and no row estimate off by 5x or more: nothing to change.", ""]
    for number, finding in enumerate(found, start=1):
        lines += [f"### Finding {number}: {finding.title} ({finding.severity} — "
                  f"{finding.duration_ms:.3f} ms)", "", "**Applies to:** Original Query", "",
                  "#### What we observed", "", finding.observed, "",
                  "#### Why it happened", "", finding.why, "",
                  "#### Recommendation", "", finding.recommendation, ""]
        if finding.sql:
            lines += ["```sql", finding.sql, "```", ""]
        lines += [f"**Expected impact:** {finding.impact}.", ""]
    lines += _guc_section(plan.execution_ms, statement.select)
    lines += ["## Summary", "", "| # | Finding | Severity | Recommendation | Expected Impact |",
              "| - | ------- | -------- | -------------- | --------------- |"]
    lines += [f"| {n} | {f.title} | {f.severity} | {f.short_recommendation} | {f.impact} |"
              for n, f in enumerate(found, start=1)]
    if not found:
        lines.append("| - | no findings | - | - | - |")
    lines += ["", "## Next Steps", "",
              "Apply a recommendation, then run `dsql-migrate explain` on the same query again "
              "to compare the plans (a reassessment).", ""]
    return "\n".join(lines)


def _tree_lines(node: PlanNode, depth: int) -> list[str]:
    actual = "never executed" if node.actual_rows is None else (
        f"actual rows={_rows(node.actual_rows)} loops={node.loops} "
        f"time={node.actual_total_ms or 0.0:.3f} ms, node duration "
        f"{node.duration_ms:.3f} ms")
    prefix = "  " * depth + ("-> " if depth else "")
    lines = [f"{prefix}[{node.number}] {node.label} (est rows={_rows(node.plan_rows)}; {actual})"]
    pad = "  " * depth + ("   " if depth else "") + "    "
    lines += [f"{pad}{key}: {value}" for key, value in node.predicates.items()]
    if node.rows_removed:
        lines.append(f"{pad}Rows Removed: {node.rows_removed:,}")
    for child in node.children:
        lines += _tree_lines(child, depth + 1)
    return lines


def _estimate_table(analysis: Analysis) -> list[str]:
    if not analysis.estimates:
        return []
    counts: dict[str, int] = {}
    for estimate in analysis.estimates:
        counts[estimate.band] = counts.get(estimate.band, 0) + 1
    bands = ", ".join(f"{name}: {counts[name]}" for name in
                      ("accurate", "minor", "significant", "severe") if name in counts)
    lines = ["## Row Estimates", "",
             "Bands: accurate < 2x, minor 2x-5x, significant 5x-50x, severe 50x+ "
             f"({bands}).", "",
             "| Node | Estimated | Actual | Loops | Error | Band |",
             "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| [{e.node}] {e.label} | {_rows(e.estimated)} | {_rows(e.actual)} | {e.loops} "
              f"| {e.ratio:g}x | {e.band} |" for e in analysis.estimates]
    return [*lines, ""]


def _guc_section(execution_ms: float | None, sql: str) -> list[str]:
    manual = ["```sql", "SET enable_hashjoin = off;", "SET enable_nestloop = off;",
              "SET enable_mergejoin = on;", f"EXPLAIN ANALYZE VERBOSE {sql};", "```", ""]
    if execution_ms is not None and execution_ms > SLOW_MS:
        return ["## GUC Experiment Results", "",
                f"GUC experimentation skipped — original query execution time "
                f"({execution_ms / 1000:.1f}s) exceeds 30-second threshold.",
                "Recommend testing alternative strategies manually:", "", *manual]
    return ["## GUC Experiment Results", "",
            "Not run: `dsql-migrate explain` captures the default plan only. To compare a "
            "merge-join-only plan, run in one session:", "", *manual]


def _rows(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} ms"
