"""Issue 13, found by the real-world harness (realworld/): each on a minimal revision.

- an autoincrement key in ``op.create_table`` (SERIAL on PostgreSQL) gets ids on insert;
- ``op.get_context().autocommit_block()`` (Alembic's idiom around CREATE INDEX CONCURRENTLY)
  is recorded transparently, and the CONCURRENTLY index is built as an ASYNC index and waited
  for (prefect);
- ``op.drop_index(..., if_exists=True)`` of an index that is not there drops nothing (airflow
  0008);
- ``op.execute`` of a ``DO`` block is refused before anything of the revision runs (airflow
  0027).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
from alembic_project import make_project

HEAD = '''from alembic import op
import sqlalchemy as sa

revision = "{rev}"
down_revision = {down!r}
branch_labels = None
depends_on = None

'''

REVISIONS = {
    "hf1": '''
def upgrade():
    op.create_table("hf_items", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("name", sa.Text))


def downgrade():
    op.drop_table("hf_items")
''',
    "hf2": '''
def upgrade():
    op.execute("INSERT INTO hf_items (name) VALUES ('a'), (NULL)")
    with op.get_context().autocommit_block():
        op.execute("CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_hf_items_name "
                   "ON hf_items (name)")
        op.get_bind().execute(sa.text("UPDATE hf_items SET name = 'b' WHERE name IS NULL"))


def downgrade():
    with op.get_context().autocommit_block():
        op.drop_index("ix_hf_items_name", table_name="hf_items")
''',
    "hf3": '''
def upgrade():
    op.drop_index("ix_hf_not_there", table_name="hf_items", if_exists=True)
    op.drop_index("ix_hf_items_name", table_name="hf_items", if_exists=True)
    op.drop_table("hf_not_there", if_exists=True)


def downgrade():
    op.create_index("ix_hf_items_name", "hf_items", ["name"])
''',
    "hf4": '''
def upgrade():
    op.create_table("hf_other", sa.Column("id", sa.BigInteger, primary_key=True,
                                          autoincrement=False))
    op.execute("DO $$ BEGIN PERFORM 1; END $$")


def downgrade():
    op.drop_table("hf_other")
''',
}


def project(root: Path, url: str) -> Path:
    ini = make_project(root, url, revisions=())
    down = None
    for rev, body in REVISIONS.items():
        text = HEAD.format(rev=rev, down=down) + body
        (root / "migrations" / "versions" / f"{rev}.py").write_text(text)
        down = rev
    return ini


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dsql_migrate", *args], capture_output=True,
                          text=True, env={**os.environ}, timeout=300, check=False)


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def test_harness_findings_each_revision(tmp_path: Path, dsql_url: str) -> None:
    ini = project(tmp_path, dsql_url)
    try:
        # A: the autoincrement key hands out ids, and the plan said what it did
        up = run_cli("upgrade", "hf1", "-c", str(ini))
        assert up.returncode == 0, up.stderr
        assert "hf_items.id: autoincrement key" in up.stderr
        assert "INTEGER widened to BIGINT" in up.stderr
        assert query(dsql_url, "SELECT data_type, is_identity FROM information_schema.columns "
                               "WHERE table_name = 'hf_items' AND column_name = 'id'") == [
            ("bigint", "YES")]

        # K: autocommit_block is transparent; CONCURRENTLY is built ASYNC and waited for
        up = run_cli("upgrade", "hf2", "-c", str(ini))
        assert up.returncode == 0, up.stderr
        assert "CREATE INDEX ASYNC" in up.stderr
        assert query(dsql_url, "SELECT id, name FROM hf_items ORDER BY id") == [
            (1, "a"), (2, "b")]
        assert query(dsql_url, "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON "
                               "c.oid = i.indexrelid WHERE c.relname = 'ix_hf_items_name'") == [
            (True,)]

        # O: if_exists=True drops what is there and nothing else
        up = run_cli("upgrade", "hf3", "-c", str(ini))
        assert up.returncode == 0, up.stderr
        assert "ix_hf_not_there" in up.stderr  # the plan says it had nothing to drop
        assert query(dsql_url, "SELECT to_regclass('ix_hf_items_name')") == [(None,)]

        # O: a DO block is refused before anything of its revision runs
        up = run_cli("upgrade", "hf4", "-c", str(ini))
        assert up.returncode == 1, up.stderr  # ExitCode.FAILED, as every refused revision
        assert "unsupported_do" in up.stderr and "nothing of it was run" in up.stderr
        assert "Traceback" not in up.stderr
        assert query(dsql_url, "SELECT to_regclass('hf_other')") == [(None,)]
        assert query(dsql_url, "SELECT version_num FROM alembic_version") == [("hf3",)]
    finally:
        down = run_cli("downgrade", "base", "-c", str(ini))
        assert down.returncode == 0, down.stderr
    assert query(dsql_url, "SELECT to_regclass('hf_items')") == [(None,)]


CYCLE = '''
def upgrade():
    op.create_table("hf_pool", sa.Column("id", sa.BigInteger, primary_key=True,
                                         autoincrement=False),
                    sa.Column("default_queue_id", sa.BigInteger))
    op.create_table("hf_queue", sa.Column("id", sa.BigInteger, primary_key=True,
                                          autoincrement=False),
                    sa.Column("pool_id", sa.BigInteger, nullable=False),
                    sa.ForeignKeyConstraint(["pool_id"], ["hf_pool.id"],
                                            name="fk_hf_queue_pool"))
    with op.batch_alter_table("hf_pool") as batch_op:
        batch_op.create_foreign_key("fk_hf_pool_default_queue", "hf_queue",
                                    ["default_queue_id"], ["id"])


def downgrade():
    op.drop_constraint("fk_hf_pool_default_queue", "hf_pool", type_="foreignkey")
    op.drop_table("hf_queue")
    op.drop_table("hf_pool")
'''


def test_two_new_tables_referencing_each_other(tmp_path: Path, dsql_url: str) -> None:
    """prefect f7587d6c5776: a table created by the revision gets, later in it, a foreign key
    to a table the revision creates after it; the key is added once that table exists."""
    ini = make_project(tmp_path, dsql_url, revisions=())
    (tmp_path / "migrations" / "versions" / "hfc.py").write_text(
        HEAD.format(rev="hfc", down=None) + CYCLE)
    try:
        up = run_cli("upgrade", "-c", str(ini))
        assert up.returncode == 0, up.stderr
        keys = query(dsql_url, "SELECT conname, convalidated FROM pg_constraint WHERE contype = "
                               "'f' AND conrelid::regclass::text LIKE 'hf_%' ORDER BY 1")
        assert keys == [("fk_hf_pool_default_queue", True), ("fk_hf_queue_pool", True)]
    finally:
        down = run_cli("downgrade", "base", "-c", str(ini))
        assert down.returncode == 0, down.stderr
