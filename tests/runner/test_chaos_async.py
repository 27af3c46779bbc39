"""On the emulator: OCC chaos and closed connections; async index jobs that fail."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from runner_plans import checksum, create_source, recreate_plan

from dsql_migrate.local import LocalInstance
from dsql_migrate.local.proxy import Faults
from dsql_migrate.plan import Plan, Step, StepKind
from dsql_migrate.planner.indexes import valid_index_query
from dsql_migrate.runner import RetryPolicy, Runner, RunOptions, Session, StateStore, StepFailed
from dsql_migrate.runner.events import Event


def _runner(url: str, schema: str, events: list[Event], **options: Any) -> Runner:
    session = Session(lambda: psycopg.connect(url, autocommit=True),
                      retry=RetryPolicy(attempts=30, base_seconds=0.01, cap_seconds=0.2),
                      on_retry=lambda what, n, exc: events.append(Event("retry", what)))
    return Runner(session, store=StateStore(schema), options=RunOptions(**options),
                  on_event=events.append)


def test_chaos_occ_failures_and_closed_connections(
        emulator: LocalInstance, has_jobs: bool, target_url: str,
        raw_conn: psycopg.Connection[Any], state_schema: str, table_name: str) -> None:
    if not has_jobs:
        pytest.skip("the target has no sys.jobs: fault injection needs the DSQL emulator")
    create_source(raw_conn, table_name, 20_000)
    before = checksum(raw_conn, table_name)
    plan = recreate_plan(table_name, rows=20_000, batch_size=500, unique_index=True)
    events: list[Event] = []
    runner = _runner(target_url, state_schema, events, allow_destructive=True,
                     async_poll_seconds=0.2)
    emulator.set_faults(Faults(commit_failure_rate=0.2, max_connection_age=2.0, seed=7))
    try:
        result = runner.apply(plan)
    finally:
        emulator.set_faults(Faults(), transaction_age=300)
        runner.session.close()
    assert result.status == "done"
    assert any(e.kind == "retry" for e in events)
    assert checksum(raw_conn, table_name) == before
    batches = raw_conn.execute(
        f'SELECT count(*), sum(rows), count(DISTINCT upto_key) FROM "{state_schema}".batches'
    ).fetchone()
    assert batches == (40, 20_000, 40)
    assert raw_conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)",
                            (f'"{table_name}_note_key"',)).fetchone() == (True,)


def test_failed_unique_index_is_dropped_and_the_step_fails(
        has_jobs: bool, target_url: str, raw_conn: psycopg.Connection[Any], state_schema: str,
        table_name: str) -> None:
    if not has_jobs:
        pytest.skip("the target has no sys.jobs (async jobs need the DSQL emulator)")
    raw_conn.execute(f'CREATE TABLE "{table_name}" (id bigint PRIMARY KEY, email text)')
    raw_conn.execute(f"INSERT INTO \"{table_name}\" VALUES (1, 'a'), (2, 'a'), (3, 'b')")
    index = f"{table_name}_email_key"
    plan = Plan(profile="current", steps=(
        Step(1, StepKind.ASYNC_INDEX, "unique email",
             (f'CREATE UNIQUE INDEX ASYNC "{index}" ON "{table_name}" (email)',),
             details={"index": index, "check": valid_index_query(index, None)}),))
    events: list[Event] = []
    runner = _runner(target_url, state_schema, events, async_poll_seconds=0.1)
    try:
        with pytest.raises(StepFailed) as info:
            runner.apply(plan)
    finally:
        runner.session.close()
    assert "failed" in info.value.message and "was dropped" in info.value.message
    assert raw_conn.execute("SELECT to_regclass(%s)", (f'"{index}"',)).fetchone() == (None,)
    # the duplicate is writable again: no invalid index is left enforcing uniqueness
    raw_conn.execute(f"INSERT INTO \"{table_name}\" VALUES (4, 'b')")
    row = raw_conn.execute(f'SELECT status, error FROM "{state_schema}".steps').fetchone()
    assert row is not None and row[0] == "failed" and "job" in row[1]
    raw_conn.execute(f"DELETE FROM \"{table_name}\" WHERE id IN (2, 4)")
    again = _runner(target_url, state_schema, events, async_poll_seconds=0.1)
    try:
        assert again.apply(plan).steps_run == [1]
    finally:
        again.session.close()
    assert raw_conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)",
                            (f'"{index}"',)).fetchone() == (True,)


def test_check_constraint_validated_by_an_async_job(
        has_jobs: bool, target_url: str, raw_conn: psycopg.Connection[Any], state_schema: str,
        table_name: str) -> None:
    if not has_jobs:
        pytest.skip("the target has no sys.jobs (async jobs need the DSQL emulator)")
    raw_conn.execute(f'CREATE TABLE "{table_name}" (id bigint PRIMARY KEY, qty integer)')
    raw_conn.execute(f'INSERT INTO "{table_name}" SELECT g, g FROM generate_series(1, 500) g')
    check = f"{table_name}_qty_positive"
    plan = Plan(profile="current", steps=(
        Step(1, StepKind.DDL, "add check not valid",
             (f'ALTER TABLE "{table_name}" ADD CONSTRAINT "{check}" CHECK (qty > 0) NOT VALID',)),
        Step(2, StepKind.ASYNC_VALIDATE, "validate",
             (f'ALTER TABLE ASYNC "{table_name}" VALIDATE CONSTRAINT "{check}"',)),
    ))
    events: list[Event] = []
    runner = _runner(target_url, state_schema, events, async_poll_seconds=0.1)
    try:
        assert runner.apply(plan).steps_run == [1, 2]
    finally:
        runner.session.close()
    assert any(e.kind == "async.submitted" for e in events)
    assert raw_conn.execute("SELECT convalidated FROM pg_constraint WHERE conname = %s",
                            (check,)).fetchone() == (True,)
    job = raw_conn.execute(f'SELECT job_id FROM "{state_schema}".steps WHERE step = 2'
                           ).fetchone()
    assert job is not None and job[0]


class _LostAnswer(Session):
    """A session whose async submit goes through but whose answer is lost: the submit runs
    again, as after a connection that dropped right after the server accepted it."""

    def autocommit(self, what: str, fn: Any, **kw: Any) -> Any:
        if what.endswith(" submit"):
            fn(self.conn)
        return super().autocommit(what, fn, **kw)


def test_a_submit_whose_answer_was_lost_adopts_its_job(
        has_jobs: bool, target_url: str, raw_conn: psycopg.Connection[Any], state_schema: str,
        table_name: str) -> None:
    if not has_jobs:
        pytest.skip("the target has no sys.jobs (async jobs need the DSQL emulator)")
    raw_conn.execute(f'CREATE TABLE "{table_name}" (id bigint PRIMARY KEY, email text)')
    raw_conn.execute(f"INSERT INTO \"{table_name}\" SELECT g, 'u' || g FROM "
                     "generate_series(1, 2000) g")
    index = f"{table_name}_email_key"
    plan = Plan(profile="current", steps=(
        Step(1, StepKind.ASYNC_INDEX, "unique email",
             (f'CREATE UNIQUE INDEX ASYNC "{index}" ON "{table_name}" (email)',),
             details={"index": index, "check": valid_index_query(index, None)}),))
    session = _LostAnswer(lambda: psycopg.connect(target_url, autocommit=True))
    try:
        result = Runner(session, store=StateStore(state_schema),
                        options=RunOptions(async_poll_seconds=0.05)).apply(plan)
    finally:
        session.close()
    assert result.steps_run == [1]
    assert raw_conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)",
                            (f'"{index}"',)).fetchone() == (True,)
