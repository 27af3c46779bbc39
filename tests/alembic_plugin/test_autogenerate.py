"""DSQL-aware autogenerate: an index whose async build failed is built again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from click.testing import CliRunner

from dsql_migrate.cli import main

MODELS = '''
import sqlalchemy as sa

metadata = sa.MetaData()
sa.Table("t7ag", metadata,
         sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
         sa.Column("a", sa.Integer),
         sa.Index("ix_t7ag_a", "a", unique=True))
'''


def test_invalid_async_index_is_rebuilt(workdir: Path, dsql_url: str,
                                        raw_conn: psycopg.Connection[Any]) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["init", "migrations"]).exit_code == 0
    env = workdir / "migrations" / "env.py"
    env.write_text(env.read_text().replace(
        "target_metadata = None", "from models_ag import metadata as target_metadata"))
    (workdir / "models_ag.py").write_text(MODELS)
    with psycopg.connect(dsql_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t7ag (id BIGINT PRIMARY KEY, a INTEGER)")
        conn.execute("INSERT INTO t7ag VALUES (1, 7), (2, 7)")
        # a unique build over duplicates fails and leaves the index behind, not valid
        row = conn.execute("CREATE UNIQUE INDEX ASYNC ix_t7ag_a ON t7ag (a)").fetchone()
        assert row is not None
        conn.execute("CALL sys.wait_for_job(%s)", (str(row[0]),))
        conn.execute("DELETE FROM t7ag WHERE id = 2")
    assert raw_conn.execute("SELECT indisvalid FROM pg_index WHERE "
                            "indexrelid = 'ix_t7ag_a'::regclass").fetchone() == (False,)
    try:
        drift = runner.invoke(main, ["check", "--url", dsql_url])
        assert drift.exit_code == 1, drift.output
        made = runner.invoke(main, ["revision", "--autogenerate", "-m", "fix", "--url", dsql_url])
        assert made.exit_code == 0, made.output
        text = next((workdir / "migrations" / "versions").glob("*_fix.py")).read_text()
        assert "op.drop_index('ix_t7ag_a'" in text and "op.create_index_async('ix_t7ag_a'" in text
        up = runner.invoke(main, ["upgrade", "--url", dsql_url])
        if up.exit_code == 1 and "cancelled by DROP INDEX" in up.output:
            # the emulator cancels builds of a dropped index's name a moment after the DROP
            # returns, so it can hit the new build; the failed revision resumes
            up = runner.invoke(main, ["upgrade", "--url", dsql_url])
            assert "resuming the stored plan" in up.output
        assert up.exit_code == 0, up.output
        assert raw_conn.execute("SELECT indisvalid FROM pg_index WHERE "
                                "indexrelid = 'ix_t7ag_a'::regclass").fetchone() == (True,)
        assert runner.invoke(main, ["check", "--url", dsql_url]).exit_code == 0
    finally:
        with psycopg.connect(dsql_url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS t7ag")
            conn.execute("DELETE FROM alembic_version")
