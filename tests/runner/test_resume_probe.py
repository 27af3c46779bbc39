"""On resume, every step that is not done asks its kind's postcondition probe before it runs
(issue 13, DESIGN.md §3.3): a step whose effect is already there is marked done, not run again."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from dsql_migrate.plan import Plan, Step, StepKind
from dsql_migrate.runner import StepFailed
from dsql_migrate.runner.events import Event
from dsql_migrate.runner.steps import implementation, registered

pytestmark = pytest.mark.integration


def _state(conn: psycopg.Connection[Any], schema: str, plan: Plan) -> dict[int, tuple[Any, ...]]:
    rows = conn.execute(f'SELECT step, status, attempts FROM "{schema}".steps '
                        "WHERE plan_hash = %s", (plan.hash,)).fetchall()
    return {int(r[0]): tuple(r[1:]) for r in rows}


def _killed_in_step_1(runner: Any, conn: psycopg.Connection[Any], schema: str,
                      plan: Plan) -> None:
    """What a runner killed between step 1's DDL and its done mark leaves in the state."""
    runner.store.ensure(runner.session)
    with conn.transaction():
        runner.store.insert_plan(conn, plan, label=None, run_id="dead")
        runner.store.insert_steps(conn, plan.hash, plan.steps)
        conn.execute(f'UPDATE "{schema}".steps SET status = %s, attempts = 1 '
                     "WHERE plan_hash = %s AND step = 1", ("running", plan.hash))


def test_every_step_kind_has_an_implementation() -> None:
    assert set(registered()) == set(StepKind)
    assert implementation(StepKind.DDL) is implementation(StepKind.DDL)


def test_a_later_step_already_done_is_marked_done_on_resume(
        make_runner: Any, raw_conn: psycopg.Connection[Any], state_schema: str,
        table_name: str) -> None:
    t = f'"{table_name}"'
    plan = Plan(profile="current", steps=(
        Step(1, StepKind.DDL, "create", (f"CREATE TABLE {t} (id bigint PRIMARY KEY)",)),
        Step(2, StepKind.DDL, "add column", (f"ALTER TABLE {t} ADD COLUMN qty integer",)),
        Step(3, StepKind.DDL, "add another column", (f"ALTER TABLE {t} ADD COLUMN note text",)),
        Step(4, StepKind.DML, "seed", (f"INSERT INTO {t} VALUES (1, 5, 'a'), (2, 7, 'b')",)),
    ))
    runner = make_runner()
    # steps 1 and 2 took effect (a run killed before it recorded them), step 3 did not
    raw_conn.execute(f"CREATE TABLE {t} (id bigint PRIMARY KEY)")
    raw_conn.execute(f"ALTER TABLE {t} ADD COLUMN qty integer")
    _killed_in_step_1(runner, raw_conn, state_schema, plan)
    events: list[Event] = []
    result = make_runner(events).apply(plan)
    assert result.status == "done"
    assert result.steps_run == [1, 3, 4] and result.steps_skipped == [2]
    skip = next(e for e in events if e.kind == "step.skip")
    assert skip.step == 2 and "already in place" in skip.message and "qty" in skip.message
    assert all(s[0] == "done" for s in _state(raw_conn, state_schema, plan).values())
    assert raw_conn.execute(f"SELECT sum(qty) FROM {t}").fetchone() == (12,)


def test_probe_is_asked_at_the_steps_turn_not_before(
        make_runner: Any, raw_conn: psycopg.Connection[Any], state_schema: str,
        table_name: str) -> None:
    """A drop's postcondition (the table is gone) holds before an earlier step creates the table:
    asked up front it would skip the drop and leave the table behind."""
    t, extra = f'"{table_name}"', f'"{table_name}__old"'
    plan = Plan(profile="current", steps=(
        Step(1, StepKind.DDL, "create", (f"CREATE TABLE {t} (id bigint PRIMARY KEY)",)),
        Step(2, StepKind.DDL, "create backup", (f"CREATE TABLE {extra} (id bigint)",)),
        Step(3, StepKind.DDL, "drop backup", (f"DROP TABLE {extra}",), destructive=True),
    ))
    runner = make_runner()
    raw_conn.execute(f"CREATE TABLE {t} (id bigint PRIMARY KEY)")
    _killed_in_step_1(runner, raw_conn, state_schema, plan)
    result = make_runner(allow_destructive=True).apply(plan)
    assert result.steps_run == [1, 2, 3]
    assert raw_conn.execute("SELECT to_regclass(%s)", (extra,)).fetchone() == (None,)


def test_a_new_plan_does_not_take_an_existing_object_for_its_own(
        make_runner: Any, raw_conn: psycopg.Connection[Any], table_name: str) -> None:
    """Only a resumed plan asks the probes: on a fresh plan an object that is already there was
    not made by this plan, and the step fails as it would on PostgreSQL."""
    t = f'"{table_name}"'
    raw_conn.execute(f"CREATE TABLE {t} (id bigint PRIMARY KEY)")
    plan = Plan(profile="current", steps=(
        Step(1, StepKind.DDL, "create", (f"CREATE TABLE {t} (id bigint PRIMARY KEY)",)),))
    with pytest.raises(StepFailed) as info:
        make_runner().apply(plan)
    assert "already exists" in info.value.message


def test_a_later_async_index_already_valid_is_not_built_again(
        has_jobs: bool, make_runner: Any, raw_conn: psycopg.Connection[Any], state_schema: str,
        table_name: str) -> None:
    if not has_jobs:
        pytest.skip("the target has no sys.jobs (async jobs need the DSQL emulator)")
    t, index = f'"{table_name}"', f"{table_name}_v"
    plan = Plan(profile="current", steps=(
        Step(1, StepKind.DDL, "create", (f"CREATE TABLE {t} (id bigint PRIMARY KEY, v int)",)),
        Step(2, StepKind.ASYNC_INDEX, "index", (f'CREATE INDEX ASYNC "{index}" ON {t} (v)',)),
    ))
    runner = make_runner()
    raw_conn.execute(f"CREATE TABLE {t} (id bigint PRIMARY KEY, v int)")
    raw_conn.execute(f'CREATE INDEX "{index}" ON {t} (v)')
    _killed_in_step_1(runner, raw_conn, state_schema, plan)
    events: list[Event] = []
    result = make_runner(events).apply(plan)
    assert result.steps_skipped == [2]
    assert not [e for e in events if e.kind.startswith("async.")]
