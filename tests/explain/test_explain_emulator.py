"""``explain`` on the emulator (PostgreSQL plans through the DSQL-rules proxy): a full scan,
an index scan, an estimate error, an UPDATE rewritten, an INSERT refused; library and CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from dsql_migrate.cli import main
from dsql_migrate.explain import ExplainRefused, explain
from dsql_migrate.lint import LintSettings
from dsql_migrate.profiles import get_profile

SETTINGS = LintSettings.build(get_profile("current"))


@pytest.fixture(scope="module")
def tables(raw_url: str) -> Iterator[None]:
    """xp_orders: 4,000 rows; a = b always (10 values each): correlated predicates."""
    with psycopg.connect(raw_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS xp_orders")
        conn.execute("CREATE TABLE xp_orders (id bigint PRIMARY KEY, customer_id bigint, "
                     "status text, a int, b int)")
        conn.execute("INSERT INTO xp_orders SELECT g, g % 400, CASE WHEN g % 100 = 0 THEN "
                     "'open' ELSE 'done' END, g % 10, g % 10 FROM generate_series(1, 4000) g")
        conn.execute("ANALYZE xp_orders")
        yield
        conn.execute("DROP TABLE IF EXISTS xp_orders")


@pytest.fixture
def dsql(dsql_url: str, tables: None) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(dsql_url) as conn:
        yield conn


def test_full_scan_with_table_size_and_index_advice(dsql: psycopg.Connection[Any]) -> None:
    report = explain(dsql, "SELECT id FROM xp_orders WHERE status = 'open'", SETTINGS)
    [scan] = report.analysis.full_scans
    assert scan.label == "Seq Scan on public.xp_orders" and scan.table == "public.xp_orders"
    assert scan.table_rows == 4000 and scan.rows_read == 40 and scan.rows_removed == 3960
    assert scan.candidate is not None
    assert scan.candidate.statement == ("CREATE INDEX ASYNC ix_xp_orders_status ON "
                                        "public.xp_orders (status);")
    markdown = report.markdown()
    assert "reads the whole table public.xp_orders (about 4,000 rows" in markdown
    assert "Execution Time | " in markdown and "ms |" in markdown


def test_index_scan_is_no_full_scan(dsql: psycopg.Connection[Any]) -> None:
    report = explain(dsql, "SELECT status FROM xp_orders WHERE id = 42", SETTINGS)
    types = [n.node_type for n in report.analysis.plan.nodes()]
    assert types == ["Index Scan"], types
    assert report.analysis.plan.root.index == "xp_orders_pkey"
    assert report.analysis.full_scans == []
    assert "No full scan and no row estimate off by 5x or more" in report.markdown()


def test_correlated_predicates_give_an_estimate_error(dsql: psycopg.Connection[Any]) -> None:
    report = explain(dsql, "SELECT id FROM xp_orders WHERE a = 1 AND b = 1", SETTINGS)
    [estimate] = report.analysis.estimates
    # the planner multiplies 1/10 by 1/10: 40 rows expected, 400 came
    assert (estimate.estimated, estimate.actual) == (40, 400)
    assert estimate.band == "significant" and not estimate.over
    assert "Significant row-estimate error on node 1: 10x" in report.markdown()


def test_update_is_explained_as_its_select_and_changes_nothing(
        dsql: psycopg.Connection[Any], raw_url: str) -> None:
    report = explain(dsql, "UPDATE xp_orders SET status = 'gone' WHERE customer_id = 7",
                     SETTINGS)
    assert report.statement.select == ("SELECT 'gone' AS status FROM xp_orders "
                                       "WHERE customer_id = 7")
    assert report.analysis.plan.root.actual_rows == 10
    markdown = report.markdown()
    assert "UPDATE rewritten to the SELECT" in markdown
    assert "CREATE INDEX ASYNC ix_xp_orders_customer_id" in markdown
    with psycopg.connect(raw_url) as conn:
        assert conn.execute("SELECT count(*) FROM xp_orders WHERE status = 'gone'"
                            ).fetchone() == (0,)


def test_insert_is_refused_before_anything_runs(dsql: psycopg.Connection[Any]) -> None:
    with pytest.raises(ExplainRefused, match="INSERT is not explained"):
        explain(dsql, "INSERT INTO xp_orders (id) VALUES (-1)", SETTINGS)


def test_cli(dsql_url: str, tables: None, workdir: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(main, ["explain", "--url", dsql_url, "--format", "json",
                                "DELETE FROM xp_orders WHERE status = 'open'"])
    assert done.exit_code == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["kind"] == "delete"
    assert data["explained_sql"] == "SELECT xp_orders.* FROM xp_orders WHERE status = 'open'"
    assert data["full_scans"][0]["table"] == "public.xp_orders"

    done = runner.invoke(main, ["explain", "--url", dsql_url, "-o", "report.md",
                                "SELECT count(*) FROM xp_orders"])
    assert done.exit_code == 0, done.stderr
    assert (workdir / "report.md").read_text().startswith(
        "# SQL Query Explainability — Diagnostic Report")

    refused = runner.invoke(main, ["explain", "--url", dsql_url, "CREATE TABLE x (a int)"])
    assert refused.exit_code == 2
    assert "error: CREATE TABLE is not a query" in refused.stderr
    assert "Traceback" not in refused.stderr

    missing = runner.invoke(main, ["explain", "--url", dsql_url, "SELECT * FROM xp_nope"])
    assert missing.exit_code == 1
    assert 'relation "xp_nope" does not exist' in missing.stderr  # verbatim


def test_text_form_gives_the_same_findings(dsql: psycopg.Connection[Any]) -> None:
    """The form captured on DSQL targets, read from the emulator's real output."""
    sql = "SELECT id FROM xp_orders WHERE status = 'open'"
    text = explain(dsql, sql, SETTINGS, plan_format="text")
    data = explain(dsql, sql, SETTINGS, plan_format="json")
    assert [n.label for n in text.analysis.plan.nodes()] == \
        [n.label for n in data.analysis.plan.nodes()] == ["Seq Scan on public.xp_orders"]
    [scan] = text.analysis.full_scans
    assert scan.rows_removed == 3960 and scan.table_rows == 4000
    assert scan.candidate is not None and scan.candidate.columns == ["status"]
