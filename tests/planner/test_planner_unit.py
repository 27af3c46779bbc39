"""The planner is pure: hand-built snapshots and ops, no database."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.operations import ops

from dsql_migrate.catalog import Column, Constraint, Snapshot, Table
from dsql_migrate.errors import ConfigError
from dsql_migrate.plan import StepKind
from dsql_migrate.planner import Options, plan
from dsql_migrate.profiles import CLASSIC, CURRENT


def live_snapshot(rows: int | None = 2500, row_bytes: int | None = None) -> Snapshot:
    table = Table(
        schema="public", name="items",
        columns=(Column("id", "bigint", False, position=1), Column("name", "text", True,
                                                                   position=2)),
        constraints=(Constraint("items_pkey", "primary_key", ("id",), "PRIMARY KEY (id)",
                                index="items_pkey"),),
        row_estimate=rows,
        row_bytes=row_bytes,
    )
    return Snapshot(schemas=("public",), tables={"public.items": table})


def desired_metadata(**extra: sa.Column[object]) -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table("items", metadata, sa.Column("id", sa.BigInteger, primary_key=True),
             sa.Column("name", sa.Text), *extra.values())
    return metadata


def add_status() -> tuple[list[ops.MigrateOperation], sa.MetaData]:
    status = sa.Column("status", sa.Text, server_default="new")
    metadata = desired_metadata(status=status)
    return [ops.AddColumnOp("items", metadata.tables["items"].c.status)], metadata


def test_add_column_with_default_is_add_set_default_backfill() -> None:
    op_list, metadata = add_status()
    planned = plan(op_list, live_snapshot(), metadata, CURRENT)
    assert [s.kind for s in planned.steps] == [StepKind.DDL, StepKind.DDL, StepKind.BACKFILL]
    backfill = planned.steps[2]
    assert backfill.batch is not None and backfill.batch.size == 1000
    assert backfill.estimate.rows == 2500 and backfill.estimate.batches == 3
    assert planned.steps[1].sql == ("ALTER TABLE items ALTER COLUMN status SET DEFAULT 'new'",)


def test_add_column_with_default_in_classic_recreates() -> None:
    op_list, metadata = add_status()
    planned = plan(op_list, live_snapshot(), metadata, CLASSIC)
    kinds = [s.kind for s in planned.steps]
    assert StepKind.COPY in kinds and StepKind.SWAP in kinds
    assert not any("SET DEFAULT" in sql for s in planned.steps for sql in s.sql)
    assert planned.steps[-1].destructive and planned.steps[-1].sql == ("DROP TABLE items__old",)


@pytest.mark.parametrize("batch_rows, limit, expected", [
    (5000, None, 3000),  # never above the profile's row limit
    (None, 500, 500),  # a lowered limit from the configuration caps the default
    (200, None, 200),
])
def test_batch_size_never_exceeds_the_row_limit(batch_rows: int | None, limit: int | None,
                                                expected: int) -> None:
    op_list, metadata = add_status()
    profile = CURRENT.with_limits({"rows_per_transaction": limit}) if limit else CURRENT
    planned = plan(op_list, live_snapshot(), metadata, profile, Options(batch_rows=batch_rows))
    batch = planned.steps[2].batch
    assert batch is not None and batch.size == expected


def test_unknown_row_count_is_one_batch_estimate_not_zero() -> None:
    op_list, metadata = add_status()
    planned = plan(op_list, live_snapshot(rows=None), metadata, CURRENT)
    assert planned.steps[2].estimate.rows is None
    assert planned.steps[2].estimate.batches == 1


def test_not_null_by_check_needs_the_current_profile() -> None:
    op_list, metadata = add_status()
    with pytest.raises(ConfigError) as info:
        plan(op_list, live_snapshot(), metadata, CLASSIC, Options(not_null="check"))
    assert "classic" in str(info.value)


def test_same_inputs_give_byte_identical_plans() -> None:
    first = plan(*_twice(), CURRENT).to_json()
    second = plan(*_twice(), CURRENT).to_json()
    assert first == second


def _twice() -> tuple[list[ops.MigrateOperation], Snapshot, sa.MetaData]:
    op_list, metadata = add_status()
    return op_list, live_snapshot(), metadata


def test_invalid_identity_cache_is_raised_to_the_dsql_minimum_with_a_warning() -> None:
    metadata = sa.MetaData()
    table = sa.Table("counters", metadata,
                     sa.Column("id", sa.BigInteger, sa.Identity(cache=20), primary_key=True))
    planned = plan([ops.CreateTableOp.from_table(table)], Snapshot(), metadata, CURRENT)
    assert "CACHE 65536" in planned.steps[0].sql[0]
    assert any("CACHE 20 is not allowed" in w for w in planned.warnings)


def test_autoincrement_integer_key_is_not_serial_and_warns() -> None:
    metadata = sa.MetaData()
    table = sa.Table("things", metadata, sa.Column("id", sa.Integer, primary_key=True,
                                                    autoincrement=True))
    planned = plan([ops.CreateTableOp.from_table(table)], Snapshot(), metadata, CURRENT)
    assert "SERIAL" not in planned.steps[0].sql[0].upper()
    assert any("SERIAL" in w for w in planned.warnings)


class _BigId(sa.types.TypeDecorator[int]):
    """A project's own id type (prefect, airflow have them): PostgreSQL makes it BIGSERIAL."""

    impl = sa.BigInteger
    cache_ok = True


@pytest.mark.parametrize("type_", [sa.Integer, sa.BigInteger, sa.SmallInteger, _BigId])
@pytest.mark.parametrize("autoincrement", [True, "auto"])
def test_autoincrement_key_becomes_a_bigint_identity_with_a_note(
        type_: type[sa.types.TypeEngine[int]], autoincrement: bool | str) -> None:
    """PostgreSQL makes SQLAlchemy's autoincrement key SERIAL/BIGSERIAL: an insert without an
    id gets one. DSQL has no SERIAL: the faithful form is a BIGINT identity, and the plan
    says so (harness finding A)."""
    metadata = sa.MetaData()
    table = sa.Table("things", metadata,
                     sa.Column("id", type_, primary_key=True,
                               autoincrement=autoincrement),  # type: ignore[arg-type]
                     sa.Column("name", sa.Text))
    planned = plan([ops.CreateTableOp.from_table(table)], Snapshot(), metadata, CURRENT)
    sql = planned.steps[0].sql[0]
    assert "id BIGINT GENERATED BY DEFAULT AS IDENTITY (CACHE 1)," in sql
    said = " ".join(planned.warnings)
    assert "things.id" in said and "SERIAL" in said and "BIGINT" in said
    assert ("widened" in said) is (type_ not in (sa.BigInteger, _BigId))


def test_no_identity_for_keys_that_are_not_autoincrement() -> None:
    metadata = sa.MetaData()
    sa.Table("parent", metadata, sa.Column("id", sa.BigInteger, primary_key=True,
                                           autoincrement=False))
    sa.Table("child", metadata,
             sa.Column("id", sa.BigInteger, sa.ForeignKey("parent.id"), primary_key=True),
             sa.Column("a", sa.BigInteger, primary_key=True))
    sa.Table("named", metadata, sa.Column("code", sa.Text, primary_key=True))
    sa.Table("defaulted", metadata, sa.Column("id", sa.BigInteger, primary_key=True,
                                              server_default=sa.text("42")))
    planned = plan([ops.CreateTableOp.from_table(t) for t in metadata.sorted_tables],
                   Snapshot(), metadata, CURRENT)
    assert not any("IDENTITY" in s.sql[0] for s in planned.steps)


def test_explicit_identity_cache_is_kept_for_an_autoincrement_key() -> None:
    metadata = sa.MetaData()
    table = sa.Table("events", metadata, sa.Column("id", sa.BigInteger,
                                                   sa.Identity(cache=65536), primary_key=True))
    planned = plan([ops.CreateTableOp.from_table(table)], Snapshot(), metadata, CURRENT)
    assert "GENERATED BY DEFAULT AS IDENTITY (CACHE 65536)" in planned.steps[0].sql[0]


def test_foreign_keys_in_classic_become_integrity_notes() -> None:
    metadata = sa.MetaData()
    sa.Table("parents", metadata, sa.Column("id", sa.BigInteger, primary_key=True))
    kids = sa.Table("kids", metadata, sa.Column("id", sa.BigInteger, primary_key=True),
                    sa.Column("parent_id", sa.BigInteger, sa.ForeignKey("parents.id")))
    planned = plan([ops.CreateTableOp.from_table(kids)], Snapshot(), metadata, CLASSIC)
    assert "REFERENCES" not in planned.steps[0].sql[0]
    assert any("application" in w for w in planned.warnings)
    planned = plan([ops.CreateTableOp.from_table(kids)], Snapshot(), metadata, CURRENT)
    assert "REFERENCES parents (id)" in planned.steps[0].sql[0]


def test_types_and_limits_dsql_does_not_have_are_warned() -> None:
    from sqlalchemy.dialects import postgresql

    metadata = sa.MetaData()
    table = sa.Table(
        "wide", metadata, sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("tags", postgresql.ARRAY(sa.Text)), sa.Column("ip", postgresql.INET),
        sa.Column("doc", postgresql.JSONB),
        *[sa.Column(f"c{i}", sa.Text) for i in range(260)])
    for i in range(25):
        sa.Index(f"ix_wide_{i}", table.c[f"c{i}"])
    planned = plan([ops.CreateTableOp.from_table(table)], Snapshot(), metadata, CLASSIC)
    text = "\n".join(planned.warnings)
    assert "no array columns" in text and "no INET" in text and "JSONB is not available" in text
    assert "264 columns, DSQL allows 255" in text and "26 indexes" in text
    current = plan([ops.CreateTableOp.from_table(table)], Snapshot(), metadata, CURRENT)
    assert not any("JSONB" in w for w in current.warnings)


def test_a_table_in_a_new_schema_creates_the_schema_once() -> None:
    metadata = sa.MetaData()
    a = sa.Table("a", metadata, sa.Column("id", sa.BigInteger, primary_key=True), schema="app")
    b = sa.Table("b", metadata, sa.Column("id", sa.BigInteger, primary_key=True), schema="app")
    planned = plan([ops.CreateTableOp.from_table(a), ops.CreateTableOp.from_table(b)],
                   Snapshot(schemas=("public",)), metadata, CURRENT)
    assert [s.sql[0].split("(")[0].strip() for s in planned.steps] == [
        "CREATE SCHEMA app", "CREATE TABLE app.a", "CREATE TABLE app.b"]


def test_wide_rows_get_smaller_batches_under_the_byte_limit() -> None:
    op_list, metadata = add_status()
    planned = plan(op_list, live_snapshot(row_bytes=20_000), metadata, CURRENT)
    batch = planned.steps[2].batch
    # 10 MiB / 2 headroom / (20 kB x (1 row + 0 indexes)) = 262 rows
    assert batch is not None and batch.size == 262
    narrow = plan(op_list, live_snapshot(row_bytes=40), metadata, CURRENT).steps[2].batch
    assert narrow is not None and narrow.size == 1000


@pytest.mark.parametrize("dialect", ["postgresql", "auroradsql"])
def test_index_options_of_either_dialect_name_are_planned(dialect: str) -> None:
    """AWS's dialect documents ``auroradsql_include=`` etc.; the planner reads them as it reads
    ``postgresql_*`` (and does not drop a partial index's WHERE or a USING silently)."""
    metadata = desired_metadata(kind=sa.Column("kind", sa.Text))
    items = metadata.tables["items"]
    partial = sa.Index("ix_items_open", items.c.kind, unique=True,
                       **{f"{dialect}_where": items.c.name == "open",
                          f"{dialect}_include": ["name"],
                          f"{dialect}_nulls_not_distinct": True})
    hashed = sa.Index("ix_items_kind", items.c.kind, **{f"{dialect}_using": "hash"})
    op_list: list[ops.MigrateOperation] = [ops.AddColumnOp("items", items.c.kind),
                                           ops.CreateIndexOp.from_index(partial),
                                           ops.CreateIndexOp.from_index(hashed)]
    planned = plan(op_list, live_snapshot(), metadata, CURRENT)
    statements = [sql for s in planned.steps for sql in s.sql]
    assert "CREATE UNIQUE INDEX ASYNC ix_items_open ON items (kind) INCLUDE (name) " \
           "NULLS NOT DISTINCT WHERE items.name = 'open'" in statements
    assert "CREATE INDEX ASYNC ix_items_kind ON items (kind)" in statements
    assert any("USING hash" in w for w in planned.warnings)
    duplicates = next(s for s in planned.steps if s.kind is StepKind.VERIFY)
    assert "name = 'open'" in duplicates.sql[0]

    classic = plan(op_list, live_snapshot(), metadata, CLASSIC)
    assert not any("ix_items_open" in sql for s in classic.steps for sql in s.sql)
    assert any("ix_items_open" in w and "not planned" in w for w in classic.warnings)


def test_references_to_a_recreated_table_are_removed_before_it_is_recreated() -> None:
    """A foreign key to the recreated table would keep its backup from being dropped: the drop
    of that key, and a dropped table holding one, come before the recreation."""
    def child(name: str) -> Table:
        return Table(schema="public", name=name,
                     columns=(Column("id", "bigint", False, position=1),
                              Column("item_id", "bigint", True, position=2)),
                     constraints=(Constraint(f"{name}_pkey", "primary_key", ("id",),
                                             "PRIMARY KEY (id)"),
                                  Constraint(f"fk_{name}_item", "foreign_key", ("item_id",),
                                             "FOREIGN KEY (item_id) REFERENCES items(id)",
                                             ref_table="public.items", ref_columns=("id",))))
    items = live_snapshot().tables["public.items"]
    live = Snapshot(schemas=("public",), tables={
        "public.items": items, "public.kids": child("kids"), "public.pets": child("pets")})
    metadata = desired_metadata()
    metadata.tables["items"].c.name.type = sa.String(40)
    sa.Table("kids", metadata, sa.Column("id", sa.BigInteger, primary_key=True),
             sa.Column("item_id", sa.BigInteger))
    op_list: list[ops.MigrateOperation] = [
        ops.AlterColumnOp("items", "name", modify_type=sa.String(40), existing_type=sa.Text()),
        ops.DropConstraintOp("fk_kids_item", "kids", type_="foreignkey"),
        ops.DropTableOp("pets"),
    ]
    summaries = [s.summary for s in plan(op_list, live, metadata, CURRENT).steps]
    first_recreation = next(i for i, s in enumerate(summaries) if "items__new" in s)
    assert summaries.index("drop constraint fk_kids_item on kids") < first_recreation
    assert summaries.index("drop table pets") < first_recreation
    assert summaries[-1] == "drop backup items__old"


def _items_with_children(*names: str) -> Snapshot:
    tables = {"public.items": live_snapshot().tables["public.items"]}
    for name in names:
        tables[f"public.{name}"] = Table(
            schema="public", name=name,
            columns=(Column("id", "bigint", False, position=1),
                     Column("item_id", "bigint", True, position=2)),
            constraints=(Constraint(f"{name}_pkey", "primary_key", ("id",), "PRIMARY KEY (id)"),
                         Constraint(f"fk_{name}_item", "foreign_key", ("item_id",),
                                    "FOREIGN KEY (item_id) REFERENCES items(id) ON DELETE "
                                    "SET NULL", ref_table="public.items", ref_columns=("id",))))
    return Snapshot(schemas=("public",), tables=tables)


def _widen_items() -> tuple[ops.MigrateOperation, sa.MetaData]:
    metadata = desired_metadata()
    metadata.tables["items"].c.name.type = sa.String(40)
    return (ops.AlterColumnOp("items", "name", modify_type=sa.String(40),
                              existing_type=sa.Text()), metadata)


def test_a_renamed_table_dropping_its_reference_comes_first_and_its_re_add_after() -> None:
    """The ops name a renamed table by its new name (kids → children); the drop of its key
    still comes before the recreation, and the re-add of the same name after it."""
    alter, metadata = _widen_items()
    op_list: list[ops.MigrateOperation] = [
        ops.RenameTableOp("kids", "children"),
        alter,
        ops.DropConstraintOp("fk_kids_item", "children", type_="foreignkey"),
        ops.CreateForeignKeyOp("fk_kids_item", "children", "items", ["item_id"], ["id"]),
    ]
    summaries = [s.summary for s in plan(op_list, _items_with_children("kids"), metadata,
                                         CURRENT).steps]
    recreation = summaries.index("create items__new with the target definition of items")
    swap = summaries.index("swap: keep items as backup items__old")
    assert summaries.index("drop constraint fk_kids_item on children") < recreation
    assert summaries.index("add foreign key fk_kids_item on children (NOT VALID)") > swap
    assert not any("before the swap" in s for s in summaries)  # the revision's own drop


def test_keys_referencing_a_recreated_table_are_moved_to_the_new_table() -> None:
    alter, metadata = _widen_items()
    planned = plan([alter], _items_with_children("kids", "pets"), metadata, CURRENT)
    sql = [(s.kind, s.sql[0]) for s in planned.steps]
    swap = next(i for i, (kind, _) in enumerate(sql) if kind is StepKind.SWAP)
    assert sql[swap - 2:swap] == [
        (StepKind.DDL, "ALTER TABLE kids DROP CONSTRAINT fk_kids_item"),
        (StepKind.DDL, "ALTER TABLE pets DROP CONSTRAINT fk_pets_item")]
    assert sql[swap + 2:swap + 4] == [  # the primary key's name given back first
        (StepKind.DDL, "ALTER TABLE items__old RENAME CONSTRAINT items_pkey TO items_pkey__old"),
        (StepKind.DDL, "ALTER TABLE items RENAME CONSTRAINT items_pkey__new TO items_pkey")]
    assert sql[swap + 4:swap + 8] == [
        (StepKind.DDL, "ALTER TABLE kids ADD CONSTRAINT fk_kids_item FOREIGN KEY (item_id) "
                       "REFERENCES items (id) ON DELETE SET NULL NOT VALID"),
        (StepKind.DDL, "ALTER TABLE pets ADD CONSTRAINT fk_pets_item FOREIGN KEY (item_id) "
                       "REFERENCES items (id) ON DELETE SET NULL NOT VALID"),
        (StepKind.ASYNC_VALIDATE, "ALTER TABLE ASYNC kids VALIDATE CONSTRAINT fk_kids_item"),
        (StepKind.ASYNC_VALIDATE, "ALTER TABLE ASYNC pets VALIDATE CONSTRAINT fk_pets_item")]
    assert sql[-1] == (StepKind.DDL, "DROP TABLE items__old")
    assert not any("backup" in w for w in planned.warnings)


def test_table_comments_are_planned_not_refused() -> None:
    """A comment change on a table that is not recreated is one COMMENT statement (there was
    no planner for Alembic's comment ops: any comment difference failed the plan)."""
    metadata = desired_metadata()
    set_comment = ops.CreateTableCommentOp("items", "all the items", existing_comment=None)
    drop_comment = ops.DropTableCommentOp("items", existing_comment="all the items")
    planned = plan([set_comment], live_snapshot(), metadata, CURRENT)
    assert [s.sql for s in planned.steps] == [("COMMENT ON TABLE items IS 'all the items'",)]
    planned = plan([drop_comment], live_snapshot(), metadata, CURRENT)
    assert [s.sql for s in planned.steps] == [("COMMENT ON TABLE items IS NULL",)]


def test_dropping_the_backup_of_a_recreation_says_so() -> None:
    snapshot = live_snapshot()
    backup = Table(schema="public", name="items__old", columns=snapshot.tables[
        "public.items"].columns)
    live = Snapshot(schemas=("public",), tables={**snapshot.tables, "public.items__old": backup})
    planned = plan([ops.DropTableOp("items__old")], live, desired_metadata(), CURRENT)
    (step,) = planned.steps
    assert step.destructive
    assert any("backup of items left by a recreation" in note for note in step.notes)


def test_a_view_reading_a_dropped_column_refuses_the_recreation() -> None:
    """The view could not be created again after the swap: refused before anything runs, as
    PostgreSQL refuses to drop a column a view reads."""
    from dsql_migrate.catalog import View
    from dsql_migrate.planner import PlanningError

    snapshot = live_snapshot()
    view = View(schema="public", name="item_names", definition=" SELECT name FROM items;",
                depends_on=("public.items",), columns_used=(("public.items", "name"),))
    live = Snapshot(schemas=("public",), tables=snapshot.tables, views=(view,))
    metadata = sa.MetaData()
    sa.Table("items", metadata, sa.Column("id", sa.BigInteger, primary_key=True))
    with pytest.raises(PlanningError, match=r"view item_names reads items\.name, which this "
                                            r"change drops"):
        plan([ops.DropColumnOp("items", "name")], live, metadata, CLASSIC)


def test_a_recreation_keeps_the_live_identity_cache_the_target_does_not_state() -> None:
    """A model that declares ``sa.Identity()`` without a cache (Alembic does not compare it)
    keeps the live CACHE 65536 instead of falling back to CACHE 1."""
    snapshot = live_snapshot()
    items = snapshot.tables["public.items"]
    identity_id = Column("id", "bigint", False, identity="by default", identity_cache=65536,
                         position=1)
    live = Snapshot(schemas=("public",), tables={"public.items": Table(
        schema="public", name="items", columns=(identity_id, items.columns[1]),
        constraints=items.constraints, row_estimate=10)})
    status = sa.Column("status", sa.Text, server_default="new")
    metadata = sa.MetaData()
    sa.Table("items", metadata, sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
             sa.Column("name", sa.Text), status)
    planned = plan([ops.AddColumnOp("items", status)], live, metadata, CLASSIC)
    create = next(s.sql[0] for s in planned.steps if s.sql[0].startswith("CREATE TABLE"))
    assert "CACHE 65536" in create, create
    assert metadata.tables["items"].c.id.identity.cache is None  # the target is not changed


def test_unnamed_checks_get_the_name_postgresql_gives_them_on_the_table() -> None:
    """Created on ``items__new``, an unnamed CHECK would be named ``items__new_name_check``
    by PostgreSQL and keep that name after the swap: it gets the name it has on ``items``."""
    status = sa.Column("status", sa.Text, server_default="new")
    metadata = sa.MetaData()
    sa.Table("items", metadata, sa.Column("id", sa.BigInteger, primary_key=True),
             sa.Column("name", sa.Text), status, sa.CheckConstraint("name <> ''"),
             sa.CheckConstraint("length(name) < 100"),
             sa.CheckConstraint("id > 0 OR name IS NULL"))
    planned = plan([ops.AddColumnOp("items", status)], live_snapshot(), metadata, CLASSIC)
    create = next(s.sql[0] for s in planned.steps if s.sql[0].startswith("CREATE TABLE"))
    # two on one column: numbered as PostgreSQL does, in the order of their SQL text (a
    # Table's constraints are a set: no declaration order to follow)
    assert "CONSTRAINT items_name_check CHECK (length(name) < 100)" in create, create
    assert "CONSTRAINT items_name_check1 CHECK (name <> '')" in create, create
    assert "CONSTRAINT items_check CHECK (id > 0 OR name IS NULL)" in create, create
