"""Issue 13: a revision that uses the connection while it is recorded (a data migration between
DDL, reflection of what it added) runs the ops before that use first, resumes correctly, and is
explained by --dry-run and --sql. The revision c2 is docs/alembic.md's example."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from alembic_project import make_project

PAGE = Path(__file__).resolve().parents[2] / "docs" / "alembic.md"


def documented_revision() -> str:
    found = re.search(r"```python\n# migrations/versions/c2_workspaces.py\n(.*?)```",
                      PAGE.read_text(), re.S)
    assert found is not None
    return found.group(1)


def project(root: Path, url: str, *, with_c3: bool = False) -> Path:
    ini = make_project(root, url, revisions=("c1", "c3") if with_c3 else ("c1",))
    (root / "migrations" / "versions" / "c2_workspaces.py").write_text(documented_revision())
    return ini


def run_cli(*args: str, crash: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    env.pop("DSQL_MIGRATE_CRASH_AT", None)
    if crash:
        env["DSQL_MIGRATE_CRASH_AT"] = crash
    return subprocess.run([sys.executable, "-m", "dsql_migrate", *args], capture_output=True,
                          text=True, env=env, timeout=300, check=False)


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def check_c2_applied(url: str) -> None:
    assert query(url, "SELECT version_num FROM alembic_version") == [("c2",)]
    assert query(url, "SELECT id, name FROM t8_workspaces") == [(1, "default")]
    assert query(url, "SELECT count(*) FROM t8_users WHERE workspace_id = 1") == [(50,)]
    assert query(url, "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON "
                      "c.oid = i.indexrelid WHERE c.relname = 'ix_t8_users_workspace'") == [
        (True,)]


def downgrade(ini: Path) -> None:
    down = run_cli("downgrade", "base", "-c", str(ini))
    assert down.returncode == 0, down.stderr


def test_the_ops_before_a_connection_use_run_first(tmp_path: Path, dsql_url: str) -> None:
    ini = project(tmp_path, dsql_url)
    up = run_cli("upgrade", "-c", str(ini))
    try:
        assert up.returncode == 0, up.stderr
        check_c2_applied(dsql_url)
        assert re.search(r"alembic upgrade c1 -> c2 \(run \d+, part 1\)", up.stderr)
        assert "c2_workspaces.py:25" in up.stderr  # the line of the first connection use
    finally:
        downgrade(ini)
    assert query(dsql_url, "SELECT to_regclass('t8_workspaces')") == [(None,)]


@pytest.mark.parametrize("crash", [
    "ddl.after_execute:1",  # inside part 1: the column added, the table not yet created
    "alembic.write.after_commit:1",  # the INSERT committed, the UPDATE not yet run
    "alembic.write.after_commit:2",  # both writes committed, the last plan not started
])
def test_a_killed_run_resumes_without_running_anything_twice(crash: str, tmp_path: Path,
                                                             dsql_url: str) -> None:
    ini = project(tmp_path, dsql_url)
    assert run_cli("upgrade", "c1", "-c", str(ini)).returncode == 0
    killed = run_cli("upgrade", "-c", str(ini), crash=crash)
    try:
        assert killed.returncode == -9, killed.stderr
        assert query(dsql_url, "SELECT version_num FROM alembic_version") == [("c1",)]
        resumed = run_cli("upgrade", "-c", str(ini))
        assert resumed.returncode == 0, resumed.stderr  # the INSERT again would fail: dup key
        check_c2_applied(dsql_url)
        if crash.startswith("ddl"):
            assert re.search(r"resuming the stored plan of alembic upgrade c1 -> c2 "
                             r"\(run \d+, part 1\)", resumed.stderr)
        else:
            assert re.search(r"\(run \d+, part 1\): already applied", resumed.stderr)
            assert "was committed by an earlier run: skipped" in resumed.stderr
    finally:
        downgrade(ini)


def test_an_upgrade_after_a_downgrade_runs_the_writes_again(tmp_path: Path,
                                                             dsql_url: str) -> None:
    ini = project(tmp_path, dsql_url)
    try:
        for _ in range(2):
            up = run_cli("upgrade", "-c", str(ini))
            assert up.returncode == 0, up.stderr
            check_c2_applied(dsql_url)
            assert run_cli("downgrade", "c1", "-c", str(ini)).returncode == 0
        assert "skipped" not in up.stderr
    finally:
        downgrade(ini)


def test_dry_run_and_sql_say_which_revision_needs_a_connection(tmp_path: Path,
                                                               dsql_url: str) -> None:
    ini = project(tmp_path, dsql_url)
    up = run_cli("upgrade", "c1", "-c", str(ini))
    assert up.returncode == 0, up.stderr
    try:
        dry = run_cli("upgrade", "--dry-run", "-c", str(ini))
        assert dry.returncode == 0, dry.stderr
        assert "alembic upgrade c1 -> c2 needs a live connection" in dry.stdout
        assert "c2_workspaces.py:25" in dry.stdout and "SELECT" in dry.stdout
        assert "add column t8_users.workspace_id" in dry.stdout  # the ops before it
        sql = run_cli("upgrade", "--sql", "-c", str(ini), "c1:c2")
        assert sql.returncode == 0, sql.stderr
        assert "needs a live connection" in sql.stdout and "op.get_bind()" in sql.stdout
        assert query(dsql_url, "SELECT to_regclass('t8_workspaces')") == [(None,)]
    finally:
        downgrade(ini)


def test_a_write_over_the_row_limit_names_the_line_and_op_backfill(tmp_path: Path,
                                                                   dsql_url: str) -> None:
    ini = project(tmp_path, dsql_url, with_c3=True)
    up = run_cli("upgrade", "-c", str(ini))
    try:
        assert up.returncode == 1, up.stderr
        assert "c3_too_many_rows.py:22: database error: transaction row limit exceeded" in (
            up.stderr)
        assert "op.backfill" in up.stderr and "Traceback" not in up.stderr
        assert query(dsql_url, "SELECT count(*) FROM t8_big WHERE n = 0") == [(3100,)]
    finally:
        downgrade(ini)
        with psycopg.connect(dsql_url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS t8_big")


STREAMING = '''\
"""reads with yield_per (a server-side cursor on PostgreSQL)

Revision ID: c4
Revises: c1
"""
import sqlalchemy as sa
from alembic import op

revision = "c4"
down_revision = "c1"


def upgrade() -> None:
    op.add_column("t8_users", sa.Column("seen", sa.Integer))
    bind = op.get_bind()
    rows = bind.execution_options(stream_results=True, yield_per=10).execute(
        sa.text("SELECT id FROM t8_users ORDER BY id")).fetchall()
    assert len(rows) == 50
    bind.execute(sa.text("UPDATE t8_users SET seen = 1"))


def downgrade() -> None:
    op.drop_column("t8_users", "seen")
'''


def test_streamed_reads_of_a_revision_need_no_server_side_cursor(tmp_path: Path,
                                                                 dsql_url: str) -> None:
    """optuna v3.0.0.a: query(...).yield_per(...) failed with 'DECLARE CURSOR is not
    supported' (DSQL has no cursors)."""
    ini = make_project(tmp_path, dsql_url, revisions=("c1",))
    (tmp_path / "migrations" / "versions" / "c4_streaming.py").write_text(STREAMING)
    up = run_cli("upgrade", "-c", str(ini))
    try:
        assert up.returncode == 0, up.stderr
        assert query(dsql_url, "SELECT count(*) FROM t8_users WHERE seen = 1") == [(50,)]
    finally:
        downgrade(ini)
