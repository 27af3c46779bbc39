"""Step execution on a real server: DDL, DML, verify, batched copy, resume, refusals."""

from __future__ import annotations

import dataclasses
import datetime
import json
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from runner_plans import (
    assert_batches_exactly_once,
    checksum,
    create_source,
    recreate_plan,
    with_check_in_copy,
)

from dsql_migrate.errors import ConfigError, ConnectError, ExitCode
from dsql_migrate.plan import Plan, Step, StepKind
from dsql_migrate.runner import (
    DestructiveRefused,
    LeaseLost,
    PlanConflict,
    Runner,
    RunOptions,
    StateStore,
    StepFailed,
    VerificationFailed,
)
from dsql_migrate.runner.api import read_status, unfinished_plan
from dsql_migrate.runner.events import Event
from dsql_migrate.runner.session import Session
from dsql_migrate.runner.state import encode_key


def _state(raw_conn: psycopg.Connection[Any], schema: str, plan: Plan) -> dict[int, Any]:
    rows = raw_conn.execute(
        f'SELECT step, status, attempts, statements_done, rows_done, batches_done, figures, '
        f'error, error_sql FROM "{schema}".steps WHERE plan_hash = %s', (plan.hash,)).fetchall()
    return {r[0]: r for r in rows}


def _simple_plan(table: str) -> Plan:
    return Plan(profile="current", steps=(
        Step(1, StepKind.DDL, "create", (f'CREATE TABLE "{table}" (id bigint PRIMARY KEY, '
                                         "label text)",)),
        Step(2, StepKind.DDL, "add column", (f'ALTER TABLE "{table}" ADD COLUMN qty integer',)),
        Step(3, StepKind.DML, "seed", (f"INSERT INTO \"{table}\" VALUES (1, 'a', 5), "
                                       "(2, 'b', 7)",)),
        Step(4, StepKind.VERIFY, "two rows", (f'SELECT count(*) AS n, count(*) = 2 AS ok '
                                              f'FROM "{table}"',)),
    ))


def test_state_tables_are_created_once_with_dsql_legal_types(
        make_runner: Any, raw_conn: psycopg.Connection[Any], state_schema: str) -> None:
    runner = make_runner()
    assert runner.store.ensure(runner.session) is True
    assert runner.store.ensure(runner.session) is False
    types = raw_conn.execute(
        "SELECT DISTINCT data_type FROM information_schema.columns WHERE table_schema = %s",
        (state_schema,)).fetchall()
    assert {t[0] for t in types} <= {"text", "integer", "bigint", "boolean",
                                     "timestamp with time zone"}
    tables = raw_conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
        (state_schema,)).fetchall()
    assert {t[0] for t in tables} == {"plans", "steps", "lanes", "batches", "locks"}
    defaults = raw_conn.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = %s AND "
        "column_default LIKE 'nextval%%'", (state_schema,)).fetchone()
    assert defaults == (0,)


def test_ddl_dml_verify_plan_runs_once(make_runner: Any, raw_conn: psycopg.Connection[Any],
                                       state_schema: str, table_name: str) -> None:
    plan = _simple_plan(table_name)
    events: list[Event] = []
    result = make_runner(events).apply(plan)
    assert result.status == "done" and result.steps_run == [1, 2, 3, 4]
    assert raw_conn.execute(f'SELECT sum(qty) FROM "{table_name}"').fetchone() == (12,)
    state = _state(raw_conn, state_schema, plan)
    assert all(r[1] == "done" and r[2] == 1 for r in state.values())
    assert '"n": 2' in state[4][6]
    assert [e.kind for e in events].count("step.done") == 4
    again = make_runner().apply(plan)
    assert again.status == "nothing"
    assert raw_conn.execute(f'SELECT count(*) FROM "{table_name}"').fetchone() == (2,)


def test_running_ddl_that_took_effect_is_not_run_again(
        make_runner: Any, raw_conn: psycopg.Connection[Any], raw_url: str, state_schema: str,
        table_name: str) -> None:
    plan = _simple_plan(table_name)
    runner = make_runner()
    runner.store.ensure(runner.session)
    raw_conn.execute(f'CREATE TABLE "{table_name}" (id bigint PRIMARY KEY, label text)')
    # what a runner killed between the DDL and its done mark leaves behind
    with raw_conn.transaction():
        runner.store.insert_plan(raw_conn, plan, label=None, run_id="dead")
        runner.store.insert_steps(raw_conn, plan.hash, plan.steps)
        raw_conn.execute(f'UPDATE "{state_schema}".steps SET status = %s, attempts = 1 '
                         "WHERE step = 1", ("running",))
    result = make_runner().apply(plan)
    assert result.steps_run == [1, 2, 3, 4]
    state = _state(raw_conn, state_schema, plan)
    assert state[1][1] == "done" and state[1][3] == 1 and state[1][2] == 2


def test_failed_statement_marks_the_step_failed_with_its_sql_and_resumes(
        make_runner: Any, raw_conn: psycopg.Connection[Any], state_schema: str,
        table_name: str) -> None:
    plan = Plan(profile="current", steps=(
        Step(1, StepKind.DDL, "create", (f'CREATE TABLE "{table_name}" (id bigint PRIMARY KEY)',)),
        Step(2, StepKind.DML, "insert", (f'INSERT INTO "{table_name}" SELECT id FROM '
                                         f'"{table_name}_missing"',)),
    ))
    with pytest.raises(StepFailed) as info:
        make_runner().apply(plan)
    assert "does not exist" in info.value.message and "dsql-migrate apply" in str(info.value)
    state = _state(raw_conn, state_schema, plan)
    assert state[1][1] == "done" and state[2][1] == "failed"
    assert state[2][8] is not None and f"{table_name}_missing" in state[2][8]
    raw_conn.execute(f'CREATE TABLE "{table_name}_missing" (id bigint)')
    raw_conn.execute(f'INSERT INTO "{table_name}_missing" VALUES (1), (2)')
    try:
        result = make_runner().apply(plan)
        assert result.steps_run == [2] and result.steps_skipped == [1]
        assert raw_conn.execute(f'SELECT count(*) FROM "{table_name}"').fetchone() == (2,)
    finally:
        raw_conn.execute(f'DROP TABLE "{table_name}_missing"')


def test_destructive_step_needs_permission(make_runner: Any, raw_conn: psycopg.Connection[Any],
                                           state_schema: str, table_name: str) -> None:
    create_source(raw_conn, table_name, 2_500)
    before = checksum(raw_conn, table_name)
    plan = recreate_plan(table_name, rows=2_500, batch_size=400)
    with pytest.raises(DestructiveRefused) as info:
        make_runner().apply(plan)
    assert info.value.exit_code == ExitCode.REFUSED
    assert raw_conn.execute(f"SELECT to_regclass('\"{table_name}__old\"') IS NOT NULL"
                            ).fetchone() == (True,)
    result = make_runner(allow_destructive=True).apply(plan)
    assert result.steps_run == [6]
    assert checksum(raw_conn, table_name) == before
    assert raw_conn.execute(
        "SELECT data_type FROM information_schema.columns WHERE table_name = %s AND "
        "column_name = 'v'", (table_name,)).fetchone() == ("bigint",)
    state = _state(raw_conn, state_schema, plan)
    assert state[3][4] == 2_500 and state[3][5] == 7
    assert assert_batches_exactly_once(raw_conn, state_schema, plan.hash, 3, 2_500) == 1


def test_failed_verification_stops_before_the_swap(
        make_runner: Any, raw_conn: psycopg.Connection[Any], state_schema: str,
        table_name: str) -> None:
    create_source(raw_conn, table_name, 3_000)
    plan = recreate_plan(table_name, rows=3_000, batch_size=500)
    events: list[Event] = []
    runner = make_runner(events, allow_destructive=True)

    def write_during_copy(event: Event) -> None:
        events.append(event)
        if event.kind == "batch" and event.data["batch"] == 2:
            # a write to the source behind the cursor: the copy cannot see it
            raw_conn.execute(f'UPDATE "{table_name}" SET note = \'changed\' WHERE id = 3')
    runner.emit = write_during_copy
    with pytest.raises(VerificationFailed) as info:
        runner.apply(plan)
    assert "source_rows=3000" in info.value.message and "ok=False" in info.value.message
    assert raw_conn.execute(f"SELECT note FROM \"{table_name}\" WHERE id = 3").fetchone() == (
        "changed",)
    assert raw_conn.execute(f"SELECT to_regclass('\"{table_name}__old\"')").fetchone() == (None,)
    state = _state(raw_conn, state_schema, plan)
    assert state[4][1] == "failed" and state[5][1] == "pending"
    assert "target_rows" in state[4][6]
    # it stays refused on the next run while the source differs
    with pytest.raises(VerificationFailed):
        make_runner(allow_destructive=True).apply(plan)


def test_a_different_plan_is_refused_while_one_is_unfinished(
        make_runner: Any, state_schema: str, table_name: str) -> None:
    first = Plan(profile="current", steps=(
        Step(1, StepKind.DDL, "create", (f'CREATE TABLE "{table_name}" (id bigint PRIMARY KEY)',)),
        Step(2, StepKind.DDL, "drop", (f'DROP TABLE "{table_name}"',), destructive=True),
    ))
    with pytest.raises(DestructiveRefused):
        make_runner().apply(first)
    other = _simple_plan(table_name + "_b")
    with pytest.raises(PlanConflict) as info:
        make_runner().apply(other)
    assert info.value.exit_code == ExitCode.REFUSED and first.hash in info.value.message


def test_batches_shrink_on_a_limit_error(make_runner: Any, raw_conn: psycopg.Connection[Any],
                                         raw_url: str, state_schema: str,
                                         table_name: str) -> None:
    create_source(raw_conn, table_name, 1_200)
    guard = f"{table_name}_guard"
    raw_conn.execute(f"""CREATE FUNCTION "{guard}"(n bigint) RETURNS boolean LANGUAGE plpgsql
        AS $$ BEGIN IF n > 150 THEN RAISE EXCEPTION USING ERRCODE = '54000',
        MESSAGE = 'transaction row limit exceeded'; END IF; RETURN true; END $$""")
    plan = recreate_plan(table_name, rows=1_200, batch_size=1000, drop_backup=False)
    plan = with_check_in_copy(plan, guard, "count(*)")
    events: list[Event] = []
    try:
        make_runner(events).apply(plan)
    finally:
        raw_conn.execute(f'DROP FUNCTION IF EXISTS "{guard}"(bigint) CASCADE')
    shrinks = [e.data for e in events if e.kind == "batch.shrink"]
    assert shrinks and shrinks[0] == {"from": 1000, "to": 500, "lane": 0}
    assert all(e.data["batch_size"] <= 150 for e in events if e.kind == "batch")
    assert checksum(raw_conn, table_name)[0] == 1_200
    # the guard's SELECT returns a row per batch: rows written only are counted
    assert [e.data["rows_done"] for e in events if e.kind == "batch"][-1] == 1_200


def test_lost_connection_mid_run_reconnects(make_runner: Any, raw_conn: psycopg.Connection[Any],
                                            state_schema: str, table_name: str) -> None:
    create_source(raw_conn, table_name, 2_000)
    before = checksum(raw_conn, table_name)
    plan = recreate_plan(table_name, rows=2_000, batch_size=300)
    runner = make_runner(allow_destructive=True)
    killed: list[int] = []

    def kill_connection(event: Event) -> None:
        if event.kind == "batch" and event.data["batch"] in (2, 4):
            pid = runner.session.conn.info.backend_pid
            raw_conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
            killed.append(pid)
    runner.emit = kill_connection
    runner.apply(plan)
    assert len(killed) == 2 and runner.session.reconnects >= 2
    assert checksum(raw_conn, table_name) == before
    batches = raw_conn.execute(f'SELECT sum(rows), count(*) FROM "{state_schema}".batches'
                               ).fetchone()
    assert batches == (2_000, 7)


def test_session_retries_serialization_failures(raw_url: str) -> None:
    session = Session(lambda: psycopg.connect(raw_url, autocommit=True))
    calls: list[int] = []

    def conflict_twice(conn: psycopg.Connection[Any]) -> int:
        calls.append(1)
        if len(calls) <= 2:
            conn.execute("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40001', "
                         "MESSAGE = 'mutation conflicts with another transaction (OC000)'; "
                         "END $$")
        return len(calls)
    try:
        assert session.transaction("test", conflict_twice) == 3
    finally:
        session.close()


def test_state_store_rejects_odd_schema_names() -> None:
    with pytest.raises(Exception, match="invalid state schema"):
        StateStore('x"; DROP TABLE y; --')


def test_runner_whose_lease_was_taken_over_stops_before_its_next_write(
        make_runner: Any, raw_conn: psycopg.Connection[Any], state_schema: str,
        table_name: str) -> None:
    create_source(raw_conn, table_name, 3_000)
    plan = recreate_plan(table_name, rows=3_000, batch_size=500, drop_backup=False)
    runner = make_runner()

    def take_over(event: Event) -> None:
        if event.kind == "batch" and event.data["batch"] == 2:
            raw_conn.execute(f'UPDATE "{state_schema}".locks SET run_id = %s, '
                             "fencing_token = fencing_token + 1", ("intruder",))
    runner.emit = take_over
    with pytest.raises(LeaseLost) as info:
        runner.apply(plan)
    assert info.value.exit_code == ExitCode.LOCKED and "intruder" in info.value.message
    batches = raw_conn.execute(f'SELECT count(*) FROM "{state_schema}".batches').fetchone()
    assert batches == (2,)
    assert raw_conn.execute(f'SELECT count(*) FROM "{table_name}__new"').fetchone() == (1_000,)


def test_resync_verification_copies_changed_ranges_again(
        make_runner: Any, raw_conn: psycopg.Connection[Any], state_schema: str,
        table_name: str) -> None:
    create_source(raw_conn, table_name, 2_000)
    plan = recreate_plan(table_name, rows=2_000, batch_size=500, drop_backup=False)
    src, new = f'"{table_name}"', f'"{table_name}__new"'
    rng = "(%(after_1)s::bigint IS NULL OR id > %(after_1)s::bigint) AND id <= %(upto_1)s::bigint"
    per_range = (f"SELECT count(*), md5(string_agg(ROW(id, v::bigint, note)::text, ',' ORDER BY "
                 f"id)) FROM {{t}} WHERE {rng}")
    assert plan.steps[3].batch is None
    verify = Step(4, StepKind.VERIFY, "verify per key range",
                  (per_range.format(t=src), per_range.format(t=new)), table=table_name,
                  batch=plan.steps[2].batch, details={
                      "writes": "resync",
                      "totals": [f"SELECT count(*) FROM {src}", f"SELECT count(*) FROM {new}"],
                      "repair": [f"DELETE FROM {new} WHERE {rng}",
                                 f"INSERT INTO {new} (id, v, note) SELECT id, v::bigint, note "
                                 f"FROM {src} WHERE {rng}"],
                      "tail": f"DELETE FROM {new} WHERE id > %(after_1)s::bigint"})
    plan = Plan(profile="current", steps=(*plan.steps[:3], verify, plan.steps[4]))
    events: list[Event] = []
    runner = make_runner(events)

    def write_during_copy(event: Event) -> None:
        events.append(event)
        if event.kind == "batch" and event.data["batch"] == 3:
            raw_conn.execute(f"UPDATE {src} SET note = 'changed' WHERE id IN (7, 1203)")
            raw_conn.execute(f"DELETE FROM {src} WHERE id = 42")
    runner.emit = write_during_copy
    runner.apply(plan)
    # ids 7 and 42 fall in the first key range, 1203 in the third
    assert [e.data["ranges"] for e in events if e.kind == "verify.repair"] == [2]
    assert checksum(raw_conn, table_name)[0] == 1_999
    assert raw_conn.execute(f"SELECT note FROM {src} WHERE id = 7").fetchone() == ("changed",)
    figures = _state(raw_conn, state_schema, plan)[4][6]
    assert '"pass": 2' in figures and '"mismatched_ranges": 0' in figures


def test_session_waits_for_an_unreachable_endpoint(raw_url: str) -> None:
    failures = [2]

    def flaky() -> psycopg.Connection[Any]:
        if failures[0]:
            failures[0] -= 1
            raise ConnectError("could not connect to 127.0.0.1:1: connection refused")
        return psycopg.connect(raw_url, autocommit=True)
    session = Session(flaky, sleep=lambda s: None)
    try:
        assert session.transaction("test", lambda c: c.execute("SELECT 7").fetchone()) == (7,)
    finally:
        session.close()
    assert failures == [0]


def test_state_tables_of_an_earlier_layout_are_refused_clearly(
        make_runner: Any, raw_conn: psycopg.Connection[Any], state_schema: str) -> None:
    raw_conn.execute(f'CREATE SCHEMA "{state_schema}"')
    raw_conn.execute(f'CREATE TABLE "{state_schema}".batches (plan_hash text, step integer, '
                     "batch integer, PRIMARY KEY (plan_hash, step, batch))")
    runner = make_runner()
    with pytest.raises(ConfigError) as info:
        runner.store.ensure(runner.session)
    assert "earlier dsql-migrate" in info.value.message and "batches" in (info.value.hint or "")


def test_steps_table_with_the_old_cursor_columns_is_refused(
        make_runner: Any, raw_conn: psycopg.Connection[Any], state_schema: str) -> None:
    """steps.cursor and steps.batch_size moved to the lanes: a steps table that still has them
    was made by an earlier dsql-migrate."""
    fresh = make_runner()
    fresh.store.ensure(fresh.session)
    columns = {r[0] for r in raw_conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND "
        "table_name = 'steps'", (state_schema,)).fetchall()}
    assert not {"cursor", "batch_size"} & columns
    raw_conn.execute(f'ALTER TABLE "{state_schema}".steps ADD COLUMN cursor text')
    runner = make_runner()
    with pytest.raises(ConfigError) as info:
        runner.store.ensure(runner.session)
    assert "earlier dsql-migrate" in info.value.message and "steps" in info.value.message


def test_resume_event_reports_the_rows_already_done(
        make_runner: Any, raw_conn: psycopg.Connection[Any], state_schema: str,
        table_name: str) -> None:
    create_source(raw_conn, table_name, 1_200)
    guard = f"{table_name}_stop"
    raw_conn.execute(f"""CREATE FUNCTION "{guard}"(n bigint) RETURNS boolean LANGUAGE plpgsql
        AS $$ BEGIN IF n > 700 THEN RAISE EXCEPTION 'stopped at %', n; END IF;
        RETURN true; END $$""")
    plan = recreate_plan(table_name, rows=1_200, batch_size=100, drop_backup=False)
    plan = with_check_in_copy(plan, guard, "max(id)")
    try:
        with pytest.raises(StepFailed):
            make_runner(parallel=1).apply(plan)
        raw_conn.execute(f"""CREATE OR REPLACE FUNCTION "{guard}"(n bigint) RETURNS boolean
            LANGUAGE sql AS 'SELECT true'""")
        events: list[Event] = []
        make_runner(events, parallel=1).apply(plan)
    finally:
        raw_conn.execute(f'DROP FUNCTION IF EXISTS "{guard}"(bigint) CASCADE')
    resume = next(e for e in events if e.kind == "step.resume")
    assert resume.step == plan.steps[2].id and resume.data["rows_done"] == 700


def test_a_changed_default_is_set_again_when_its_step_resumes(
        make_runner: Any, raw_conn: psycopg.Connection[Any], state_schema: str,
        table_name: str) -> None:
    """A step left 'running' (a killed runner) whose statement changes an existing default:
    the statement runs again, it is not taken for done because the column has *a* default."""
    raw_conn.execute(f'CREATE TABLE "{table_name}" (id bigint PRIMARY KEY, c text DEFAULT \'a\')')
    plan = Plan(profile="current", steps=(
        Step(1, StepKind.DDL, "default b", (f'ALTER TABLE "{table_name}" ALTER COLUMN c SET '
                                            "DEFAULT 'b'",), table=table_name),))
    make_runner().apply(plan)
    raw_conn.execute(f'ALTER TABLE "{table_name}" ALTER COLUMN c SET DEFAULT \'a\'')
    raw_conn.execute(f'UPDATE "{state_schema}".steps SET status = \'running\', '
                     "statements_done = 0 WHERE plan_hash = %s", (plan.hash,))
    raw_conn.execute(f'UPDATE "{state_schema}".plans SET status = \'running\' WHERE hash = %s',
                     (plan.hash,))
    make_runner().apply(plan)
    default = raw_conn.execute(
        "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = %s::regclass",
        (f'"{table_name}"',)).fetchone()
    assert default == ("'b'::text",)


def test_an_abandoned_plan_is_not_finished_by_apply_without_a_file(
        make_runner: Any, target_url: str, raw_conn: psycopg.Connection[Any], state_schema: str,
        table_name: str) -> None:
    create_source(raw_conn, table_name, 600)
    first = recreate_plan(table_name, rows=600, batch_size=500)
    with pytest.raises(DestructiveRefused):
        make_runner().apply(first)
    other = Plan(profile="current", steps=(
        Step(1, StepKind.DML, "note", (f"UPDATE \"{table_name}\" SET note = 'x' WHERE id = 1",),
             table=table_name),))
    make_runner(abandon_previous=True).apply(other)
    assert unfinished_plan(lambda: psycopg.connect(target_url, autocommit=True),
                           schema=state_schema) is None
    status = read_status(lambda: psycopg.connect(target_url, autocommit=True),
                         schema=state_schema)
    assert status["plan"]["hash"] == other.hash


def test_a_failed_batch_names_its_sql(make_runner: Any, raw_conn: psycopg.Connection[Any],
                                      state_schema: str, table_name: str) -> None:
    create_source(raw_conn, table_name, 1_200)
    raw_conn.execute(f'UPDATE "{table_name}" SET v = 40000 WHERE id = 900')
    plan = recreate_plan(table_name, rows=1_200, batch_size=500)
    copy = plan.steps[2]
    narrow = Step(copy.id, copy.kind, copy.summary,
                  (copy.sql[0].replace("v::bigint", "v::smallint"),), table=copy.table,
                  batch=copy.batch, estimate=copy.estimate)
    plan = Plan(profile="current", steps=(*plan.steps[:2], narrow))
    with pytest.raises(StepFailed) as info:
        make_runner().apply(plan)
    assert "out of range" in info.value.message and "after key [500]" in info.value.message
    assert info.value.sql_text is not None and "v::smallint" in info.value.sql_text
    assert _state(raw_conn, state_schema, plan)[3][8] == info.value.sql_text


def test_run_options_from_a_bad_config_are_configuration_errors() -> None:
    for section in ({"batchsize": 100}, {"parallel": 0}):
        with pytest.raises(ConfigError) as info:
            RunOptions.from_config(section)
        assert info.value.exit_code == ExitCode.USAGE


def test_keys_are_stored_in_a_form_that_reads_back_the_same(
        raw_conn: psycopg.Connection[Any]) -> None:
    values = [b"\x00\x01\xff", datetime.timedelta(days=1, seconds=1, microseconds=5),
              uuid.UUID(int=7), datetime.date(2026, 11, 24), Decimal("1.50"), "it's"]
    types = ["bytea", "interval", "uuid", "date", "numeric", "text"]
    stored = json.loads(encode_key(values))
    for value, text, type_ in zip(values, stored, types, strict=True):
        row = raw_conn.execute(f"SELECT %s::{type_} = %s::{type_}", (text, value)).fetchone()
        assert row == (True,), (value, text)


def test_a_plan_of_thousands_of_steps_registers_within_the_row_limit(
        make_runner: Any, raw_conn: psycopg.Connection[Any], state_schema: str) -> None:
    """3,100 step rows cannot go in one DSQL transaction: they are recorded in several."""
    steps = [Step(1, StepKind.DDL, "drop", ("DROP TABLE IF EXISTS dm_none_at_all",),
                  destructive=True)]
    steps += [Step(i, StepKind.DML, f"no-op {i}", ("SELECT 1",)) for i in range(2, 3101)]
    plan = Plan(profile="current", steps=tuple(steps))
    with pytest.raises(DestructiveRefused):
        make_runner().apply(plan)
    count = raw_conn.execute(f'SELECT count(*) FROM "{state_schema}".steps WHERE plan_hash = %s',
                             (plan.hash,)).fetchone()
    assert count == (3100,)


class _LostCommitAnswer(Session):
    """A session that loses the answer to some batch COMMITs that went through: the batch's
    transaction runs again, as the runner's session does after a connection lost right then."""

    def __init__(self, *args: Any, lose: set[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lose = lose
        self.batches = 0

    def transaction(self, what: str, fn: Any, **kw: Any) -> Any:
        if what.endswith(" batch"):
            self.batches += 1
            if self.batches in self.lose:
                super().transaction(what, fn, **kw)  # committed; the answer never arrives
        return super().transaction(what, fn, **kw)


def test_a_batch_whose_commit_answer_was_lost_is_not_applied_again(
        target_url: str, raw_conn: psycopg.Connection[Any], state_schema: str,
        table_name: str) -> None:
    create_source(raw_conn, table_name, 2_000)
    before = checksum(raw_conn, table_name)
    plan = recreate_plan(table_name, rows=2_000, batch_size=300)
    session = _LostCommitAnswer(lambda: psycopg.connect(target_url, autocommit=True),
                                lose={2, 5})
    try:
        Runner(session, store=StateStore(state_schema),
               options=RunOptions(allow_destructive=True, parallel=1)).apply(plan)
    finally:
        session.close()
    assert checksum(raw_conn, table_name) == before
    assert assert_batches_exactly_once(raw_conn, state_schema, plan.hash, 3, 2_000) == 1


def test_a_failing_runner_query_is_reported_with_its_sql(
        make_runner: Any, raw_conn: psycopg.Connection[Any], table_name: str) -> None:
    """Not only the plan's statements: the queries the runner makes of a batch (its page bound,
    its row count) are shown when they fail, so a broken plan can be read from the error."""
    create_source(raw_conn, table_name, 100)
    plan = recreate_plan(table_name, rows=100, batch_size=10, drop_backup=False)
    copy = plan.steps[2]
    assert copy.batch is not None
    broken = dataclasses.replace(copy, batch=dataclasses.replace(
        copy.batch, bounds=copy.batch.bounds.replace("ORDER BY id DESC", "ORDER BY nope DESC")))
    plan = Plan(profile="current", steps=(*plan.steps[:2], broken))
    with pytest.raises(StepFailed) as info:
        make_runner(parallel=1).apply(plan)
    assert info.value.sql_text is not None and "ORDER BY nope DESC" in info.value.sql_text
