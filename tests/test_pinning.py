"""The upgrade hash (no database): what is in it, and what is not."""

from __future__ import annotations

from dataclasses import replace

from dsql_migrate.catalog import Column, Snapshot, Table
from dsql_migrate.fingerprint import table_fingerprint
from dsql_migrate.pinning import Pin, pins, run_digest, upgrade_hash
from dsql_migrate.plan import Plan, Step, StepKind

ITEMS = Table(schema="public", name="items",
              columns=(Column(name="id", type="bigint", nullable=False, position=1),))
LIVE = Snapshot(schemas=("public",), tables={"public.items": ITEMS})


def plan(sql: str, *, run: str = "0", premise: dict[str, object] | None = None) -> Plan:
    ddl = Step(id=1, kind=StepKind.DDL, summary="add qty", sql=(sql,), table="items")
    version = Step(id=2, kind=StepKind.DML, summary="record", sql=(
        "INSERT INTO alembic_version (version_num) VALUES ('a1')",), table="alembic_version",
        details={"alembic_version": True, "run": run})
    return Plan(profile="current", steps=(ddl, version),
                premise=premise if premise is not None else {
                    "public.items": {"predicted": "not what PostgreSQL says"}})


ADD = "ALTER TABLE items ADD COLUMN qty INTEGER"


def test_the_run_number_and_the_version_step_are_not_in_it() -> None:
    a = upgrade_hash(pins([("alembic upgrade <base> -> a1", plan(ADD, run="0"))], LIVE))
    b = upgrade_hash(pins([("alembic upgrade <base> -> a1", plan(ADD, run="3"))], LIVE))
    assert a == b and a.startswith("sha256:")


def test_the_steps_the_label_and_the_touched_tables_as_they_were_are_in_it() -> None:
    base = upgrade_hash(pins([("alembic upgrade <base> -> a1", plan(ADD))], LIVE))
    other_sql = plan("ALTER TABLE items ADD COLUMN qty BIGINT")
    assert upgrade_hash(pins([("alembic upgrade <base> -> a1", other_sql)], LIVE)) != base
    assert upgrade_hash(pins([("alembic upgrade <base> -> a2", plan(ADD))], LIVE)) != base
    wider = replace(ITEMS, columns=(*ITEMS.columns, Column(name="note", type="text",
                                                           nullable=True, position=2)))
    moved = Snapshot(schemas=("public",), tables={"public.items": wider})
    assert upgrade_hash(pins([("alembic upgrade <base> -> a1", plan(ADD))], moved)) != base
    unrelated = Snapshot(schemas=("public",), tables={
        "public.items": ITEMS, "public.other": Table(schema="public", name="other")})
    assert upgrade_hash(pins([("alembic upgrade <base> -> a1", plan(ADD))], unrelated)) == base


def test_a_plan_compiled_at_run_time_matches_through_its_live_premise() -> None:
    (pin,) = pins([("alembic upgrade <base> -> a1", plan(ADD))], LIVE)
    assert pin == Pin(pin.label, pin.digest, ("public.items",))
    live = plan(ADD, run="1", premise={"public.items": table_fingerprint(ITEMS)})
    assert run_digest(pin, live) == pin.digest
    drifted = plan(ADD, premise={"public.items": {"columns": {}}})
    assert run_digest(pin, drifted) != pin.digest


def test_a_table_an_earlier_revision_touched_is_the_upgrades_own_doing() -> None:
    first = plan(ADD)
    second = plan("CREATE INDEX ASYNC ix ON items (qty)",
                  premise={"public.items": {"predicted": "after the first revision"}})
    pinned = pins([("a", first), ("b", second)], LIVE)
    assert pinned[1].tables == ()
    live_second = replace(second, premise={"public.items": {"what": "PostgreSQL says now"}})
    assert run_digest(pinned[1], live_second) == pinned[1].digest
