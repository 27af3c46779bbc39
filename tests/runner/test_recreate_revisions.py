"""Recreations in real revisions (issue 13, found by the real-world harness), each on a
minimal revision run through the Alembic plugin: the plan's premise and promise must be exact,
so that the drift guard and the end-state check pass on a faithful run.

- prefect d38c5e6a9115: two tables renamed, both recreated (their primary keys change), a
  foreign key between them dropped and created again under a new name.
- airflow 0003: a column added, filled by the revision's own ``UPDATE``, then made NOT NULL
  (which recreates the table).
"""

from __future__ import annotations

import sys
from pathlib import Path

import psycopg
import pytest

# the Alembic project builder of the plugin's tests
sys.path.insert(0, str(Path(__file__).parents[1] / "alembic_plugin"))
from alembic_project import make_project
from test_harness_findings import HEAD, query, run_cli

pytestmark = pytest.mark.integration


def project(root: Path, url: str, revisions: dict[str, str]) -> Path:
    ini = make_project(root, url, revisions=())
    down = None
    for rev, body in revisions.items():
        text = HEAD.format(rev=rev, down=down) + body
        (root / "migrations" / "versions" / f"{rev}.py").write_text(text)
        down = rev
    return ini


def execute(url: str, sql: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def constraints(url: str, table: str) -> list[tuple[object, ...]]:
    return query(url, "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE "
                      f"conrelid = to_regclass('{table}') ORDER BY conname")


PREFECT = {
    "pf1": '''
def upgrade():
    op.create_table(
        "block_spec", sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("name", sa.String, nullable=False), sa.Column("version", sa.String),
        sa.Column("type", sa.String), sa.Column("updated", sa.DateTime),
        sa.PrimaryKeyConstraint("id", name="pk_block_spec"))
    op.create_index("ix_block_spec__type", "block_spec", ["type"])
    op.create_index("ix_block_spec__updated", "block_spec", ["updated"])
    op.create_index("uq_block_spec__name_version", "block_spec", ["name", "version"],
                    unique=True)
    op.create_table(
        "block", sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("block_spec_id", sa.Uuid, nullable=False),
        sa.Column("is_default_storage_block", sa.Boolean, server_default="0"),
        sa.Column("updated", sa.DateTime),
        sa.ForeignKeyConstraint(["block_spec_id"], ["block_spec.id"],
                                name="fk_block__block_spec_id__block_spec", ondelete="cascade"),
        sa.PrimaryKeyConstraint("id", name="pk_block_data"))
    op.create_index("ix_block__is_default_storage_block", "block", ["is_default_storage_block"])
    op.create_index("ix_block__name", "block", ["name"])
    op.create_index("ix_block__updated", "block", ["updated"])
    op.create_index("uq_block__spec_id_name", "block", ["block_spec_id", "name"], unique=True)
    op.execute("INSERT INTO block_spec (id, name, version) VALUES "
               "('00000000-0000-0000-0000-000000000001', 's', '1')")
    op.execute("INSERT INTO block (id, name, block_spec_id) VALUES "
               "('00000000-0000-0000-0000-000000000002', 'b', "
               "'00000000-0000-0000-0000-000000000001')")


def downgrade():
    op.drop_table("block")
    op.drop_table("block_spec")
''',
    # the upgrade of prefect's d38c5e6a9115 (batch_op.f() names written out)
    "pf2": '''
def upgrade():
    op.rename_table("block_spec", "block_schema")
    op.rename_table("block", "block_document")

    with op.batch_alter_table("block_document", schema=None) as batch_op:
        batch_op.drop_index("ix_block__is_default_storage_block")
        batch_op.drop_index("ix_block__name")
        batch_op.drop_index("ix_block__updated")
        batch_op.drop_index("uq_block__spec_id_name")
        batch_op.alter_column("block_spec_id", new_column_name="block_schema_id")
        batch_op.alter_column("is_default_storage_block",
                              new_column_name="is_default_storage_block_document")
        batch_op.drop_constraint("fk_block__block_spec_id__block_spec")
        batch_op.drop_constraint("pk_block_data")

    with op.batch_alter_table("block_document", schema=None) as batch_op:
        batch_op.create_index("ix_block_document__is_default_storage_block_document",
                              ["is_default_storage_block_document"], unique=False)
        batch_op.create_index("ix_block_document__name", ["name"], unique=False)
        batch_op.create_index("ix_block_document__updated", ["updated"], unique=False)
        batch_op.create_index("uq_block__schema_id_name", ["block_schema_id", "name"],
                              unique=True)

    with op.batch_alter_table("block_schema", schema=None) as batch_op:
        batch_op.drop_index("ix_block_spec__type")
        batch_op.drop_index("ix_block_spec__updated")
        batch_op.drop_index("uq_block_spec__name_version")
        batch_op.create_index("ix_block_schema__type", ["type"], unique=False)
        batch_op.create_index("ix_block_schema__updated", ["updated"], unique=False)
        batch_op.create_index("uq_block_schema__name_version", ["name", "version"],
                              unique=True)
        batch_op.drop_constraint("pk_block_spec")
        batch_op.create_primary_key("pk_block_schema", ["id"])

    with op.batch_alter_table("block_document", schema=None) as batch_op:
        batch_op.create_primary_key("pk_block_document", ["id"])
        batch_op.create_foreign_key("fk_block__block_schema_id__block_schema", "block_schema",
                                    ["block_schema_id"], ["id"], ondelete="cascade")


def downgrade():
    raise NotImplementedError
''',
}


def test_prefect_renamed_tables_recreated_with_a_key_between_them(tmp_path: Path, raw_url: str,
                                                                  dsql_url: str) -> None:
    ini = project(tmp_path, dsql_url, PREFECT)
    try:
        up = run_cli("upgrade", "pf1", "-c", str(ini))
        assert up.returncode == 0, up.stderr
        up = run_cli("upgrade", "pf2", "-c", str(ini))
        assert up.returncode == 0, up.stderr
        assert "end state as promised" in up.stderr
        assert constraints(dsql_url, "block_document") == [
            ("fk_block__block_schema_id__block_schema",
             "FOREIGN KEY (block_schema_id) REFERENCES block_schema(id) ON DELETE CASCADE"),
            ("pk_block_document", "PRIMARY KEY (id)")]
        assert constraints(dsql_url, "block_schema") == [("pk_block_schema", "PRIMARY KEY (id)")]
        assert query(dsql_url, "SELECT name, block_schema_id::text FROM block_document") == [
            ("b", "00000000-0000-0000-0000-000000000001")]
        assert query(dsql_url, "SELECT count(*) FROM pg_class WHERE relname LIKE '%\\_\\_old' "
                               "OR relname LIKE '%\\_\\_new'") == [(0,)]
    finally:
        for table in ("block_document", "block_schema", "block", "block_spec",
                      "alembic_version"):
            execute(raw_url, f"DROP TABLE IF EXISTS {table} CASCADE")


AIRFLOW_0003 = {
    "af1": '''
def upgrade():
    op.create_table("af_pool", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("pool", sa.String(256)))
    op.execute("INSERT INTO af_pool (pool) VALUES ('default_pool')")


def downgrade():
    op.drop_table("af_pool")
''',
    # the upgrade of airflow's 0003_2_7_0_add_include_deferred_column_to_pool
    "af2": '''
def upgrade():
    with op.batch_alter_table("af_pool") as batch_op:
        batch_op.add_column(sa.Column("include_deferred", sa.Boolean))
    false = sa.false().compile(op.get_bind())
    op.execute(sa.text(f"UPDATE af_pool SET include_deferred = {false}"))
    with op.batch_alter_table("af_pool") as batch_op:
        batch_op.alter_column("include_deferred", existing_type=sa.Boolean, nullable=False)


def downgrade():
    raise NotImplementedError
''',
}


def test_airflow_column_filled_by_the_revision_then_not_null(tmp_path: Path, raw_url: str,
                                                           dsql_url: str) -> None:
    ini = project(tmp_path, dsql_url, AIRFLOW_0003)
    try:
        up = run_cli("upgrade", "af1", "-c", str(ini))
        assert up.returncode == 0, up.stderr
        up = run_cli("upgrade", "af2", "-c", str(ini))
        assert up.returncode == 0, up.stderr
        assert "end state as promised" in up.stderr
        assert query(dsql_url, "SELECT pool, include_deferred FROM af_pool") == [
            ("default_pool", False)]
        assert query(dsql_url, "SELECT is_nullable FROM information_schema.columns WHERE "
                               "table_name = 'af_pool' AND column_name = 'include_deferred'"
                     ) == [("NO",)]
    finally:
        for table in ("af_pool", "af_pool__old", "af_pool__new", "alembic_version"):
            execute(raw_url, f"DROP TABLE IF EXISTS {table} CASCADE")
