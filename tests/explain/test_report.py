"""Report rendering from stored JSON plans (no database): a PostgreSQL plan captured on the
emulator, and a DSQL plan shaped after AWS's documented example."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dsql_migrate.catalog import Column, Index, Snapshot, Table
from dsql_migrate.explain.analyze import analyze, band, estimate_error, predicate_columns
from dsql_migrate.explain.report import as_json, findings, render_markdown
from dsql_migrate.explain.rewrite import explainable
from dsql_migrate.explain.tree import parse_plan, parse_text_plan
from dsql_migrate.lint import LintSettings
from dsql_migrate.profiles import get_profile

PLANS = Path(__file__).parent / "plans"
SETTINGS = LintSettings.build(get_profile("current"))
HEADINGS = ["# SQL Query Explainability — Diagnostic Report", "## Query Information",
            "## SQL Statement", "## Plan Overview", "## Findings", "## Summary"]


def _table(name: str, columns: list[str], rows: int, indexes: tuple[Index, ...] = ()) -> Table:
    return Table("public", name, tuple(Column(c, "text", True) for c in columns),
                 indexes=indexes, row_estimate=rows, row_bytes=40)


def _load(name: str) -> object:
    return json.loads((PLANS / name).read_text())


@pytest.mark.parametrize(("estimated", "actual", "expected"), [
    (100, 100, "accurate"), (100, 190, "accurate"), (100, 300, "minor"), (300, 100, "minor"),
    (10, 100, "significant"), (1, 49, "significant"), (1, 50, "severe"), (0, 0, "accurate"),
    (1000, 0, "severe"),
])
def test_estimate_bands(estimated: float, actual: float, expected: str) -> None:
    assert band(estimate_error(estimated, actual)) == expected


def test_predicate_columns_by_how_they_are_compared() -> None:
    uses = predicate_columns("((o.status = 'open'::text) AND (o.total > 10) AND "
                             "(o.region = ANY ('{a,b}'::text[])))")
    assert [(u.alias, u.column, u.how) for u in uses] == [
        ("o", "status", "equality"), ("o", "total", "range"), ("o", "region", "equality")]
    joins = predicate_columns("(c.id = o.customer_id)", join=True)
    assert {(u.alias, u.column, u.how) for u in joins} == {("c", "id", "join"),
                                                           ("o", "customer_id", "join")}
    assert predicate_columns("this is not sql ((") == []


def test_postgres_plan_report() -> None:
    plan = parse_plan(_load("postgres_hash_join.json"))
    live = Snapshot(tables={
        "public.orders": _table("orders", ["id", "customer_id", "status", "total"], 2900),
        "public.customers": _table("customers", ["id", "region", "tier"], 2000, (
            Index("customers_pkey", True, ("id",), definition="..."),)),
    })
    analysis = analyze(plan, live, SETTINGS)
    statement = explainable("SELECT o.id, c.region FROM orders o JOIN customers c "
                            "ON c.id = o.customer_id WHERE o.status = 'open' AND c.tier = 1")
    markdown = render_markdown(analysis, statement)
    positions = [markdown.index(h) for h in HEADINGS]
    assert positions == sorted(positions)
    assert "[1] Hash Join (est rows=10; actual rows=10 loops=1" in markdown
    assert "-> [2] Seq Scan on public.customers c" in markdown
    assert [s.table for s in analysis.full_scans] == ["public.customers", "public.orders"]
    orders = analysis.full_scans[1]
    assert orders.table_rows == 2900 and orders.rows_removed == 2871
    assert orders.candidate is not None
    assert orders.candidate.columns == ["status", "customer_id"]  # equality, then join
    assert orders.candidate.statement == (
        "CREATE INDEX ASYNC ix_orders_status_customer_id ON public.orders "
        "(status, customer_id);")
    assert orders.candidate.lint == ["index_async"]
    customers = analysis.full_scans[0]
    assert customers.candidate is not None and customers.candidate.existing is None
    # the join column id already leads the primary key: the advice keys on tier alone
    assert customers.candidate.columns == ["tier"]
    for heading in ("#### What we observed", "#### Why it happened", "#### Recommendation"):
        assert markdown.count(heading) == 2
    assert "| 1 | Full scan of public.orders | CRITICAL |" in markdown
    found = findings(analysis)
    assert [f.duration_ms for f in found] == sorted((f.duration_ms for f in found),
                                                    reverse=True)
    data = as_json(analysis, statement)
    assert data["query"]["execution_ms"] == plan.execution_ms
    assert [n["node"] for n in data["nodes"]][:2] == ["Hash Join",
                                                      "Seq Scan on public.customers c"]
    json.dumps(data)  # JSON-ready


def test_dsql_nodes_explained_and_storage_filters_used() -> None:
    plan = parse_plan(_load("dsql_full_scan.json"))
    live = Snapshot(tables={"public.transaction": _table(
        "transaction", ["id", "account_id", "transaction_date", "description"], 100_000)})
    analysis = analyze(plan, live, SETTINGS)
    assert analysis.dsql_nodes == ["Full Scan (btree-table)", "Storage Scan", "B-Tree Scan"]
    markdown = render_markdown(analysis, explainable(
        "SELECT account_id FROM transaction WHERE transaction_date > '2025-01-01' "
        "AND description LIKE '%external%'"))
    assert "## DSQL Plan Nodes" in markdown
    assert "- **Storage Scan**: a read of more than one row from the storage layer" in markdown
    scan = analysis.full_scans[0]
    # the storage-level Filters (on the Storage Scan child) count for the index advice
    assert scan.candidate is not None and "transaction_date" in scan.candidate.columns
    assert "about 100,000 rows" in markdown
    severe = [e for e in analysis.estimates if e.band == "severe"]
    assert [e.node for e in severe] == [1]  # 33,333 expected, 120 came
    assert "Severe row-estimate error on node 1: 277.77x" in markdown


def test_index_advice_respects_the_key_column_limit() -> None:
    columns = [f"c{i}" for i in range(10)]
    from dsql_migrate.explain.analyze import index_candidate

    candidate = index_candidate("public.wide", "wide", columns, None, SETTINGS)
    assert "index_key_columns" in candidate.lint
    assert candidate.statement.startswith("CREATE INDEX ASYNC")
    keys = candidate.statement.split("(", 1)[1].split(")", 1)[0].split(", ")
    assert len(keys) == 8 and "INCLUDE (c8, c9)" in candidate.statement


def test_existing_index_is_named_instead_of_a_new_one() -> None:
    plan = parse_plan(_load("postgres_hash_join.json"))
    live = Snapshot(tables={
        "public.orders": _table("orders", ["id", "customer_id", "status"], 2900, (
            Index("ix_orders_status", False, ("status",), definition="..."),)),
        "public.customers": _table("customers", ["id", "region", "tier"], 2000),
    })
    analysis = analyze(plan, live, SETTINGS)
    orders = next(s for s in analysis.full_scans if s.table == "public.orders")
    assert orders.candidate is not None
    assert orders.candidate.existing == "ix_orders_status (status)"
    markdown = render_markdown(analysis, explainable("SELECT 1"))
    assert "Full scan of public.orders despite an index" in markdown
    assert "ANALYZE public.orders;" in markdown


def test_a_slow_query_gets_the_manual_guc_sql() -> None:
    document = _load("dsql_full_scan.json")
    assert isinstance(document, list)
    document[0]["Execution Time"] = 45_000.0
    analysis = analyze(parse_plan(document), None, SETTINGS)
    markdown = render_markdown(analysis, explainable("SELECT 1"))
    assert "GUC experimentation skipped" in markdown and "(45.0s)" in markdown
    assert "SET enable_mergejoin = on;" in markdown


def test_text_plan_parses_like_the_json_one() -> None:
    """The text form of the same query (captured on the emulator) gives the same tree."""
    text = parse_text_plan((PLANS / "postgres_hash_join.txt").read_text())
    shape = [(n.number, n.node_type, n.schema, n.relation, n.alias, n.plan_rows, n.loops,
              n.rows_removed, n.predicates) for n in text.nodes()]
    assert shape == [
        (1, "Hash Join", None, None, None, 10.0, 1, None, {"Hash Cond": "(c.id = o.customer_id)"}),
        (2, "Seq Scan", "public", "customers", "c", 334.0, 1, 666, {"Filter": "(c.tier = 1)"}),
        (3, "Hash", None, None, None, 29.0, 1, None, {}),
        (4, "Seq Scan", "public", "orders", "o", 29.0, 1, 2871,
         {"Filter": "(o.status = 'open'::text)"}),
    ]
    assert (text.planning_ms, text.execution_ms) == (0.931, 0.712)
    assert text.root.actual_total_ms == 0.674 and text.root.actual_rows == 11


def test_dsql_text_plan_with_query_id_and_dpu() -> None:
    """AWS's documented DSQL output ("Understanding DPUs in EXPLAIN ANALYZE", Example 1; its
    Total line completed as the sum): storage nodes without times, the footer's query id and
    DPU estimate."""
    plan = parse_text_plan((PLANS / "dsql_index_only_scan.txt").read_text())
    assert [(n.node_type, n.index, n.relation) for n in plan.nodes()] == [
        ("Index Only Scan", "test_table_pkey", "test_table"),
        ("Storage Scan", None, "test_table_pkey"), ("B-Tree Scan", None, "test_table_pkey")]
    assert plan.nodes()[1].actual_total_ms is None and plan.nodes()[1].actual_rows == 120
    assert plan.query_id == "qymgw1m77maoe"
    assert plan.dpu == ("Compute: 0.01607 DPU, Read: 0.04312 DPU, Write: 0.00000 DPU, "
                        "Total: 0.05919 DPU")
    markdown = render_markdown(analyze(plan, None, SETTINGS), explainable("SELECT 1"))
    assert "| Query Identifier | qymgw1m77maoe |" in markdown
    assert "| DPU Estimate | Compute: 0.01607 DPU" in markdown
    assert "- **B-Tree Scan**: the physical read" in markdown
    # 1,000,000 rows expected, 120 came: severe, on all three nodes
    assert [e.band for e in analyze(plan, None, SETTINGS).estimates] == ["severe"] * 3
