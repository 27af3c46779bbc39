"""``op.batch_alter_table``: the batch's ops recorded, planned and run like any other op."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic import command, op
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.operations import ops
from alembic_project import make_project
from sqlalchemy.dialects import postgresql

from dsql_migrate.alembic.batch import BatchNotSupported
from dsql_migrate.alembic.compile import record


def recorded(fn: Any) -> list[ops.MigrateOperation]:
    mc = MigrationContext.configure(dialect=postgresql.dialect(), opts={"as_sql": True})
    return record(fn, mc)


def test_batch_ops_are_recorded_not_run(capsys: pytest.CaptureFixture[str]) -> None:
    def upgrade() -> None:
        op.add_column("u", sa.Column("z", sa.Integer))
        with op.batch_alter_table("t", schema="app") as batch_op:
            batch_op.add_column(sa.Column("x", sa.Integer))
            batch_op.alter_column("a", nullable=True, insert_after="x")
            batch_op.create_index("ix_t_x", ["x"])
            batch_op.drop_column("b")
        op.drop_column("u", "z")

    out = recorded(upgrade)
    assert [(type(o).__name__, getattr(o, "table_name", None), getattr(o, "schema", None))
            for o in out] == [
        ("AddColumnOp", "u", None), ("AddColumnOp", "t", "app"), ("AlterColumnOp", "t", "app"),
        ("CreateIndexOp", "t", "app"), ("DropColumnOp", "t", "app"), ("DropColumnOp", "u", None)]
    assert "insert_after" not in out[2].kw  # type: ignore[attr-defined]
    assert capsys.readouterr().out == ""  # Alembic's flush would have printed the SQL here


def test_recreate_always_is_refused_with_the_revision_line() -> None:
    def upgrade() -> None:
        with op.batch_alter_table("t", recreate="always") as batch_op:
            batch_op.add_column(sa.Column("x", sa.Integer))

    with pytest.raises(BatchNotSupported) as refused:
        recorded(upgrade)
    line = upgrade.__code__.co_firstlineno + 1
    assert refused.value.message.startswith(f"test_batch.py:{line}: op.batch_alter_table('t', "
                                            "recreate='always') is not supported")
    assert refused.value.hint is not None and "recreate='auto'" in refused.value.hint


def test_column_placement_is_refused() -> None:
    def upgrade() -> None:
        with op.batch_alter_table("t") as batch_op:
            batch_op.add_column(sa.Column("x", sa.Integer), insert_before="a")

    with pytest.raises(BatchNotSupported, match="insert_before/insert_after"):
        recorded(upgrade)


def columns(url: str) -> dict[str, tuple[str, bool]]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT column_name, data_type, is_nullable = 'YES' FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = 'bt_items'").fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def scalar(url: str, query: str) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    return None if row is None else row[0]


@pytest.mark.parametrize("profile", ["current", "classic"])
def test_batch_revision_upgrades_and_downgrades(profile: str, tmp_path: Path,
                                                request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("dsql_url" if profile == "current" else "classic_url")
    cfg = Config(str(make_project(tmp_path, url, profile=profile, revisions=("b1", "b2"))))
    command.upgrade(cfg, "b1")
    try:
        command.upgrade(cfg, "head")
        assert scalar(url, "SELECT version_num FROM alembic_version") == "b2"
        cols = columns(url)
        assert set(cols) == {"id", "name", "price", "label", "status"}
        assert cols["price"][0] == "bigint"
        assert cols["name"][1] is False or profile == "current"  # current: a validated CHECK
        assert scalar(url, "SELECT count(*) FROM bt_items WHERE status = 'new'") == 1200
        assert scalar(url, "SELECT sum(price) FROM bt_items") == sum(
            i * 100 for i in range(1, 1201))
        assert scalar(url, "SELECT count(*) FROM pg_index i JOIN pg_class c ON "
                           "c.oid = i.indexrelid WHERE c.relname IN ('ix_bt_items_status', "
                           "'uq_bt_items_label') AND i.indisvalid") == 2
        with psycopg.connect(url, autocommit=True) as conn, pytest.raises(psycopg.Error):
            conn.execute("INSERT INTO bt_items (id, name, label) VALUES (5000, 'n', 'L1')")
        if profile == "current":
            with psycopg.connect(url, autocommit=True) as conn, pytest.raises(psycopg.Error):
                conn.execute("INSERT INTO bt_items (id, name, price) VALUES (5001, 'n', -1)")

        command.downgrade(cfg, "b1")
        cols = columns(url)
        assert set(cols) == {"id", "name", "price", "old_label", "legacy"}
        assert cols["price"][0] == "integer" and cols["name"][1] is True
        assert scalar(url, "SELECT count(*) FROM bt_items") == 1200
    finally:
        command.downgrade(cfg, "base")
    assert scalar(url, "SELECT to_regclass('bt_items')") is None


def test_recreate_always_stops_the_upgrade_before_anything_runs(tmp_path: Path,
                                                                dsql_url: str) -> None:
    ini = make_project(tmp_path, dsql_url, revisions=("b1", "b2"))
    revision = next((tmp_path / "migrations" / "versions").glob("b2_*.py"))
    text = revision.read_text()
    revision.write_text(text.replace('op.batch_alter_table("bt_items")',
                                     'op.batch_alter_table("bt_items", recreate="always")', 1))
    line = text.splitlines().index('    with op.batch_alter_table("bt_items") as batch_op:') + 1

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "dsql_migrate", *args, "-c", str(ini)],
                              capture_output=True, text=True, env=dict(os.environ),
                              timeout=300, check=False)

    try:
        result = run("upgrade")
        assert result.returncode == 1, result.stderr
        assert f"{revision.name}:{line}: op.batch_alter_table('bt_items', recreate='always') " \
               "is not supported" in result.stderr
        assert "Traceback" not in result.stderr
        assert scalar(dsql_url, "SELECT version_num FROM alembic_version") == "b1"
        assert "status" not in columns(dsql_url)  # nothing of b2 ran
    finally:
        down = run("downgrade", "base")
        assert down.returncode == 0, down.stderr
