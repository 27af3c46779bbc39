"""The guard's comparison before a destructive step, without a database: every object must be
as in the premise or as promised; the plan's own intermediate states (names freed with
``__old`` before a swap, keys dropped to be added again, a table renamed) are not drift."""

from __future__ import annotations

from typing import Any

from dsql_migrate.catalog import Column, Constraint, Index, Table
from dsql_migrate.fingerprint import RENAMED_FROM, table_fingerprint
from dsql_migrate.plan import Plan, Step, StepKind
from dsql_migrate.runner.guard import needs_check, tolerant_differences


def orders(*columns: Column, pk: str = "orders_pkey") -> dict[str, Any]:
    return table_fingerprint(Table(
        "public", "orders", columns=(Column("id", "bigint", False), *columns),
        constraints=(Constraint(pk, "primary_key", ("id",), "PRIMARY KEY (id)", index=pk),),
        indexes=(Index(pk, True, ("id",), constraint=pk,
                       definition=f"CREATE UNIQUE INDEX {pk} ON public.orders USING btree (id)"),
                 )))


QTY_INT = Column("qty", "integer", True)
QTY_BIG = Column("qty", "bigint", True)
SWAP = Step(id=2, kind=StepKind.SWAP, summary="swap", sql=("ALTER TABLE orders RENAME TO x",),
            table="orders")
DROP = Step(id=3, kind=StepKind.DDL, summary="drop backup", sql=("DROP TABLE orders__old",),
            table="orders", destructive=True)


def plan(*steps: Step, premise: dict[str, Any], promise: dict[str, Any]) -> Plan:
    return Plan(profile="current", steps=steps or (SWAP, DROP), premise=premise,
                promise=promise)


def texts(p: Plan, live: dict[str, Any]) -> list[str]:
    return [d.text() for d in tolerant_differences(p, live)]


def test_before_or_after_the_plan_s_change_is_fine_a_stranger_is_not() -> None:
    p = plan(premise={"public.orders": orders(QTY_INT)}, promise={"public.orders": orders(QTY_BIG)})
    assert texts(p, {"public.orders": orders(QTY_INT)}) == []
    assert texts(p, {"public.orders": orders(QTY_BIG)}) == []
    stranger = orders(QTY_BIG, Column("important_zz", "text", False))
    assert texts(p, {"public.orders": stranger}) == [
        "+ column important_zz text NOT NULL (not in the plan's source)"]
    third = orders(Column("qty", "numeric", True))
    assert texts(p, {"public.orders": third}) == [
        "~ column qty: type integer in the plan's source, numeric live"]


def test_names_freed_for_the_new_table_are_the_plan_s_doing() -> None:
    p = plan(premise={"public.orders": orders(QTY_INT)}, promise={"public.orders": orders(QTY_BIG)})
    freed = orders(QTY_INT, pk="orders_pkey__old")
    assert texts(p, {"public.orders": freed}) == []
    assert texts(p, {"public.orders": None}) == []  # mid-swap


def test_a_key_the_plan_drops_to_add_again_may_be_missing() -> None:
    child = table_fingerprint(Table(
        "public", "lines", columns=(Column("order_id", "bigint", True),),
        constraints=(Constraint("lines_order_fk", "foreign_key", ("order_id",),
                                "FOREIGN KEY (order_id) REFERENCES orders(id)",
                                ref_table="public.orders", ref_columns=("id",)),)))
    without = {**child, "constraints": {}}
    drop_fk = Step(id=1, kind=StepKind.DDL, summary="drop fk",
                   sql=('ALTER TABLE lines DROP CONSTRAINT "lines_order_fk"',), table="lines")
    p = plan(drop_fk, SWAP, DROP, premise={"public.lines": child},
             promise={"public.lines": child})
    assert texts(p, {"public.lines": without}) == []
    other = plan(premise={"public.lines": child}, promise={"public.lines": child})
    assert texts(other, {"public.lines": without}) == [
        "- constraint lines_order_fk FOREIGN KEY (order_id) REFERENCES orders(id) "
        "(in the plan's source; missing live)"]


def test_a_renamed_table_is_compared_with_its_old_premise() -> None:
    renamed = {**orders(QTY_INT), RENAMED_FROM: "public.orders"}
    p = plan(premise={"public.orders": orders(QTY_INT), "public.purchases": None},
             promise={"public.orders": None, "public.purchases": renamed})
    assert texts(p, {"public.orders": None, "public.purchases": orders(QTY_INT)}) == []
    assert texts(p, {"public.orders": orders(QTY_INT), "public.purchases": None}) == []
    assert texts(p, {"public.orders": None, "public.purchases": orders(
        QTY_INT, Column("zz", "text", True))}) == ["+ column zz text (not in the plan's source)"]


def test_only_drops_and_swaps_are_rechecked() -> None:
    assert needs_check(SWAP) and needs_check(DROP)
    assert not needs_check(Step(id=1, kind=StepKind.DDL, summary="", sql=("SELECT 1",)))


def test_index_definitions_of_a_renamed_table_name_the_new_table() -> None:
    renamed = {**orders(QTY_BIG), RENAMED_FROM: "public.orders"}
    p = plan(premise={"public.orders": orders(QTY_INT), "public.purchases": None},
             promise={"public.orders": None, "public.purchases": renamed})
    moved = table_fingerprint(Table(
        "public", "purchases", columns=(Column("id", "bigint", False), QTY_INT),
        constraints=(Constraint("orders_pkey", "primary_key", ("id",), "PRIMARY KEY (id)",
                                index="orders_pkey"),),
        indexes=(Index("orders_pkey", True, ("id",), constraint="orders_pkey",
                       definition="CREATE UNIQUE INDEX orders_pkey ON public.purchases USING "
                       "btree (id)"),)))
    assert texts(p, {"public.orders": None, "public.purchases": moved}) == []


def test_drops_in_the_plan_s_sql_are_read_with_quoting() -> None:
    from dsql_migrate.runner.guard import _dropped_by_steps

    steps = (Step(id=1, kind=StepKind.DDL, summary="", sql=(
        'ALTER TABLE "my table" DROP CONSTRAINT "Odd ""Name"""',
        "DROP INDEX public.Ix_Lower", "DROP VIEW IF EXISTS v_orders")),)
    p = Plan(profile="current", steps=steps)
    assert _dropped_by_steps(p) == {'Odd "Name"', "ix_lower", "v_orders"}


def test_a_key_to_a_table_the_plan_renames_names_the_new_table_live() -> None:
    """prefect d38c5e6a9115: block_spec is renamed to block_schema and recreated; block's key to
    it is moved to the new table at the swap and dropped later by the revision. Between the
    two, PostgreSQL prints the key as ``REFERENCES block_schema(id)``: the plan's rename, not
    drift. A key to some other table is still drift."""
    def child(ref: str) -> dict[str, Any]:
        return table_fingerprint(Table(
            "public", "block", columns=(Column("spec_id", "uuid", False),),
            constraints=(Constraint("fk_block__spec", "foreign_key", ("spec_id",),
                                    f"FOREIGN KEY (spec_id) REFERENCES {ref}(id) ON DELETE "
                                    "CASCADE", ref_table=f"public.{ref}", ref_columns=("id",)),)))
    spec = orders(QTY_INT)
    premise = {"public.block": child("block_spec"), "public.block_spec": spec,
               "public.block_schema": None}
    promise = {"public.block": {**child("block_spec"), "constraints": {}},
               "public.block_spec": None,
               "public.block_schema": {**spec, RENAMED_FROM: "public.block_spec"}}
    p = plan(premise=premise, promise=promise)
    live = {"public.block": child("block_schema"), "public.block_spec": None,
            "public.block_schema": spec}
    assert texts(p, live) == []
    elsewhere = {**live, "public.block": child("other")}
    assert [t.split(":")[0] for t in texts(p, elsewhere)] == ["~ constraint fk_block__spec"]


def test_a_column_the_plan_adds_in_place_and_recreates_later_may_be_part_way() -> None:
    """airflow 0003: a column added in place before the revision's UPDATE, made NOT NULL by
    the recreation after it. Before the swap it is as added (nullable): the plan's own state
    part-way, which the promise states exactly (PASSING); any other value is drift, and the
    end state must still be as promised."""
    from dsql_migrate.fingerprint import PASSING, diff

    added = Column("flag", "boolean", True)
    final = {"type": "boolean", "nullable": False, "default": None, "identity": None}
    promised = orders(Column("flag", "boolean", False))
    promised[PASSING] = {"columns": {"flag": {**final, "nullable": True}}}
    p = plan(premise={"public.orders": orders()}, promise={"public.orders": promised})
    assert texts(p, {"public.orders": orders(added)}) == []
    assert texts(p, {"public.orders": orders(Column("flag", "integer", True))}) == [
        "~ column flag: nullable false in the plan's source, true live; type boolean in the "
        "plan's source, integer live"]
    assert [d.text() for d in diff({"public.orders": promised},
                                   {"public.orders": orders(added)})] == [
        "~ column flag: nullable false in the plan's source, true live"]


def test_a_table_the_plan_drops_and_creates_again_may_be_missing_in_between() -> None:
    """prefect d481d5058a19: ``drop_table("worker")`` ... ``create_table("worker", <other
    columns>)`` in one revision. Between its DROP and its CREATE the table is missing, the
    plan's doing; a table the plan does not drop is still missed, and once there again it must
    be as promised (the end check)."""
    worker_old = orders(QTY_INT)
    worker_new = orders(Column("name", "text", True))
    steps = (Step(id=1, kind=StepKind.DDL, summary="drop", sql=("DROP TABLE orders",),
                  table="orders", destructive=True),
             Step(id=2, kind=StepKind.DDL, summary="drop pool", sql=("DROP TABLE pool",),
                  table="pool", destructive=True),
             Step(id=3, kind=StepKind.DDL, summary="create",
                  sql=("CREATE TABLE orders (id bigint PRIMARY KEY, name text)",),
                  table="orders"))
    p = plan(*steps, premise={"public.orders": worker_old, "public.pool": orders()},
             promise={"public.orders": worker_new, "public.pool": None})
    assert texts(p, {"public.orders": None, "public.pool": orders()}) == []
    assert texts(p, {"public.orders": worker_new, "public.pool": None}) == []
    kept = plan(*steps[1:], premise={"public.orders": worker_old, "public.pool": orders()},
                promise={"public.orders": worker_old, "public.pool": None})
    assert texts(kept, {"public.orders": None, "public.pool": orders()}) == [
        "- table public.orders (in the plan's source; missing live)"]
