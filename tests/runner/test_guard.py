"""The runner checks a plan's premise and promise (DESIGN.md §3.2a): drift before the first
step and before every destructive step refuses (exit 5) with a readable difference; an end
state other than the promised one fails the run (exit 1) and names the object; "already
applied" is answered only while the promised end state is there.

The plans are made by the planner from ops (so they carry a premise and a promise) against the
session emulator; drift is introduced between steps by an event listener on the direct
PostgreSQL connection (the DSQL rules would refuse an ``ADD COLUMN ... NOT NULL``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic.operations import ops

from dsql_migrate.catalog import snapshot
from dsql_migrate.errors import ExitCode
from dsql_migrate.plan import Plan, StepKind
from dsql_migrate.planner import plan as make_plan
from dsql_migrate.profiles import CURRENT
from dsql_migrate.runner import Runner, RunOptions, Session, StateStore
from dsql_migrate.runner.events import Event
from dsql_migrate.runner.guard import ChangedSinceApplied, DriftRefused, PromiseBroken

pytestmark = pytest.mark.integration

ROWS = 1000


@pytest.fixture
def table(raw_url: str, table_name: str) -> Iterator[str]:
    """``<t>(id int PRIMARY KEY, v int)`` with 1,000 rows."""
    with psycopg.connect(raw_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table_name} (id int PRIMARY KEY, v int)")
        conn.execute(f"INSERT INTO {table_name} SELECT g, g * 2 FROM generate_series(1, {ROWS}) g")
    yield table_name


def bigint_plan(url: str, name: str) -> Plan:
    """The planner's plan for ``v int -> bigint``: a recreation (copy, verify, swap, drop)."""
    desired = sa.MetaData()
    sa.Table(name, desired, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("v", sa.BigInteger))
    op = ops.AlterColumnOp(name, "v", modify_type=sa.BigInteger(), existing_type=sa.Integer())
    with psycopg.connect(url, autocommit=True) as conn:
        live = snapshot(conn)
    return make_plan([op], live, desired, CURRENT)


def add_column_plan(url: str, name: str) -> Plan:
    desired = sa.MetaData()
    sa.Table(name, desired, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("v", sa.Integer), sa.Column("note", sa.Text))
    op = ops.AddColumnOp(name, sa.Column("note", sa.Text))
    with psycopg.connect(url, autocommit=True) as conn:
        live = snapshot(conn)
    return make_plan([op], live, desired, CURRENT)


def runner(url: str, schema: str, on_event: Callable[[Event], None] = lambda e: None,
           **options: Any) -> Runner:
    session = Session(lambda: psycopg.connect(url, autocommit=True))
    return Runner(session, store=StateStore(schema), options=RunOptions(**options),
                  on_event=on_event)


def on_step_done(step_id: int, action: Callable[[], None]) -> Callable[[Event], None]:
    def listen(event: Event) -> None:
        if event.kind == "step.done" and event.step == step_id:
            action()
    return listen


def raw(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def scalar(url: str, query: str) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    return None if row is None else row[0]


def add_important_column(url: str, name: str) -> None:
    raw(url, f"ALTER TABLE {name} ADD COLUMN important_zz text NOT NULL DEFAULT ''",
        f"UPDATE {name} SET important_zz = 'keep ' || id",
        f"ALTER TABLE {name} ALTER COLUMN important_zz DROP DEFAULT")


def test_plan_carries_premise_and_promise(dsql_url: str, table: str) -> None:
    plan = bigint_plan(dsql_url, table)
    key = f"public.{table}"
    assert plan.premise is not None and plan.promise is not None
    assert plan.premise[key]["columns"]["v"]["type"] == "integer"
    assert plan.promise[key]["columns"]["v"]["type"] == "bigint"
    assert plan.promise[key]["columns"]["id"] == plan.premise[key]["columns"]["id"]
    again = Plan.from_json(plan.to_json())
    assert again.hash == plan.hash and again.premise == plan.premise


def test_drift_before_the_first_step_refuses_and_runs_nothing(
        dsql_url: str, raw_url: str, table: str, state_schema: str) -> None:
    plan = bigint_plan(dsql_url, table)
    add_important_column(raw_url, table)  # the plan is applied to a database that has it

    with pytest.raises(DriftRefused) as caught:
        runner(dsql_url, state_schema, allow_destructive=True).apply(plan)
    assert caught.value.exit_code == ExitCode.REFUSED
    assert "+ column important_zz text NOT NULL (not in the plan's source)" in \
        caught.value.message
    assert "nothing was run" in caught.value.message
    assert "plan" in (caught.value.hint or "")
    assert scalar(raw_url, f"SELECT count(important_zz) FROM {table}") == ROWS
    assert scalar(raw_url, f"SELECT to_regclass('{table}__new')") is None


def test_drift_between_copy_and_swap_refuses_the_swap(
        dsql_url: str, raw_url: str, table: str, state_schema: str) -> None:
    plan = bigint_plan(dsql_url, table)
    copy = next(s for s in plan.steps if s.kind == StepKind.COPY)
    swap = next(s for s in plan.steps if s.kind == StepKind.SWAP)
    listen = on_step_done(copy.id, lambda: add_important_column(raw_url, table))

    with pytest.raises(DriftRefused) as caught:
        runner(dsql_url, state_schema, listen, allow_destructive=True).apply(plan)
    assert f"step {swap.id}" in caught.value.message
    assert "+ column important_zz text NOT NULL" in caught.value.message
    # the source table kept its name, its new column and every value
    assert scalar(raw_url, f"SELECT count(important_zz) FROM {table}") == ROWS
    assert scalar(raw_url, f"SELECT to_regclass('{table}__old')") is None


def test_drift_after_the_swap_refuses_the_backup_drop(
        dsql_url: str, raw_url: str, table: str, state_schema: str) -> None:
    plan = bigint_plan(dsql_url, table)
    drop = next(s for s in plan.steps if s.destructive)
    before_drop = drop.id - 1
    listen = on_step_done(before_drop, lambda: raw(
        raw_url, f"CREATE INDEX {table}_sneaky ON {table} (v)"))

    with pytest.raises(DriftRefused) as caught:
        runner(dsql_url, state_schema, listen, allow_destructive=True).apply(plan)
    assert f"step {drop.id}" in caught.value.message
    assert f"+ index {table}_sneaky" in caught.value.message
    assert scalar(raw_url, f"SELECT to_regclass('{table}__old') IS NOT NULL") is True

    # the plan's own changes are expected by then: only the stranger is reported
    assert "column v" not in caught.value.message


def test_promise_broken_fails_the_run_and_names_the_object(
        dsql_url: str, raw_url: str, table: str, state_schema: str) -> None:
    plan = add_column_plan(dsql_url, table)
    last = plan.steps[-1].id
    listen = on_step_done(last, lambda: raw(
        raw_url, f"ALTER TABLE {table} ALTER COLUMN note TYPE varchar(10)"))

    with pytest.raises(PromiseBroken) as caught:
        runner(dsql_url, state_schema, listen).apply(plan)
    assert caught.value.exit_code == ExitCode.FAILED
    assert "~ column note: type text in the plan's promise, character varying(10) live" in \
        caught.value.message
    with psycopg.connect(raw_url, autocommit=True) as conn:
        status = conn.execute(f'SELECT status FROM "{state_schema}".plans').fetchone()
    assert status == ("failed",)


def test_promise_holds_after_a_recreation(dsql_url: str, raw_url: str, table: str,
                                         state_schema: str) -> None:
    events: list[Event] = []
    result = runner(dsql_url, state_schema, events.append, allow_destructive=True).apply(
        bigint_plan(dsql_url, table))
    assert result.status == "done"
    assert [e.kind for e in events].count("guard.promise") == 1
    assert scalar(raw_url, f"SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                  f"WHERE attrelid = '{table}'::regclass AND attname = 'v'") == "bigint"


def test_already_applied_only_while_the_end_state_is_there(
        dsql_url: str, raw_url: str, table: str, state_schema: str) -> None:
    plan = bigint_plan(dsql_url, table)
    assert runner(dsql_url, state_schema, allow_destructive=True).apply(plan).status == "done"
    assert runner(dsql_url, state_schema).apply(plan).status == "nothing"

    raw(raw_url, f"ALTER TABLE {table} ALTER COLUMN v TYPE integer")  # reverted by hand
    with pytest.raises(ChangedSinceApplied) as caught:
        runner(dsql_url, state_schema).apply(plan)
    assert caught.value.exit_code == ExitCode.REFUSED
    assert "schema changed since" in caught.value.message
    assert "~ column v: type bigint in the plan's promise, integer live" in caught.value.message
