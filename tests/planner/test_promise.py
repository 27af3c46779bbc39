"""The planner's premise and promise: the premise is the live fingerprint of the tables the
plan touches; the promise is the premise with each op's effect applied. Unit tests, no
database: the live schema is a hand-made snapshot."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.operations import ops

from dsql_migrate.catalog import Column, Constraint, Index, Snapshot, Table
from dsql_migrate.fingerprint import RENAMED_FROM, UNCHECKED, table_fingerprint
from dsql_migrate.planner import plan as make_plan
from dsql_migrate.planner.promise import expected_column, premise, promise
from dsql_migrate.profiles import CLASSIC, CURRENT

ORDERS = Table(
    "public", "orders",
    columns=(Column("id", "bigint", False), Column("qty", "integer", True),
             Column("note", "text", True)),
    constraints=(Constraint("orders_pkey", "primary_key", ("id",), "PRIMARY KEY (id)",
                            index="orders_pkey"),),
    indexes=(Index("orders_pkey", True, ("id",), constraint="orders_pkey",
                   definition="CREATE UNIQUE INDEX orders_pkey ON public.orders USING btree (id)"),
             Index("ix_orders_note", False, ("note",),
                   definition="CREATE INDEX ix_orders_note ON public.orders USING btree (note)")),
    row_estimate=10)
OTHER = Table("public", "other", columns=(Column("id", "bigint", False),))
LIVE = Snapshot(tables={"public.orders": ORDERS, "public.other": OTHER})


def desired(*extra: sa.Column[object], qty: type[sa.types.TypeEngine[object]] = sa.Integer,
            note: bool = True) -> sa.MetaData:
    md = sa.MetaData()
    columns: list[sa.Column[object]] = [sa.Column("id", sa.BigInteger, primary_key=True),
                                        sa.Column("qty", qty())]
    if note:
        columns.append(sa.Column("note", sa.Text))
    table = sa.Table("orders", md, *columns, *extra)
    if note:
        sa.Index("ix_orders_note", table.c.note)
    return md


def test_premise_is_the_live_fingerprint_of_the_touched_tables_only() -> None:
    op = ops.AddColumnOp("orders", sa.Column("status", sa.Text))
    before = premise([op], [], LIVE)
    assert before == {"public.orders": table_fingerprint(ORDERS)}
    assert premise([ops.CreateTableOp("fresh", [])], [], LIVE) == {"public.fresh": None}


def test_a_type_change_promises_the_new_type_and_carries_everything_else() -> None:
    op = ops.AlterColumnOp("orders", "qty", modify_type=sa.BigInteger(),
                           existing_type=sa.Integer())
    before = premise([op], [], LIVE)
    after, unchecked = promise([op], before, desired(qty=sa.BigInteger), recreated=set(),
                               not_null_by_check=False)
    assert unchecked == []
    assert after["public.orders"]["columns"]["qty"]["type"] == "bigint"
    for kind in ("constraints", "indexes"):
        assert after["public.orders"][kind] == before["public.orders"][kind]
    assert after["public.orders"]["columns"]["note"] == before["public.orders"]["columns"]["note"]


def test_a_dropped_column_takes_its_index_with_it() -> None:
    op = ops.DropColumnOp("orders", "note")
    after, _ = promise([op], premise([op], [], LIVE), desired(note=False), recreated=set(),
                       not_null_by_check=False)
    assert "note" not in after["public.orders"]["columns"]
    assert "ix_orders_note" not in after["public.orders"]["indexes"]
    assert "orders_pkey" in after["public.orders"]["indexes"]


def test_an_added_column_promises_what_can_be_predicted() -> None:
    column = sa.Column("status", sa.String(20), nullable=False, server_default="new")
    op = ops.AddColumnOp("orders", column)
    wanted = sa.Column("status", sa.String(20), nullable=False, server_default="new")
    after, _ = promise([op], premise([op], [], LIVE), desired(wanted), recreated=set(),
                       not_null_by_check=False)
    assert after["public.orders"]["columns"]["status"] == {
        "type": "character varying(20)", "nullable": False, "default": "'new'"}


def test_not_null_by_check_promises_a_nullable_column_and_its_check() -> None:
    op = ops.AlterColumnOp("orders", "qty", modify_nullable=False)
    after, _ = promise([op], premise([op], [], LIVE), desired(), recreated=set(),
                       not_null_by_check=True)
    assert after["public.orders"]["columns"]["qty"]["nullable"] is True
    assert after["public.orders"]["constraints"]["orders_qty_not_null"] == {"kind": "check"}


def test_a_renamed_table_is_promised_under_its_new_name() -> None:
    op = ops.RenameTableOp("orders", "purchases")
    before = premise([op], [], LIVE)
    assert before == {"public.orders": table_fingerprint(ORDERS), "public.purchases": None}
    after, _ = promise([op], before, desired(), recreated=set(), not_null_by_check=False)
    assert after["public.orders"] is None
    assert after["public.purchases"][RENAMED_FROM] == "public.orders"
    assert "definition" not in after["public.purchases"]["indexes"]["ix_orders_note"]


def test_a_new_table_gets_postgresql_names_for_unnamed_constraints() -> None:
    md = sa.MetaData()
    table = sa.Table("lines", md, sa.Column("id", sa.BigInteger, primary_key=True),
                     sa.Column("order_id", sa.BigInteger, sa.ForeignKey("orders.id")),
                     sa.Column("sku", sa.Text, unique=True))
    op = ops.CreateTableOp.from_table(table)
    after, _ = promise([op], {"public.lines": None}, md, recreated=set(),
                       not_null_by_check=False)
    lines = after["public.lines"]
    assert set(lines["constraints"]) == {"lines_pkey", "lines_order_id_fkey", "lines_sku_key"}
    assert lines["constraints"]["lines_order_id_fkey"]["ref_table"] == "public.orders"
    classic, _ = promise([op], {"public.lines": None}, md, recreated=set(),
                         not_null_by_check=False, foreign_keys=False)
    assert "lines_order_id_fkey" not in classic["public.lines"]["constraints"]


def test_an_op_without_a_known_effect_leaves_its_table_unchecked() -> None:
    class Mystery(ops.MigrateOperation):
        table_name = "orders"
        schema = None

    after, unchecked = promise([Mystery()], premise([Mystery()], [], LIVE), desired(),
                               recreated=set(), not_null_by_check=False)
    assert UNCHECKED in after["public.orders"]
    assert unchecked and "Mystery" in unchecked[0]


def test_the_planner_attaches_both_and_leaves_an_unplanned_index_out() -> None:
    op = ops.AlterColumnOp("orders", "qty", modify_type=sa.BigInteger(),
                           existing_type=sa.Integer())
    planned = make_plan([op], LIVE, desired(qty=sa.BigInteger), CURRENT)
    assert planned.premise == premise([op], [s.table for s in planned.steps], LIVE)
    assert planned.promise is not None
    assert planned.promise["public.orders"]["columns"]["qty"]["type"] == "bigint"

    md = desired()
    sa.Index("ix_orders_lower", sa.func.lower(md.tables["orders"].c.note))
    index = ops.CreateIndexOp("ix_orders_lower", "orders", [sa.text("lower(note)")])
    plain = ops.CreateIndexOp("ix_orders_qty", "orders", ["qty"])
    sa.Index("ix_orders_qty", md.tables["orders"].c.qty)
    classic = make_plan([index, plain], LIVE, md, CLASSIC)  # no expression indexes
    assert "not planned" in " ".join(classic.warnings)
    assert classic.promise is not None
    assert "ix_orders_lower" not in classic.promise["public.orders"]["indexes"]
    assert classic.promise["public.orders"]["indexes"]["ix_orders_qty"] == {
        "unique": False, "keys": ["qty"]}


def test_an_empty_plan_has_neither() -> None:
    planned = make_plan([], LIVE, desired(), CURRENT)
    assert planned.premise is None and planned.promise is None


def test_a_recreated_table_promises_the_key_name_its_new_definition_gives() -> None:
    """Unnamed in the model, the key keeps its live name through a rename and a recreation
    (as on PostgreSQL, where a renamed table keeps its constraints' names)."""
    rename = ops.RenameTableOp("orders", "purchases")
    widen = ops.AlterColumnOp("purchases", "qty", modify_type=sa.BigInteger(),
                              existing_type=sa.Integer())
    md = sa.MetaData()
    sa.Table("purchases", md, sa.Column("id", sa.BigInteger, primary_key=True),
             sa.Column("qty", sa.BigInteger), sa.Column("note", sa.Text))
    after, _ = promise([rename, widen], premise([rename, widen], [], LIVE), md,
                       recreated={(None, "purchases")}, not_null_by_check=False)
    purchases = after["public.purchases"]
    assert set(purchases["constraints"]) == {"orders_pkey"}
    assert purchases["indexes"]["orders_pkey"]["constraint"] == "orders_pkey"


def test_an_index_dropped_without_its_table_name_is_found() -> None:
    drop = ops.DropIndexOp("ix_orders_note")  # op.drop_index("ix_orders_note")
    add = ops.AddColumnOp("orders", sa.Column("flag", sa.Integer))
    after, _ = promise([drop, add], premise([drop, add], [], LIVE), desired(), recreated=set(),
                       not_null_by_check=False)
    assert "ix_orders_note" not in after["public.orders"]["indexes"]


def test_a_boolean_default_is_promised_as_postgresql_stores_it() -> None:
    """``server_default="0"`` on a boolean (airflow, prefect) is stored as ``false``: the
    promise says so, or every such upgrade would fail its end-state check."""
    for given, stored in (("0", "false"), ("1", "true"), ("'t'", "true"), ("false", "false")):
        column = sa.Column("flag", sa.Boolean, server_default=sa.text(given))
        sa.Table("t", sa.MetaData(), column)
        assert expected_column(column)["default"] == stored, given


def test_a_float_precision_type_is_promised_as_postgresql_prints_it() -> None:
    """optuna v3.0.0.b: ``alter_column(type_=Float(precision=53), nullable=False)`` promised
    the type ``double precision(53)``, which PostgreSQL never prints, so the column matched
    neither premise nor promise and the guard stopped the recreation before its backup drop."""
    column = expected_column(sa.Column("value", sa.Float(precision=53), nullable=False))
    assert column["type"] == "double precision"
    assert expected_column(sa.Column("value", sa.Float(precision=10)))["type"] == "real"
    op = ops.AlterColumnOp("orders", "qty", modify_type=sa.Float(precision=53),
                           modify_nullable=False, existing_type=sa.Integer())
    before = premise([op], [], LIVE)
    md = sa.MetaData()
    sa.Table("orders", md, sa.Column("id", sa.BigInteger, primary_key=True),
             sa.Column("qty", sa.Float(precision=53), nullable=False), sa.Column("note", sa.Text))
    after, _ = promise([op], before, md, recreated={(None, "orders")}, not_null_by_check=False)
    assert after["public.orders"]["columns"]["qty"] == {
        **before["public.orders"]["columns"]["qty"], "type": "double precision",
        "nullable": False}
