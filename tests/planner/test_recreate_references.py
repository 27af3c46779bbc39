"""A recreated table's foreign keys in real revisions (issue 13, found by the real-world
harness): unit tests of the planner, no database (the live schema is a hand-made snapshot).

- airflow 0047: a table recreated in a revision gets a key to a table the same revision
  creates (``dag_code`` -> ``dag_version``); the key was left out of the new table's
  ``CREATE TABLE`` (its referent did not exist yet) and, folded into the recreation, never
  added: the end-state check found it missing.
- prefect d38c5e6a9115: a recreated table's key to a table the revision renamed was left out
  the same way (the renamed table was taken for one that does not exist yet).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic.operations import ops

from dsql_migrate.catalog import Column, Constraint, Index, Snapshot, Table
from dsql_migrate.fingerprint import PASSING
from dsql_migrate.ops import ChangePrimaryKeyOp
from dsql_migrate.plan import Plan, StepKind
from dsql_migrate.planner import plan
from dsql_migrate.profiles import CURRENT


def pk_table(name: str, *columns: Column, pk: str, key: str = "id",
             constraints: tuple[Constraint, ...] = ()) -> Table:
    return Table("public", name, columns=(Column(key, "uuid", False), *columns),
                 constraints=(Constraint(pk, "primary_key", (key,), f"PRIMARY KEY ({key})",
                                         index=pk), *constraints),
                 indexes=(Index(pk, True, (key,), constraint=pk),), row_estimate=5)


def sql(p: Plan) -> str:
    return "\n".join(s for step in p.steps for s in step.sql)


def test_a_key_of_a_recreated_table_to_a_table_the_plan_creates_is_added_after_it() -> None:
    live = Snapshot(tables={"public.dag_code": pk_table(
        "dag_code", Column("fileloc_hash", "bigint", False), pk="dag_code_pkey",
        key="fileloc_hash")})
    md = sa.MetaData()
    sa.Table("dag_version", md, sa.Column("id", sa.Uuid, primary_key=True))
    sa.Table("dag_code", md, sa.Column("id", sa.Uuid, primary_key=True),
             sa.Column("dag_version_id", sa.Uuid, nullable=False),
             sa.ForeignKeyConstraint(["dag_version_id"], ["dag_version.id"],
                                     name="dag_code_dag_version_id_fkey", ondelete="CASCADE"))
    md.tables["dag_code"].primary_key.name = "dag_code_pkey"
    op_list: list[ops.MigrateOperation] = [
        ops.CreateTableOp("dag_version", [sa.Column("id", sa.Uuid, primary_key=True)]),
        ops.DropColumnOp("dag_code", "fileloc_hash"),
        ops.AddColumnOp("dag_code", sa.Column("id", sa.Uuid, nullable=False)),
        ChangePrimaryKeyOp("dag_code", ["id"]),
        ops.AddColumnOp("dag_code", sa.Column("dag_version_id", sa.Uuid, nullable=False)),
        ops.CreateForeignKeyOp("dag_code_dag_version_id_fkey", "dag_code", "dag_version",
                               ["dag_version_id"], ["id"], ondelete="CASCADE"),
    ]
    p = plan(op_list, live, md, CURRENT)
    text = sql(p)
    created = text.index("CREATE TABLE dag_version")
    added = text.index("ADD CONSTRAINT dag_code_dag_version_id_fkey FOREIGN KEY "
                       "(dag_version_id) REFERENCES dag_version (id) ON DELETE CASCADE")
    assert created < added
    assert "CREATE TABLE dag_code__new" in text
    validations = [s for s in p.steps if s.kind == StepKind.ASYNC_VALIDATE
                   and "dag_code_dag_version_id_fkey" in s.summary]
    assert len(validations) == 1
    assert p.promise is not None
    assert "dag_code_dag_version_id_fkey" in p.promise["public.dag_code"]["constraints"]


def test_a_key_of_a_recreated_table_to_a_table_the_plan_renames_is_in_its_create() -> None:
    spec = pk_table("block_spec", pk="pk_block_spec")
    block = pk_table("block", Column("block_spec_id", "uuid", False), pk="pk_block_data")
    live = Snapshot(tables={"public.block_spec": spec, "public.block": block})
    md = sa.MetaData()
    sa.Table("block_schema", md, sa.Column("id", sa.Uuid, primary_key=True))
    sa.Table("block_document", md, sa.Column("id", sa.Uuid, primary_key=True),
             sa.Column("block_schema_id", sa.Uuid, nullable=False),
             sa.ForeignKeyConstraint(["block_schema_id"], ["block_schema.id"],
                                     name="fk_block__block_schema_id__block_schema",
                                     ondelete="cascade"))
    md.tables["block_document"].primary_key.name = "pk_block_document"
    op_list: list[ops.MigrateOperation] = [
        ops.RenameTableOp("block_spec", "block_schema"),
        ops.RenameTableOp("block", "block_document"),
        ops.AlterColumnOp("block_document", "block_spec_id", modify_name="block_schema_id"),
        ChangePrimaryKeyOp("block_document", ["id"]),
        ops.CreateForeignKeyOp("fk_block__block_schema_id__block_schema", "block_document",
                               "block_schema", ["block_schema_id"], ["id"], ondelete="cascade"),
    ]
    p = plan(op_list, live, md, CURRENT)
    create = next(s for step in p.steps for s in step.sql
                  if s.startswith("CREATE TABLE block_document__new"))
    assert "CONSTRAINT fk_block__block_schema_id__block_schema FOREIGN KEY (block_schema_id) " \
           "REFERENCES block_schema (id) ON DELETE cascade" in create


def test_a_key_the_revision_drops_to_a_column_a_recreation_drops_is_dropped_first() -> None:
    """airflow 0096: ``team`` loses its ``id`` column (the key moves to ``name``); the keys of
    other tables to ``team.id`` are dropped by the revision first. A key that is dropped is
    not moved to the new ``team`` (whose ``id`` is gone: 42703 on the re-add). ``connection``
    is recreated too (its column narrows), and its new table references ``team.name``: it still
    goes first, so that the dropped key leaves with it (the old ``team`` has ``name`` unique)."""
    team = Table("public", "team", columns=(Column("id", "uuid", False),
                                            Column("name", "character varying(50)", False)),
                 constraints=(Constraint("team_pkey", "primary_key", ("id",), "PRIMARY KEY (id)",
                                         index="team_pkey"),
                              Constraint("team_name_uq", "unique", ("name",), "UNIQUE (name)",
                                         index="team_name_uq")),
                 indexes=(Index("team_pkey", True, ("id",), constraint="team_pkey"),
                          Index("team_name_uq", True, ("name",), constraint="team_name_uq")),
                 row_estimate=1)
    fk = Constraint("connection_team_id_fkey", "foreign_key", ("team_id",),
                    "FOREIGN KEY (team_id) REFERENCES team(id) ON DELETE SET NULL",
                    ref_table="public.team", ref_columns=("id",))
    connection = Table("public", "connection", columns=(
        Column("id", "integer", False), Column("team_id", "character varying", True)),
        constraints=(Constraint("connection_pkey", "primary_key", ("id",), "PRIMARY KEY (id)",
                                index="connection_pkey"), fk),
        indexes=(Index("connection_pkey", True, ("id",), constraint="connection_pkey"),),
        row_estimate=1)
    live = Snapshot(tables={"public.team": team, "public.connection": connection})
    md = sa.MetaData()
    sa.Table("team", md, sa.Column("name", sa.String(50), primary_key=True))
    md.tables["team"].primary_key.name = "team_pkey"
    sa.Table("connection", md, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("team_name", sa.String(50)),
             sa.ForeignKeyConstraint(["team_name"], ["team.name"],
                                     name="connection_team_name_fkey", ondelete="SET NULL"))
    md.tables["connection"].primary_key.name = "connection_pkey"
    op_list: list[ops.MigrateOperation] = [
        ops.DropConstraintOp(sa.schema.conv("connection_team_id_fkey"), "connection",
                             type_="foreignkey"),
        ops.AlterColumnOp("connection", "team_id", modify_name="team_name",
                          modify_type=sa.String(50), existing_type=sa.String()),
        ops.DropConstraintOp("team_pkey", "team", type_="primary"),
        ops.DropConstraintOp("team_name_uq", "team", type_="unique"),
        ops.DropColumnOp("team", "id"),
        ChangePrimaryKeyOp("team", ["name"]),
        ops.CreateForeignKeyOp(sa.schema.conv("connection_team_name_fkey"), "connection",
                               "team", ["team_name"], ["name"], ondelete="SET NULL"),
    ]
    p = plan(op_list, live, md, CURRENT)
    text = sql(p)
    assert "connection_team_id_fkey" not in text
    assert text.index("CREATE TABLE connection__new") < text.index("CREATE TABLE team__new")
    assert p.promise is not None
    assert set(p.promise["public.connection"]["constraints"]) == {
        "connection_pkey", "connection_team_name_fkey"}


def test_a_column_filled_by_the_revision_s_update_before_not_null_is_added_first() -> None:
    """airflow 0003: ``add_column`` (nullable), ``UPDATE`` that fills it, then
    ``alter_column(nullable=False)``, which recreates the table. Folded into the recreation,
    the column was new to it and the UPDATE ran after it: the recreation's pre-check ("the
    table is empty: a new NOT NULL column has no default") saw the rows the UPDATE was about
    to fill. The column is added in place first, the UPDATE runs, then the recreation, whose
    pre-check and copy see the filled column."""
    import dsql_migrate.alembic.compile  # noqa: F401 - registers the planner of RawSqlOp
    from dsql_migrate.alembic.ops import RawSqlOp

    live = Snapshot(tables={"public.slot_pool": Table(
        "public", "slot_pool", columns=(Column("id", "integer", False),
                                        Column("pool", "character varying(256)", True)),
        constraints=(Constraint("slot_pool_pkey", "primary_key", ("id",), "PRIMARY KEY (id)",
                                index="slot_pool_pkey"),),
        indexes=(Index("slot_pool_pkey", True, ("id",), constraint="slot_pool_pkey"),),
        row_estimate=1)})
    md = sa.MetaData()
    sa.Table("slot_pool", md, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("pool", sa.String(256)),
             sa.Column("include_deferred", sa.Boolean, nullable=False))
    md.tables["slot_pool"].primary_key.name = "slot_pool_pkey"
    update = "UPDATE slot_pool SET include_deferred = false"
    op_list: list[ops.MigrateOperation] = [
        ops.AddColumnOp("slot_pool", sa.Column("include_deferred", sa.Boolean)),
        RawSqlOp(update, kind="dml", node_type="UpdateStmt", is_async=False),
        ops.AlterColumnOp("slot_pool", "include_deferred", modify_nullable=False,
                          existing_type=sa.Boolean()),
    ]
    p = plan(op_list, live, md, CURRENT)
    summaries = [s.summary for s in p.steps]
    assert not any("is empty" in s for s in summaries), summaries
    text = sql(p)
    added = text.index("ALTER TABLE slot_pool ADD COLUMN include_deferred BOOLEAN")
    assert added < text.index(update) < text.index(
        "WHERE include_deferred IS NULL") < text.index("CREATE TABLE slot_pool__new")
    copy = next(s for step in p.steps for s in step.sql if s.startswith("INSERT INTO "
                                                                        "slot_pool__new"))
    assert "include_deferred" in copy.split("SELECT", 1)[1]
    assert p.premise is not None and p.promise is not None
    assert "include_deferred" not in p.premise["public.slot_pool"]["columns"]
    assert p.promise["public.slot_pool"]["columns"]["include_deferred"]["nullable"] is False
    # until the recreation, the column is as added in place: the guard accepts exactly that
    assert p.promise["public.slot_pool"][PASSING] == {"columns": {"include_deferred": {
        "type": "boolean", "nullable": True, "default": None, "identity": None}}}


def test_a_data_change_the_revision_starts_with_runs_before_its_renames() -> None:
    """airflow 0093: ``DELETE FROM callback_request``, then ``rename_table`` to ``callback``
    and more. Renames run first in a plan, which put the DELETE after the rename: "relation
    callback_request does not exist". Data changes that open the revision (nothing schema
    before them) run first, as written."""
    import dsql_migrate.alembic.compile  # noqa: F401 - registers the planner of RawSqlOp
    from dsql_migrate.alembic.ops import RawSqlOp

    live = Snapshot(tables={"public.callback_request": pk_table(
        "callback_request", Column("data", "text", True), pk="callback_request_pkey")})
    md = sa.MetaData()
    sa.Table("callback", md, sa.Column("id", sa.Uuid, primary_key=True),
             sa.Column("data", sa.Text), sa.Column("state", sa.String(10)))
    md.tables["callback"].primary_key.name = "callback_request_pkey"
    delete = "DELETE FROM callback_request"
    op_list: list[ops.MigrateOperation] = [
        RawSqlOp(delete, kind="dml", node_type="DeleteStmt", is_async=False),
        ops.RenameTableOp("callback_request", "callback"),
        ops.AddColumnOp("callback", sa.Column("state", sa.String(10))),
    ]
    text = sql(plan(op_list, live, md, CURRENT))
    assert text.index(delete) < text.index("ALTER TABLE callback_request RENAME TO callback") \
        < text.index("ALTER TABLE callback ADD COLUMN state")


def test_a_column_dropped_and_added_again_is_new_and_its_sequence_goes_with_it() -> None:
    """airflow 0093: ``drop_column("id")`` (a SERIAL, owning ``callback_request_id_seq``) and
    ``add_column("id", Uuid)`` in a recreation. The new ``id`` is a new column: not copied
    (cast) from the old one, and the old column's sequence is not moved to it (PostgreSQL
    drops it with the column; moved, it outlived the backup)."""
    old = Table("public", "callback", columns=(
        Column("id", "integer", False, default="nextval('callback_request_id_seq'::regclass)",
               owned_sequence="callback_request_id_seq"),
        Column("data", "text", True)),
        constraints=(Constraint("callback_request_pkey", "primary_key", ("id",),
                                "PRIMARY KEY (id)", index="callback_request_pkey"),),
        indexes=(Index("callback_request_pkey", True, ("id",),
                       constraint="callback_request_pkey"),), row_estimate=0)
    live = Snapshot(tables={"public.callback": old})
    md = sa.MetaData()
    sa.Table("callback", md, sa.Column("data", sa.Text),
             sa.Column("id", sa.Uuid, primary_key=True))
    md.tables["callback"].primary_key.name = "callback_pkey"
    op_list: list[ops.MigrateOperation] = [
        ops.DropColumnOp("callback", "id"),
        ops.AddColumnOp("callback", sa.Column("id", sa.Uuid, nullable=False)),
        ChangePrimaryKeyOp("callback", ["id"]),
    ]
    text = sql(plan(op_list, live, md, CURRENT))
    assert "callback_request_id_seq" not in text
    assert "CAST(id AS UUID)" not in text
