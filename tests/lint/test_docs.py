from __future__ import annotations

from pathlib import Path

from dsql_migrate.lint import REGISTRY
from dsql_migrate.lint.docs import render_rules_markdown

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_rules_page_is_up_to_date() -> None:
    committed = (DOCS / "lint-rules.md").read_text(encoding="utf-8")
    assert committed == render_rules_markdown(), (
        "docs/lint-rules.md is stale: run python -m dsql_migrate.lint.docs docs/lint-rules.md"
    )


def test_every_rule_is_documented_with_an_example() -> None:
    for r in REGISTRY:
        assert r.doc.strip(), r.id
        assert "Example" in r.doc, f"{r.id}: docstring needs an example"
