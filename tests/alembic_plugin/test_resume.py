"""A revision killed in the middle resumes, in a plain project and in the demo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from alembic_project import make_project


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dsql_migrate", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=300,
                          check=False)


def version(url: str) -> str | None:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return None if row is None else str(row[0])


def test_killed_revision_resumes(tmp_path: Path, dsql_url: str) -> None:
    ini = make_project(tmp_path, dsql_url)
    # killed while waiting for the first async index of r2, after r2's ADD COLUMNs committed
    killed = run_cli("upgrade", "-c", str(ini), env={"DSQL_MIGRATE_CRASH_AT": "async.wait:1"})
    assert killed.returncode == -9, killed.stderr
    assert "crash point async.wait" in killed.stderr
    assert version(dsql_url) == "r1"  # r2 is half done, and not recorded

    resumed = run_cli("upgrade", "-c", str(ini))
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming the stored plan of alembic upgrade r1 -> r2" in resumed.stderr
    assert "step 1 already done" in resumed.stderr  # the ADD COLUMN is not run twice
    assert version(dsql_url) == "r4"
    with psycopg.connect(dsql_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM t7_users WHERE status IS NOT NULL"
                            ).fetchone() == (40,)

    down = run_cli("downgrade", "base", "-c", str(ini))
    assert down.returncode == 0, down.stderr
    assert version(dsql_url) is None


def check_demo_data(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        tiers = dict(conn.execute("SELECT tier, count(*) FROM customers GROUP BY tier").fetchall())
        assert tiers == {"gold": 300, "standard": 2700}
        assert conn.execute("SELECT count(*), sum(total_cents), "
                            "pg_typeof(min(total_cents))::text FROM orders").fetchone() == (
            4000, sum((g * 37) % 10000 for g in range(1, 4001)), "bigint")


# crash points count per revision (one runner per revision's plan)
@pytest.mark.parametrize("first_kill, second_kill", [
    ("batch.after_commit:3", None),  # 0002's backfill, 500 rows per batch
    ("async.wait:1", "batch.after_commit:2"),  # 0003's index build; 0004's copy
    # 0004's third DDL: orders is renamed to orders__old, orders__new not yet put in place
    ("ddl.after_execute:3", None),
])
def test_demo_killed_mid_revision_resumes_without_loss(first_kill: str, second_kill: str | None,
                                                       tmp_path: Path, dsql_url: str) -> None:
    project = tmp_path / "demo"
    ini = str(project / "alembic.ini")
    killed = run_cli("demo", str(project), "--url", dsql_url,
                     env={"DSQL_MIGRATE_CRASH_AT": first_kill})
    try:
        assert killed.returncode == -9, killed.stderr
        kills = [second_kill] if second_kill else []
        for kill in [*kills, None]:
            resumed = run_cli("upgrade", "-c", ini, "--url", dsql_url,
                              env={"DSQL_MIGRATE_CRASH_AT": kill} if kill else None)
            assert "resuming the stored plan" in resumed.stderr
            assert resumed.returncode == (-9 if kill else 0), resumed.stderr
        assert version(dsql_url) == "0004"
        check_demo_data(dsql_url)
    finally:
        down = run_cli("downgrade", "base", "-c", ini, "--url", dsql_url)
        assert down.returncode == 0, down.stderr
