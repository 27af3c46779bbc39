"""docs/alembic.md's example runs on the emulator."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import psycopg
from click.testing import CliRunner

from dsql_migrate.cli import main

PAGE = Path(__file__).resolve().parents[2] / "docs" / "alembic.md"


def test_the_documented_example_runs(workdir: Path, dsql_url: str) -> None:
    text = PAGE.read_text()
    body = re.search(r"```python\ndef upgrade\(\) -> None:\n(.*?)```", text, re.S)
    assert body is not None
    runner = CliRunner()
    url = ["--url", dsql_url]
    assert runner.invoke(main, ["init", "migrations"]).exit_code == 0
    made = runner.invoke(main, ["revision", "-m", "customers"])
    assert made.exit_code == 0, made.output
    script = next((workdir / "migrations" / "versions").glob("*_customers.py"))
    source = script.read_text()
    head = source[:source.index("def upgrade() -> None:")]
    script.write_text(head + "def upgrade() -> None:\n" + body.group(1))

    dry = runner.invoke(main, ["upgrade", "--dry-run", *url])
    assert dry.exit_code == 0, dry.output
    assert "create index ux_customers_email" in dry.output
    up = runner.invoke(main, ["upgrade", *url])
    assert up.exit_code == 0, up.output
    assert "2,500 rows in 5 batches" in up.output  # the backfill, 500 rows per batch
    assert "(head)" in runner.invoke(main, ["current", *url]).output
    with psycopg.connect(dsql_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM customers WHERE tier = 'standard'"
                            ).fetchone() == (2500,)
    down = runner.invoke(main, ["downgrade", "base", *url])
    assert down.exit_code == 0, down.output
    with psycopg.connect(dsql_url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('customers')").fetchone() == (None,)


def test_the_documented_batch_example_runs(workdir: Path, dsql_url: str) -> None:
    text = PAGE.read_text()
    first = re.search(r"```python\ndef upgrade\(\) -> None:\n(.*?)```", text, re.S)
    batch = re.search(r"```python\ndef upgrade\(\) -> None:\n(    with op\.batch_alter_table"
                      r".*?)```", text, re.S)
    assert first is not None and batch is not None
    runner = CliRunner()
    url = ["--url", dsql_url]
    assert runner.invoke(main, ["init", "migrations"]).exit_code == 0
    for message, body in (("customers", first.group(1)), ("batch", batch.group(1))):
        made = runner.invoke(main, ["revision", "-m", message])
        assert made.exit_code == 0, made.output
        script = next((workdir / "migrations" / "versions").glob(f"*_{message}.py"))
        source = script.read_text()
        head, _, tail = source.partition("def upgrade() -> None:")
        rest = tail[tail.index("def downgrade() -> None:"):] if message == "batch" else ""
        script.write_text(head + "def upgrade() -> None:\n" + body + "\n\n" + rest)

    up = runner.invoke(main, ["upgrade", *url])
    try:
        assert up.exit_code == 0, up.output
        with psycopg.connect(dsql_url, autocommit=True) as conn:
            assert conn.execute(
                "SELECT count(*) FILTER (WHERE status = 'new'), pg_typeof(min(score))::text "
                "FROM customers").fetchone() == (2500, "bigint")
            assert conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'customers' "
                                "AND indexname IN ('ix_customers_status', "
                                "'uq_customers_score')").fetchone() == (2,)
    finally:
        down = runner.invoke(main, ["downgrade", "base", *url])
        assert down.exit_code == 0, down.output


def block(text: str, first_line: str) -> str:
    """The fenced python block of the page that starts with ``first_line``."""
    found = re.search(r"```python\n" + re.escape(first_line) + r"\n(.*?)```", text, re.S)
    assert found is not None, first_line
    return found.group(1)


def test_the_autogenerate_example_writes_what_the_page_shows(workdir: Path,
                                                             dsql_url: str) -> None:
    text = PAGE.read_text()
    first = block(text, "# models.py, first version")
    changed = block(text, "# models.py, changed")
    shown = block(text, "# migrations/versions/<id>_plans_and_referrals.py")
    runner = CliRunner()
    url = ["--url", dsql_url]
    assert runner.invoke(main, ["init", "migrations"]).exit_code == 0
    env = workdir / "migrations" / "env.py"
    env.write_text(env.read_text().replace(
        "target_metadata = None", "from models import metadata as target_metadata"))
    try:
        (workdir / "models.py").write_text(first)
        sys.modules.pop("models", None)
        made = runner.invoke(main, ["revision", "--autogenerate", "-m", "members and payments",
                                    *url])
        assert made.exit_code == 0, made.output
        assert runner.invoke(main, ["upgrade", *url]).exit_code == 0
        with psycopg.connect(dsql_url, autocommit=True) as conn:
            conn.execute("INSERT INTO members (email) VALUES ('ann@example.com'), "
                         "('bob@example.com')")
            conn.execute("INSERT INTO payments (member_id, cents) VALUES (1, 500), (2, 1200)")

        (workdir / "models.py").write_text(changed)
        sys.modules.pop("models", None)
        made = runner.invoke(main, ["revision", "--autogenerate", "-m", "plans and referrals",
                                    *url])
        assert made.exit_code == 0, made.output
        written = next((workdir / "migrations" / "versions").glob(
            "*_plans_and_referrals.py")).read_text()
        for line in shown.splitlines():
            assert line in written, f"the page shows {line!r}, autogenerate wrote\n{written}"

        dry = runner.invoke(main, ["upgrade", "--dry-run", *url])
        assert dry.exit_code == 0, dry.output
        assert "26 steps" in dry.output and "4 async jobs" in dry.output
        up = runner.invoke(main, ["upgrade", *url])
        assert up.exit_code == 0, up.output
        check = runner.invoke(main, ["check", *url])
        assert check.exit_code == 0, check.output
        down = runner.invoke(main, ["downgrade", "-1", *url])
        assert down.exit_code == 0, down.output
    finally:
        sys.modules.pop("models", None)
        with psycopg.connect(dsql_url, autocommit=True) as conn:
            for table in ("payments", "members", "payments__old", "payments__new"):
                conn.execute(f"DROP TABLE IF EXISTS {table}")
            if conn.execute("SELECT to_regclass('alembic_version')").fetchone() != (None,):
                conn.execute("DELETE FROM alembic_version")
