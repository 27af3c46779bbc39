"""From a captured plan to the guide's findings: node durations, full scans with their tables'
sizes, row-estimate errors in bands, and the indexes that could serve the predicates."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pglast import parser as pg

from ..catalog import Snapshot, Table
from ..lint import LintSettings, fix_script
from .nodes import FULL_SCANS
from .tree import JOIN_KEYS, CapturedPlan, PlanNode

#: (lower bound of the ratio, band name), from the guide's plan-interpretation reference
BANDS: tuple[tuple[float, str], ...] = ((50.0, "severe"), (5.0, "significant"),
                                        (2.0, "minor"), (0.0, "accurate"))
EQUALITY_OPERATORS = frozenset({"="})


@dataclass(frozen=True)
class Estimate:
    node: int
    label: str
    estimated: float
    actual: float
    loops: int
    ratio: float
    band: str
    over: bool  # the planner expected more rows than came


@dataclass(frozen=True)
class ColumnUse:
    alias: str | None
    column: str
    how: str  # "equality" | "range" | "join"


@dataclass
class IndexCandidate:
    table: str
    columns: list[str]
    statement: str  # after the lint rules' fixes (ASYNC, at most 8 key columns)
    lint: list[str] = field(default_factory=list)  # ids of the rules that changed or flag it
    existing: str | None = None  # an existing index that already leads with these columns


@dataclass
class FullScan:
    node: int
    label: str
    table: str
    duration_ms: float
    rows_read: float | None
    rows_removed: int | None
    table_rows: int | None  # pg_class.reltuples through the catalog snapshot
    row_bytes: int | None
    columns: list[ColumnUse]
    candidate: IndexCandidate | None


@dataclass
class Analysis:
    plan: CapturedPlan
    estimates: list[Estimate]
    full_scans: list[FullScan]
    dsql_nodes: list[str]


def band(ratio: float) -> str:
    return next(name for bound, name in BANDS if ratio >= bound)


def estimate_error(estimated: float, actual: float) -> float:
    """How far apart, as a factor >= 1 (either direction); rows below 1 count as 1."""
    high, low = max(estimated, actual, 1.0), max(min(estimated, actual), 1.0)
    return high / low


def analyze(plan: CapturedPlan, snapshot: Snapshot | None,
            settings: LintSettings) -> Analysis:
    from .nodes import dsql_explanation

    nodes = plan.nodes()
    estimates = [_estimate(n) for n in nodes if n.actual_rows is not None]
    joins = [use for n in nodes for key in JOIN_KEYS if key in n.predicates
             for use in predicate_columns(n.predicates[key], join=True)]
    scans = [_full_scan(n, joins, snapshot, settings) for n in nodes
             if n.node_type in FULL_SCANS and n.relation]
    seen: list[str] = []
    for n in nodes:
        if dsql_explanation(n.node_type) is not None and n.node_type not in seen:
            seen.append(n.node_type)
    return Analysis(plan, estimates, scans, seen)


def _estimate(node: PlanNode) -> Estimate:
    actual = node.actual_rows or 0.0
    ratio = estimate_error(node.plan_rows, actual)
    return Estimate(node.number, node.label, node.plan_rows, actual, node.loops,
                    round(ratio, 2), band(ratio), node.plan_rows > actual)


def _full_scan(node: PlanNode, joins: Sequence[ColumnUse], snapshot: Snapshot | None,
               settings: LintSettings) -> FullScan:
    assert node.relation is not None
    table = snapshot.table(node.relation, node.schema) if snapshot is not None else None
    qualified = table.qualified if table is not None else (
        f"{node.schema}.{node.relation}" if node.schema else node.relation)
    names = {node.alias, node.relation, None}
    uses: list[ColumnUse] = []
    for key in ("Filter", "Filters", "Storage Filter"):
        if key in node.predicates:
            uses += [u for u in predicate_columns(node.predicates[key]) if u.alias in names]
    for child in node.children:  # DSQL: the storage-level Filters sit on the Storage Scan
        for key in ("Filters", "Storage Filter"):
            if key in child.predicates:
                uses += [u for u in predicate_columns(child.predicates[key]) if u.alias in names]
    uses += [u for u in joins if u.alias in names - {None}]
    columns = _ordered_columns(uses, table)
    candidate = index_candidate(qualified, node.relation, columns, table, settings) \
        if columns else None
    return FullScan(node.number, node.label, qualified, node.duration_ms,
                    node.total_actual_rows, node.rows_removed,
                    table.row_estimate if table is not None else None,
                    table.row_bytes if table is not None else None, uses, candidate)


def _ordered_columns(uses: Sequence[ColumnUse], table: Table | None) -> list[str]:
    """Equality columns first (an index serves them best as leading keys), then join
    columns, then ranges; each once; only columns the table has (when it is known)."""
    order = {"equality": 0, "join": 1, "range": 2}
    out: list[str] = []
    for use in sorted(uses, key=lambda u: order[u.how]):
        if use.column in out:
            continue
        if table is not None and table.column(use.column) is None:
            continue
        if use.how == "join" and table is not None and any(
                index.keys[:1] == (use.column,) for index in table.indexes):
            continue  # an index (often the primary key) already leads with the join column
        out.append(use.column)
    return out


def index_candidate(qualified: str, relation: str, columns: list[str], table: Table | None,
                    settings: LintSettings) -> IndexCandidate:
    """The index an agent could create for ``columns``, checked and fixed by the lint rules
    (they add ASYNC and move key columns past the limit into INCLUDE)."""
    name = _identifier(f"ix_{relation}_{'_'.join(columns)}")
    draft = f"CREATE INDEX {name} ON {qualified} ({', '.join(_quote(c) for c in columns)});"
    result = fix_script(draft, settings, "<explain>")
    notes = sorted({d.rule for d in result.diagnostics})
    limit = settings.profile.limits.key_columns_per_index
    if "index_key_columns" in notes:  # unfixable by --fix: do what the rule says to do
        keys, extra = columns[:limit], columns[limit:]
        draft = (f"CREATE INDEX {name} ON {qualified} ({', '.join(_quote(c) for c in keys)}) "
                 f"INCLUDE ({', '.join(_quote(c) for c in extra)});")
        result = fix_script(draft, settings, "<explain>")
    existing = None
    if table is not None:
        for index in table.indexes:
            if index.keys and index.keys[0] == columns[0]:  # it leads with the best column
                existing = f"{index.name} ({', '.join(index.keys)})" + (
                    "" if index.valid else ", not valid: still building or failed")
                break
    return IndexCandidate(qualified, columns, (result.fixed_sql or draft).strip(), notes,
                          existing)


def predicate_columns(expression: str, *, join: bool = False) -> list[ColumnUse]:
    """The columns an EXPLAIN predicate compares, by how: ``(o.a = 5) AND (o.b > 2)`` gives
    a equality and b range. Parsed with pglast (the text is SQL); [] when it does not parse."""
    try:
        tree = json.loads(pg.parse_sql_json(f"SELECT 1 WHERE {expression}"))
    except Exception:  # a DSQL-specific spelling pglast does not know: no columns, no guess
        return []
    where = tree["stmts"][0]["stmt"]["SelectStmt"].get("whereClause")
    return list(_uses(where, join))


def _uses(node: Any, join: bool) -> Iterator[ColumnUse]:
    if isinstance(node, list):
        for item in node:
            yield from _uses(item, join)
        return
    if not isinstance(node, dict):
        return
    expr = node.get("A_Expr")
    if expr is not None:
        operator = "".join(n.get("String", {}).get("sval", "") for n in expr.get("name", []))
        sides = [_column(expr.get("lexpr")), _column(expr.get("rexpr"))]
        columns = [c for c in sides if c is not None]
        if join and len(columns) == 2:
            how = "join"
        elif operator in EQUALITY_OPERATORS or expr.get("kind") == "AEXPR_IN":
            how = "equality"
        else:
            how = "range"
        for alias, column in columns:
            yield ColumnUse(alias, column, "join" if len(columns) == 2 else how)
        for side in ("lexpr", "rexpr"):
            if _column(expr.get(side)) is None:
                yield from _uses(expr.get(side), join)
        return
    if _column(node) is not None:
        return  # a bare column (a boolean test): no comparison to index for
    for value in node.values():
        yield from _uses(value, join)


def _column(node: Any) -> tuple[str | None, str] | None:
    """(alias, column) of a column reference, looking through casts."""
    if not isinstance(node, dict):
        return None
    if "TypeCast" in node:
        return _column(node["TypeCast"].get("arg"))
    ref = node.get("ColumnRef")
    if ref is None:
        return None
    names = [f.get("String", {}).get("sval") for f in ref.get("fields", [])]
    if not names or names[-1] is None:
        return None
    return (names[-2] if len(names) >= 2 else None), str(names[-1])


def _quote(name: str) -> str:
    plain = name.isidentifier() and name == name.lower() and name.isascii()
    return name if plain else '"' + name.replace('"', '""') + '"'


def _identifier(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in name.lower())
    return cleaned[:63]
