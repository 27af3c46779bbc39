"""``upgrade --expect-hash``, the upgrade hash ``upgrade --dry-run`` prints, and
``upgrade --log-format json`` (issue 17: a deploy runs what the review showed)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from _support import cli
from dsql_migrate.cli._common import AppContext
from dsql_migrate.cli.migrations import RunCheck, dry_run_plans, upgrade_with_progress
from dsql_migrate.plan import PlanHashMismatch

H1 = '''revision = "h1"
down_revision = None
import sqlalchemy as sa
from alembic import op


def upgrade():
    items = op.create_table(
        "t7hash_items",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(40), nullable=False))
    op.bulk_insert(items, [{"id": i, "name": f"n{i}"} for i in range(1, 6)])


def downgrade():
    op.drop_table("t7hash_items")
'''

H2 = '''revision = "h2"
down_revision = "h1"
import sqlalchemy as sa
from alembic import op


def upgrade():
    op.add_column("t7hash_items", sa.Column("qty", sa.Integer))
    op.create_index("ix_t7hash_items_name", "t7hash_items", ["name"])


def downgrade():
    op.drop_index("ix_t7hash_items_name")
    op.drop_column("t7hash_items", "qty")
'''

HASH = re.compile(r"^upgrade hash: (sha256:[0-9a-f]{64})$", re.MULTILINE)


@pytest.fixture
def project(workdir: Path, dsql_url: str) -> Iterator[Path]:
    assert cli("init", "migrations").exit_code == 0
    versions = workdir / "migrations" / "versions"
    (versions / "h1_items.py").write_text(H1)
    (versions / "h2_qty.py").write_text(H2)
    try:
        yield workdir
    finally:
        with psycopg.connect(dsql_url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS t7hash_items")
            conn.execute("DROP TABLE IF EXISTS t7hash_other")
            if conn.execute("SELECT to_regclass('alembic_version')").fetchone() != (None,):
                conn.execute("DELETE FROM alembic_version")


def dry_hash(url: str) -> str:
    dry = cli("upgrade", "--dry-run", "--url", url)
    assert dry.exit_code == 0, dry.output
    found = HASH.findall(dry.stdout)
    assert len(found) == 1, dry.stdout
    return str(found[0])


def version(url: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('alembic_version')").fetchone() == (None,):
            return []
        return [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]


def exists(url: str, table: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT to_regclass(%s)", (table,)).fetchone() != (None,)


def test_expect_hash_from_the_dry_run_applies(project: Path, dsql_url: str) -> None:
    pinned = dry_hash(dsql_url)
    assert dry_hash(dsql_url) == pinned  # deterministic: no run number, no timestamp
    run = cli("upgrade", "--url", dsql_url, "--expect-hash", pinned)
    assert run.exit_code == 0, run.output
    assert version(dsql_url) == ["h2"]
    with psycopg.connect(dsql_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(qty), count(*) FROM t7hash_items").fetchone() == (0, 5)
    # nothing pending now: another hash, so the old pin is refused rather than taken as done
    assert dry_hash(dsql_url) != pinned


def test_a_deploy_run_again_after_it_succeeded_finds_its_work_done(project: Path,
                                                                    dsql_url: str) -> None:
    first = dry_hash(dsql_url)
    assert cli("upgrade", "h1", "--url", dsql_url, "--expect-hash", first).exit_code == 5
    assert cli("upgrade", "h1", "--url", dsql_url).exit_code == 0
    pinned = dry_hash(dsql_url)  # the pin of h2 alone
    assert cli("upgrade", "--url", dsql_url, "--expect-hash", pinned).exit_code == 0
    with psycopg.connect(dsql_url, autocommit=True) as conn:
        conn.execute("INSERT INTO t7hash_items (id, name) VALUES (99, 'after')")
    # the CI job is re-run: same pin, nothing pending: done, nothing run again
    again = cli("upgrade", "--url", dsql_url, "--expect-hash", pinned, "--log-format", "json")
    assert again.exit_code == 0, again.output
    events = [json.loads(line) for line in again.stderr.splitlines() if line.startswith("{")]
    assert [e["event"] for e in events] == ["upgrade.done_before"], again.stderr
    assert events[0]["hash"] == pinned and events[0]["revisions"] == 1
    assert version(dsql_url) == ["h2"]
    with psycopg.connect(dsql_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM t7hash_items").fetchone() == (6,)
    # the pin of h1 and h2 together: the same plans ran from the same premise, in two runs
    assert first != pinned
    both = cli("upgrade", "--url", dsql_url, "--expect-hash", first)
    assert both.exit_code == 0 and "(2 revisions)" in both.output, both.output
    # a pin that no run of the latest revisions reproduces is still refused
    with psycopg.connect(dsql_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE t7hash_items ADD COLUMN note TEXT")
    other = dry_hash(dsql_url)
    refused = cli("upgrade", "--url", dsql_url, "--expect-hash", "sha256:" + "0" * 64)
    assert refused.exit_code == 5 and "pending: nothing" in refused.output, refused.output
    assert other not in (first, pinned)
    # after a downgrade h2 is pending again: the pin is checked against its new plan, whose
    # premise now has the column added by hand
    assert cli("downgrade", "h1", "--url", dsql_url).exit_code == 0
    rerun = cli("upgrade", "--url", dsql_url, "--expect-hash", pinned)
    assert rerun.exit_code == 5 and "pending: h1 -> h2" in rerun.output, rerun.output
    assert version(dsql_url) == ["h1"]


def test_a_wrong_hash_is_refused_before_anything_changes(project: Path, dsql_url: str) -> None:
    pinned = dry_hash(dsql_url)
    wrong = "sha256:" + "0" * 64
    run = cli("upgrade", "--url", dsql_url, "--expect-hash", wrong)
    assert run.exit_code == 5, run.output
    assert pinned in run.output and wrong in run.output
    assert "nothing was changed" in run.output and "hint:" in run.output
    assert "Traceback" not in run.output
    assert version(dsql_url) == []
    assert not exists(dsql_url, "t7hash_items")


def test_the_hash_ignores_an_unrelated_table_but_not_a_touched_one(project: Path,
                                                                   dsql_url: str) -> None:
    assert cli("upgrade", "h1", "--url", dsql_url).exit_code == 0
    before = dry_hash(dsql_url)
    with psycopg.connect(dsql_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t7hash_other (id BIGINT PRIMARY KEY)")
    assert dry_hash(dsql_url) == before
    with psycopg.connect(dsql_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE t7hash_items ADD COLUMN note TEXT")
    assert dry_hash(dsql_url) != before  # the premise of the table h2 alters changed


def test_a_database_changed_between_check_and_run_stops_before_the_revision(
        project: Path, dsql_url: str) -> None:
    assert cli("upgrade", "h1", "--url", dsql_url).exit_code == 0
    app = AppContext()
    ini = project / "alembic.ini"
    found = dry_run_plans(app, ini, "head", url=dsql_url, local_dir=project / ".local",
                          profile=None)
    with psycopg.connect(dsql_url, autocommit=True) as conn:  # after the check, before the run
        conn.execute("ALTER TABLE t7hash_items ADD COLUMN note TEXT")
    with pytest.raises(PlanHashMismatch, match="changed between the check and the run"):
        upgrade_with_progress(app, ini, "head", url=dsql_url, local_dir=project / ".local",
                              profile=None, on_plan=RunCheck(found.pins))
    assert version(dsql_url) == ["h1"]
    with psycopg.connect(dsql_url, autocommit=True) as conn:
        columns = [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 't7hash_items' ORDER BY column_name")]
    assert "qty" not in columns


def test_log_format_json_emits_json_lines(project: Path, dsql_url: str) -> None:
    run = cli("upgrade", "--url", dsql_url, "--log-format", "json")
    assert run.exit_code == 0, run.output
    events = [json.loads(line) for line in run.stderr.splitlines() if line.strip()]
    kinds = {e.get("event") for e in events}
    assert {"revision.start", "revision.done"} <= kinds, kinds
    assert version(dsql_url) == ["h2"]


def test_a_dry_run_through_a_stock_env_py_is_refused_not_run(project: Path,
                                                              dsql_url: str) -> None:
    env = project / "migrations" / "env.py"
    env.write_text(env.read_text().replace("from dsql_migrate.alembic import context",
                                           "from alembic import context"))
    for args in (("--dry-run",), ("--expect-hash", "sha256:" + "0" * 64)):
        run = cli("upgrade", "--url", dsql_url, *args)
        assert run.exit_code == 2, run.output
        assert "does not use the dsql-migrate plugin" in run.output
    assert not exists(dsql_url, "t7hash_items")
    assert version(dsql_url) == []
