"""An Alembic revision's plan carries a premise and a promise like any plan (DESIGN.md §3.2a):
killed part-way, then resumed after someone added a column to its table, it refuses (exit 5)
and shows the column instead of recreating the table without it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic_project import make_project

pytestmark = pytest.mark.integration

CREATE = '''"""create {t}

Revision ID: g1
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "g1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("{t}", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("v", sa.Integer))
    op.execute("INSERT INTO {t} SELECT g, g FROM generate_series(1, 300) g")


def downgrade() -> None:
    op.drop_table("{t}")
'''

WIDEN = '''"""widen {t}.v

Revision ID: g2
Revises: g1
"""
import sqlalchemy as sa
from alembic import op

revision = "g2"
down_revision = "g1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("{t}", "v", type_=sa.BigInteger, existing_type=sa.Integer)


def downgrade() -> None:
    op.alter_column("{t}", "v", type_=sa.Integer, existing_type=sa.BigInteger)
'''


@pytest.fixture
def project(tmp_path: Path, dsql_url: str, raw_url: str) -> Iterator[tuple[Path, str, str]]:
    """(alembic.ini, table, state schema): revisions g1 (create + rows), g2 (int -> bigint)."""
    table = f"g_{uuid.uuid4().hex[:8]}"
    schema = f"dm_state_{uuid.uuid4().hex[:8]}"
    ini = make_project(tmp_path, dsql_url, revisions=())
    versions = tmp_path / "migrations" / "versions"
    (versions / "g1_create.py").write_text(CREATE.format(t=table))
    (versions / "g2_widen.py").write_text(WIDEN.format(t=table))
    (tmp_path / "dsql-migrate.toml").write_text(f'[runner]\nstate_schema = "{schema}"\n')
    yield ini, table, schema
    with psycopg.connect(raw_url, autocommit=True) as conn:
        for suffix in ("", "__new", "__old"):
            conn.execute(f'DROP TABLE IF EXISTS "{table}{suffix}" CASCADE')
        conn.execute("DELETE FROM alembic_version WHERE version_num IN ('g1', 'g2')")
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def upgrade(ini: Path, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSQL_MIGRATE_")}
    if crash_at:
        env["DSQL_MIGRATE_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-m", "dsql_migrate", "upgrade", "-c", str(ini)],
                          capture_output=True, text=True, env=env, cwd=ini.parent,
                          timeout=300, check=False)


def test_a_resumed_revision_refuses_drift(project: tuple[Path, str, str], raw_url: str) -> None:
    ini, table, _ = project
    # g2 recreates the table; killed after its copy's first batch committed
    killed = upgrade(ini, "batch.after_commit:1")
    assert killed.returncode == -9, killed.stderr

    with psycopg.connect(raw_url, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN important_zz text NOT NULL DEFAULT 'x'")
        conn.execute(f"ALTER TABLE {table} ALTER COLUMN important_zz DROP DEFAULT")

    resumed = upgrade(ini)
    assert resumed.returncode == 5, resumed.stderr
    assert "resuming the stored plan" in resumed.stderr
    assert "+ column important_zz text NOT NULL (not in the plan's source)" in resumed.stderr
    assert "Traceback" not in resumed.stderr
    with psycopg.connect(raw_url, autocommit=True) as conn:
        assert conn.execute(f"SELECT count(important_zz) FROM {table}").fetchone() == (300,)
        assert conn.execute(f"SELECT to_regclass('{table}__old')").fetchone() == (None,)


def test_a_revision_s_plan_keeps_its_promise(project: tuple[Path, str, str],
                                            raw_url: str) -> None:
    ini, table, _ = project
    done = upgrade(ini)
    assert done.returncode == 0, done.stderr
    with psycopg.connect(raw_url, autocommit=True) as conn:
        assert conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
            f"'{table}'::regclass AND attname = 'v'").fetchone() == ("bigint",)
