"""Issue 13, airflow 0041 (rename dataset as asset), on a minimal revision: tables referenced
by foreign keys are renamed, and later in the same revision a table that refers to a renamed
one is rebuilt (a new primary key, NOT NULL) and gets a foreign key to the new name. PostgreSQL
keeps a foreign key pointing at a renamed table; a key dropped by the revision's own
``op.execute("ALTER TABLE ... DROP CONSTRAINT IF EXISTS ...")`` stays dropped."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import op
from alembic.operations import ops
from alembic_project import make_project
from test_compile import recorded
from test_harness_findings import HEAD, query, run_cli

from dsql_migrate.alembic.model import desired_metadata

FIRST = '''
def upgrade():
    op.create_table("rr_parent", sa.Column("id", sa.BigInteger, primary_key=True,
                                           autoincrement=False))
    op.create_table("rr_child", sa.Column("id", sa.BigInteger, nullable=False,
                                          autoincrement=False),
                    sa.Column("parent_id", sa.BigInteger, nullable=False),
                    sa.PrimaryKeyConstraint("id", name="rr_child_pkey"),
                    sa.ForeignKeyConstraint(["parent_id"], ["rr_parent.id"],
                                            name="rr_child_parent_fkey"))
    op.create_table("rr_other", sa.Column("id", sa.BigInteger, primary_key=True,
                                          autoincrement=False),
                    sa.Column("parent_id", sa.BigInteger),
                    sa.ForeignKeyConstraint(["parent_id"], ["rr_parent.id"],
                                            name="rr_other_parent_fkey"))


def downgrade():
    op.drop_table("rr_other")
    op.drop_table("rr_child")
    op.drop_table("rr_parent")
'''

SECOND = '''
def upgrade():
    op.execute("ALTER TABLE rr_child DROP CONSTRAINT IF EXISTS rr_child_parent_fkey")
    op.rename_table("rr_child", "rr_kid")
    op.rename_table("rr_parent", "rr_mom")
    op.execute("ALTER TABLE rr_kid DROP CONSTRAINT IF EXISTS rr_child_pkey")
    with op.batch_alter_table("rr_kid") as batch_op:
        batch_op.create_primary_key("rr_kid_pkey", ["id", "parent_id"])
    with op.batch_alter_table("rr_kid") as batch_op:
        batch_op.create_foreign_key("rr_kid_mom_fkey", "rr_mom", ["parent_id"], ["id"],
                                    ondelete="CASCADE")
    op.alter_column("rr_other", "parent_id", existing_type=sa.BigInteger, nullable=False)


def downgrade():
    op.rename_table("rr_kid", "rr_child")
    op.rename_table("rr_mom", "rr_parent")
'''


def test_foreign_keys_follow_a_renamed_table_and_raw_drops_stay_dropped(
        tmp_path: Path, dsql_url: str) -> None:
    ini = make_project(tmp_path, dsql_url, revisions=())
    versions = tmp_path / "migrations" / "versions"
    (versions / "rr1.py").write_text(HEAD.format(rev="rr1", down=None) + FIRST)
    (versions / "rr2.py").write_text(HEAD.format(rev="rr2", down="rr1") + SECOND)
    try:
        up = run_cli("upgrade", "head", "-c", str(ini))
        assert up.returncode == 0, up.stderr
        constraints = query(dsql_url, """
            SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
            FROM pg_constraint WHERE conrelid::regclass::text LIKE 'rr_%%' AND contype IN
            ('p', 'f') ORDER BY 1, 2""".replace("%%", "%"))
        assert constraints == [
            ("rr_kid", "rr_kid_mom_fkey",
             "FOREIGN KEY (parent_id) REFERENCES rr_mom(id) ON DELETE CASCADE"),
            ("rr_kid", "rr_kid_pkey", "PRIMARY KEY (id, parent_id)"),
            ("rr_mom", "rr_parent_pkey", "PRIMARY KEY (id)"),
            ("rr_other", "rr_other_parent_fkey", "FOREIGN KEY (parent_id) REFERENCES rr_mom(id)"),
            ("rr_other", "rr_other_pkey", "PRIMARY KEY (id)"),
        ]
    finally:
        down = run_cli("downgrade", "base", "-c", str(ini))
        assert down.returncode == 0, down.stderr


ORDER_FIRST = '''
def upgrade():
    op.create_table("ro_pool", sa.Column("id", sa.BigInteger, primary_key=True,
                                         autoincrement=False),
                    sa.Column("slots", sa.Integer))
    op.execute("INSERT INTO ro_pool VALUES (1, NULL), (2, 5)")


def downgrade():
    op.drop_table("ro_pool")
'''

ORDER_SECOND = '''
def upgrade():
    op.execute("UPDATE ro_pool SET slots = 0 WHERE slots IS NULL")
    op.alter_column("ro_pool", "slots", existing_type=sa.Integer, nullable=False)


def downgrade():
    op.alter_column("ro_pool", "slots", existing_type=sa.Integer, nullable=True)
'''


def test_sql_of_the_revision_runs_before_the_ops_after_it(tmp_path: Path, dsql_url: str) -> None:
    """airflow 0003 / 0061: ``op.execute`` fills a column, then the column becomes NOT NULL (a
    recreation, which the planner would otherwise order before the UPDATE, and whose pre-check
    then finds the NULLs): the ops up to the SQL run as a part of their own first."""
    ini = make_project(tmp_path, dsql_url, revisions=())
    versions = tmp_path / "migrations" / "versions"
    (versions / "ro1.py").write_text(HEAD.format(rev="ro1", down=None) + ORDER_FIRST)
    (versions / "ro2.py").write_text(HEAD.format(rev="ro2", down="ro1") + ORDER_SECOND)
    try:
        up = run_cli("upgrade", "head", "-c", str(ini))
        assert up.returncode == 0, up.stderr
        assert "part 1" in up.stderr
        assert query(dsql_url, "SELECT id, slots FROM ro_pool ORDER BY id") == [(1, 0), (2, 5)]
        assert query(dsql_url, "SELECT is_nullable FROM information_schema.columns WHERE "
                               "table_name = 'ro_pool' AND column_name = 'slots'") == [("NO",)]
    finally:
        down = run_cli("downgrade", "base", "-c", str(ini))
        assert down.returncode == 0, down.stderr


def test_drop_constraint_sql_is_recorded_as_the_op_that_sends_it() -> None:
    def upgrade() -> None:
        op.execute("ALTER TABLE a DROP CONSTRAINT IF EXISTS a_pkey, DROP CONSTRAINT a_b_fkey")
        op.execute("ALTER TABLE a DROP CONSTRAINT a_c_fkey CASCADE")  # not what the op sends
        op.execute("ALTER TABLE a DROP COLUMN b")

    got = recorded(upgrade)
    assert [(type(o).__name__, getattr(o, "constraint_name", None),
             getattr(o, "if_exists", None)) for o in got] == [
        ("DropConstraintOp", "a_pkey", True), ("DropConstraintOp", "a_b_fkey", None),
        ("ExecuteSQLOp", None, None), ("ExecuteSQLOp", None, None)]


def test_the_model_points_foreign_keys_at_a_renamed_table() -> None:
    live = sa.MetaData()
    sa.Table("p", live, sa.Column("id", sa.BigInteger, primary_key=True))
    sa.Table("c", live, sa.Column("id", sa.BigInteger, primary_key=True),
             sa.Column("p_id", sa.BigInteger),
             sa.ForeignKeyConstraint(["p_id"], ["p.id"], name="c_p_fkey"))
    desired = desired_metadata(live, [ops.RenameTableOp("p", "q"),
                                      ops.AlterColumnOp("c", "p_id", modify_nullable=False)])
    (fk,) = desired.tables["c"].foreign_key_constraints
    assert (fk.name, fk.referred_table.name) == ("c_p_fkey", "q")
