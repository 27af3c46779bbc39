"""The migrations commands on a scaffolded project, autogenerate included, and the demo."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg

from _support import cli

MODELS_V1 = '''
import sqlalchemy as sa

metadata = sa.MetaData()
sa.Table("t7cli_items", metadata,
         sa.Column("id", sa.BigInteger, sa.Identity(cache=65536), primary_key=True),
         sa.Column("name", sa.String(40), nullable=False),
         sa.Column("qty", sa.Integer))
'''

MODELS_V2 = '''
import sqlalchemy as sa

metadata = sa.MetaData()
sa.Table("t7cli_items", metadata,
         sa.Column("id", sa.BigInteger, sa.Identity(cache=65536), primary_key=True),
         sa.Column("name", sa.String(40), nullable=False),
         sa.Column("qty", sa.BigInteger),
         sa.Column("sku", sa.String(20)),
         sa.Index("ix_t7cli_items_sku", "sku", unique=True))
'''


def test_init_revision_upgrade_check_stamp(workdir: Path, dsql_url: str) -> None:
    url = ["--url", dsql_url]
    result = cli("init", "migrations")
    assert result.exit_code == 0, result.output
    assert (workdir / "alembic.ini").is_file()
    env = workdir / "migrations" / "env.py"
    assert "from dsql_migrate.alembic import context" in env.read_text()
    env.write_text(env.read_text().replace(
        "target_metadata = None", "from models import metadata as target_metadata"))
    (workdir / "models.py").write_text(MODELS_V1)

    result = cli("revision", "--autogenerate", "-m", "items", *url)
    assert result.exit_code == 0, result.output
    first = next((workdir / "migrations" / "versions").glob("*_items.py"))
    assert "op.create_table('t7cli_items'" in first.read_text()

    offline = cli("upgrade", "--sql")
    assert offline.exit_code == 0, offline.output
    assert "BEGIN;\nCREATE TABLE t7cli_items" in offline.output
    assert "INSERT INTO alembic_version" in offline.output

    dry = cli("upgrade", "--dry-run", *url)
    assert dry.exit_code == 0, dry.output
    assert "create table t7cli_items" in dry.output
    with psycopg.connect(dsql_url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('t7cli_items')").fetchone() == (None,)

    assert cli("upgrade", *url).exit_code == 0
    assert cli("check", *url).exit_code == 0
    with psycopg.connect(dsql_url, autocommit=True) as conn:
        conn.execute("INSERT INTO t7cli_items (name, qty) VALUES ('a', 1), ('b', 2)")

    (workdir / "models.py").write_text(MODELS_V2)
    sys.modules.pop("models", None)  # env.py imports it again
    drift = cli("check", *url)
    assert drift.exit_code == 1 and "error:" in drift.output
    assert "+ column t7cli_items.sku: in the models only" in drift.output, drift.output
    assert "~ t7cli_items.qty: type INTEGER in the database, BIGINT in the models" in drift.output
    assert "New upgrade operations detected" not in drift.output

    result = cli("revision", "--autogenerate", "-m", "sku", *url)
    assert result.exit_code == 0, result.output
    second = next((workdir / "migrations" / "versions").glob("*_sku.py")).read_text()
    # the type change makes DSQL recreate the table: the revision says so, with every change
    assert "with op.recreate_table('t7cli_items', reason='change type of qty')" in second
    assert "batch_op.alter_column('qty'" in second and "batch_op.add_column(" in second
    up = cli("upgrade", *url)  # a type change and a unique index: recreation, async build
    assert up.exit_code == 0, up.output
    check = cli("check", *url)
    assert check.exit_code == 0, check.output
    with psycopg.connect(dsql_url, autocommit=True) as conn:
        assert conn.execute("SELECT data_type FROM information_schema.columns WHERE "
                            "table_name = 't7cli_items' AND column_name = 'qty'"
                            ).fetchone() == ("bigint",)
        assert conn.execute("SELECT sum(qty) FROM t7cli_items").fetchone() == (3,)

    history = cli("history")
    assert "items" in history.output and "sku" in history.output
    current = cli("current", *url)
    assert "(head)" in current.output
    assert cli("stamp", "base", *url).exit_code == 0
    assert "(head)" not in cli("current", *url).output
    assert cli("stamp", "head", *url).exit_code == 0
    sys.modules.pop("models", None)
    down = cli("downgrade", "base", *url)
    assert down.exit_code == 0, down.output
    with psycopg.connect(dsql_url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('t7cli_items')").fetchone() == (None,)


def test_raw_sql_dsql_rejects_is_refused_before_anything_runs(workdir: Path,
                                                              dsql_url: str) -> None:
    assert cli("init", "migrations").exit_code == 0
    versions = workdir / "migrations" / "versions"
    (versions / "0001_bad.py").write_text(
        'revision = "b1"\ndown_revision = None\nfrom alembic import op\n\n'
        "def upgrade():\n"
        '    op.execute("CREATE TABLE t7bad (id BIGINT PRIMARY KEY)")\n'
        '    op.execute("CREATE INDEX ix_t7bad ON t7bad (id); TRUNCATE t7bad")\n\n'
        "def downgrade():\n    pass\n")
    result = cli("upgrade", "--url", dsql_url)
    assert result.exit_code == 1
    assert "0001_bad.py:7 in upgrade(): op.execute #2:1:1" in result.output
    assert "TRUNCATE" in result.output or "truncate" in result.output
    with psycopg.connect(dsql_url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('t7bad')").fetchone() == (None,)


def test_demo_end_to_end(tmp_path: Path) -> None:
    project = tmp_path / "demo"
    local = project / ".dsql-migrate" / "local"
    try:
        run = subprocess.run([sys.executable, "-m", "dsql_migrate", "demo", str(project)],
                             capture_output=True, text=True, timeout=300, check=False,
                             cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        for expected in ("alembic upgrade <base> -> 0001", "(backfill) running",
                         "(async_index) running", "(copy) running", "passed",
                         "alembic upgrade 0003 -> 0004"):
            assert expected in run.stderr
        assert "copy orders into orders__new" in run.stdout and "done" in run.stdout
        again = subprocess.run([sys.executable, "-m", "dsql_migrate", "current"],
                               capture_output=True, text=True, timeout=120, check=False,
                               cwd=project)
        assert "0004 (head)" in again.stdout, again.stderr
    finally:
        stopped = subprocess.run(
            [sys.executable, "-m", "dsql_migrate", "local", "destroy", "--yes", "--dir",
             str(local)], capture_output=True, text=True, timeout=120, check=False)
        assert stopped.returncode == 0, stopped.stderr


def test_failed_revision_resumes_after_the_data_is_fixed(workdir: Path, dsql_url: str) -> None:
    assert cli("init", "migrations").exit_code == 0
    versions = workdir / "migrations" / "versions"
    (versions / "0001_dup.py").write_text(
        'revision = "d1"\ndown_revision = None\nimport sqlalchemy as sa\n'
        "from alembic import op\n\n"
        "def upgrade():\n"
        '    op.add_column("t7dup", sa.Column("flag", sa.Integer))\n'
        '    op.create_index("ux_t7dup_a", "t7dup", ["a"], unique=True)\n\n'
        "def downgrade():\n"
        '    op.drop_index("ux_t7dup_a")\n    op.drop_column("t7dup", "flag")\n')
    with psycopg.connect(dsql_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t7dup (id BIGINT PRIMARY KEY, a INTEGER)")
        conn.execute("INSERT INTO t7dup VALUES (1, 5), (2, 5)")
    try:
        failed = cli("upgrade", "--url", dsql_url)
        assert failed.exit_code == 1
        assert "nothing is rolled back on DSQL" in failed.output
        with psycopg.connect(dsql_url, autocommit=True) as conn:
            conn.execute("DELETE FROM t7dup WHERE id = 2")
        resumed = cli("upgrade", "--url", dsql_url)
        assert resumed.exit_code == 0, resumed.output
        assert "resuming the stored plan" in resumed.output
        assert "already done" in resumed.output  # the ADD COLUMN is not run again
        assert cli("downgrade", "base", "--url", dsql_url).exit_code == 0
    finally:
        with psycopg.connect(dsql_url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS t7dup")


MODELS_PK = '''
import sqlalchemy as sa

metadata = sa.MetaData()
sa.Table("t7pk_runs", metadata,
         sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
         sa.Column("attempt", sa.BigInteger, primary_key=True, autoincrement=False),
         sa.Column("note", sa.Text))
'''


def test_check_reports_a_primary_key_difference_and_autogenerate_applies_it(
        workdir: Path, dsql_url: str) -> None:
    """Issue 13: check reported no primary-key differences; op.create_primary_key was
    ignored."""
    url = ["--url", dsql_url]
    assert cli("init", "migrations").exit_code == 0
    env = workdir / "migrations" / "env.py"
    env.write_text(env.read_text().replace(
        "target_metadata = None", "from models import metadata as target_metadata"))
    (workdir / "models.py").write_text(MODELS_PK)
    sys.modules.pop("models", None)
    with psycopg.connect(dsql_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t7pk_runs (id BIGINT PRIMARY KEY, attempt BIGINT NOT NULL, "
                     "note TEXT)")
        conn.execute("INSERT INTO t7pk_runs VALUES (1, 1, 'a'), (2, 1, 'b')")
    try:
        assert cli("stamp", "head", *url).exit_code == 0
        drift = cli("check", *url)
        assert drift.exit_code == 1, drift.output
        assert "- primary key t7pk_runs_pkey on t7pk_runs (id): in the database only" in (
            drift.output)
        assert "+ primary key (unnamed) on t7pk_runs (id, attempt): in the models only" in (
            drift.output)
        assert "object at 0x" not in drift.output

        made = cli("revision", "--autogenerate", "-m", "runs_key", *url)
        assert made.exit_code == 0, made.output
        text = next((workdir / "migrations" / "versions").glob("*_runs_key.py")).read_text()
        assert "op.create_primary_key" in text
        up = cli("upgrade", *url)
        assert up.exit_code == 0, up.output
        with psycopg.connect(dsql_url, autocommit=True) as conn:
            keys = conn.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = "
                "i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = "
                "'t7pk_runs'::regclass AND i.indisprimary ORDER BY a.attname").fetchall()
            assert keys == [("attempt",), ("id",)]
            assert conn.execute("SELECT count(*) FROM t7pk_runs").fetchone() == (2,)
        sys.modules.pop("models", None)
        clean = cli("check", *url)
        assert clean.exit_code == 0, clean.output
    finally:
        with psycopg.connect(dsql_url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS t7pk_runs")
            conn.execute("DROP TABLE IF EXISTS alembic_version")
