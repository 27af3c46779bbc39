"""``dsql-migrate explain``: the query-plan explainability report (seed guide, workflow 8).

One implementation for the CLI command and the MCP tool::

    from dsql_migrate.explain import explain
    report = explain(conn, "SELECT * FROM orders WHERE customer_id = 42", settings)
    report.markdown()      # the guide's structured report
    report.as_json()       # the same facts as data

Steps: :mod:`.rewrite` (UPDATE/DELETE -> SELECT; INSERT, DDL, procedural code refused),
:mod:`.capture` (EXPLAIN ANALYZE VERBOSE in a rolled-back read-only transaction),
:mod:`.analyze` (durations, full scans with catalog sizes, estimate bands, index candidates
checked by the lint rules), :mod:`.report` (markdown or JSON).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from ..catalog import snapshot
from ..lint import LintSettings
from .analyze import Analysis, analyze
from .capture import ExplainFailed, capture
from .report import FORMATS, as_json, render, render_markdown
from .rewrite import Explainable, ExplainRefused, explainable


@dataclass
class Report:
    statement: Explainable
    analysis: Analysis

    def markdown(self) -> str:
        return render_markdown(self.analysis, self.statement)

    def as_json(self) -> dict[str, Any]:
        return as_json(self.analysis, self.statement)

    def render(self, fmt: str) -> str:
        return render(self.analysis, self.statement, fmt)


def explain(conn: psycopg.Connection[Any], sql: str, settings: LintSettings, *,
            plan_format: str = "json") -> Report:
    """Refuse or rewrite ``sql``, capture its plan on ``conn`` and analyze it against the
    live catalog (table sizes, existing indexes). ``plan_format``: the EXPLAIN form to
    capture, ``json`` (falling back to text where refused) or ``text`` (DSQL's documented
    form, with its query identifier and DPU estimate)."""
    statement = explainable(sql)  # refusals come before any database work
    plan = capture(conn, statement.select, plan_format)
    conn.autocommit = True  # the snapshot opens its own transaction
    live = snapshot(conn)
    return Report(statement, analyze(plan, live, settings))


def plan_format_for(target_kind: str) -> str:
    """Text on DSQL (where the DPU estimate is printed), JSON elsewhere."""
    return "text" if target_kind == "dsql" else "json"


__all__ = ["FORMATS", "ExplainFailed", "ExplainRefused", "Explainable", "Report", "explain",
           "explainable", "plan_format_for"]
