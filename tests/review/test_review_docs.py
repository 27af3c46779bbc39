"""docs/ci.md's review comment is a real review of the demo project, regenerated here.

The demo's revisions 0001-0003 are the base (on ``main``, and applied to a target emulator with
the demo's rows, analyzed); the change adds 0004. The review's markdown, with the volatile bits
normalised (commit id, the target's port), must be the page's example. To refresh the page
after a deliberate change: ``DSQL_MIGRATE_UPDATE_DOCS=1 pytest tests/review/test_review_docs.py``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from review_project import git

from _support import PrivateTarget
from dsql_migrate.alembic.demo_project import write_revisions
from dsql_migrate.cli import main
from dsql_migrate.cli.migrations import scaffold
from dsql_migrate.local import LocalInstance

pytestmark = pytest.mark.integration

PAGE = Path(__file__).resolve().parents[2] / "docs" / "ci.md"
START, END = "<!-- example:start -->\n", "<!-- example:end -->\n"
FENCE = "````markdown\n"


def normalise(text: str) -> str:
    text = re.sub(r"\(`[0-9a-f]{12}`, at", "(`0123456789ab`, at", text)
    return re.sub(r"postgresql://admin@127\.0\.0\.1:\d+/postgres",
                  "postgresql://admin@127.0.0.1:5432/postgres", text)


def demo_review(root: Path, target: LocalInstance) -> tuple[int, str]:
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "review@example.com")
    git(root, "config", "user.name", "review")
    scaffold(root, "migrations")
    (root / ".gitignore").write_text(".dsql-migrate/\n__pycache__/\n")
    *_, last = write_revisions(root / "migrations" / "versions")
    change = last.read_text()
    last.unlink()
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "the demo's first three revisions")
    url = target.url()
    runner = CliRunner()
    upgraded = runner.invoke(main, ["upgrade", "heads", "--url", url])
    assert upgraded.exit_code == 0, upgraded.output
    with psycopg.connect(target.raw_url(), autocommit=True) as conn:
        conn.execute("ANALYZE customers")
        conn.execute("ANALYZE orders")
    git(root, "checkout", "-q", "-b", "orders-bigint")
    last.write_text(change)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "orders.total_cents BIGINT")
    result = runner.invoke(main, ["review", "--url", url])
    return result.exit_code, normalise(result.stdout)


def test_the_page_shows_a_real_review_of_the_demo(
        workdir: Path, private_target: PrivateTarget) -> None:
    with private_target("review-docs") as target:
        code, review = demo_review(workdir, target)
    assert code == 5, review
    page = PAGE.read_text(encoding="utf-8")
    before, rest = page.split(START, 1)
    shown, after = rest.split(END, 1)
    expected = FENCE + review + "````\n"
    if os.environ.get("DSQL_MIGRATE_UPDATE_DOCS") and shown != expected:
        PAGE.write_text(before + START + expected + END + after, encoding="utf-8")
        pytest.skip("docs/ci.md updated")
    assert shown == expected, "docs/ci.md's review example is stale: see this module's docstring"
