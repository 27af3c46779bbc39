"""Lanes: a large batched step split into disjoint key ranges walked at once, each batch still
one DSQL-legal transaction with its cursor advance; a lane taken over stops its runner."""

from __future__ import annotations

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

from dsql_migrate.runner.api import read_status
from dsql_migrate.runner.events import Event, serialized
from dsql_migrate.runner.lock import LeaseLost
from dsql_migrate.runner.session import Session
from dsql_migrate.runner.steps import lanes

pytestmark = pytest.mark.integration


def test_lanes_copy_every_row_exactly_once(make_runner: Any, raw_conn: psycopg.Connection[Any],
                                           target_url: str, state_schema: str,
                                           table_name: str) -> None:
    create_source(raw_conn, table_name, 12_000)
    before = checksum(raw_conn, table_name)
    plan = recreate_plan(table_name, rows=12_000, batch_size=500)
    events: list[Event] = []
    seen: list[dict[str, Any]] = []

    def watch(event: Event) -> None:
        events.append(event)
        if event.kind == "batch" and event.data["batch"] == 6:  # status while lanes run
            seen.append(read_status(lambda: psycopg.connect(target_url, autocommit=True),
                                    schema=state_schema))
    result = _run(make_runner, plan, watch)
    assert result.status == "done"
    assert checksum(raw_conn, table_name) == before
    assert assert_batches_exactly_once(raw_conn, state_schema, plan.hash, 3, 12_000) == 3
    lanes = [e.data["lanes"] for e in events if e.kind == "step.lanes"]
    assert lanes == [3]
    assert len({e.data["lane"] for e in events if e.kind == "batch"}) == 3
    batches = [e.data["batch"] for e in events if e.kind == "batch"]
    assert batches == list(range(1, 25))  # the step's count, over all lanes, in order
    copy = next(s for s in seen[0]["steps"] if s["step"] == 3)
    assert copy["status"] == "running" and copy["rows_done"] >= 5 * 500


def _run(make_runner: Any, plan: Any, watch: Any) -> Any:
    runner = make_runner(allow_destructive=True, parallel=3)
    emit = runner.emit

    def both(event: Event) -> None:
        emit(event)
        watch(event)
    runner.emit = serialized(both)
    return runner.apply(plan)


def test_split_reads_in_short_transactions(make_runner: Any, raw_conn: psycopg.Connection[Any],
                                           state_schema: str, table_name: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The split walks the key range in reads of at most SPLIT_READ_ROWS keys each (DSQL ends
    long transactions): lanes of the same sizes as with one read per split key."""
    monkeypatch.setattr(lanes, "SPLIT_READ_ROWS", 700)
    create_source(raw_conn, table_name, 12_000)
    plan = recreate_plan(table_name, rows=12_000, batch_size=500)
    make_runner(allow_destructive=True, parallel=3).apply(plan)
    assert assert_batches_exactly_once(raw_conn, state_schema, plan.hash, 3, 12_000) == 3
    ends = raw_conn.execute(f'SELECT end_key FROM "{state_schema}".lanes WHERE plan_hash = %s '
                            "ORDER BY lane", (plan.hash,)).fetchall()
    assert ends == [("[4000]",), ("[8000]",), (None,)]


def test_parallel_one_walks_a_single_lane(make_runner: Any, raw_conn: psycopg.Connection[Any],
                                          state_schema: str, table_name: str) -> None:
    create_source(raw_conn, table_name, 12_000)
    before = checksum(raw_conn, table_name)
    plan = recreate_plan(table_name, rows=12_000, batch_size=500)
    make_runner(allow_destructive=True, parallel=1).apply(plan)
    assert checksum(raw_conn, table_name) == before
    assert assert_batches_exactly_once(raw_conn, state_schema, plan.hash, 3, 12_000) == 1


def test_a_lane_taken_over_stops_the_runner_before_its_next_write(
        make_runner: Any, raw_conn: psycopg.Connection[Any], state_schema: str,
        table_name: str) -> None:
    create_source(raw_conn, table_name, 12_000)
    plan = recreate_plan(table_name, rows=12_000, batch_size=500)
    runner = make_runner(parallel=3)
    taken: list[Any] = []

    def take_over(event: Event) -> None:
        if event.kind == "batch" and event.data["batch"] == 4 and not taken:
            # what a runner that took the lock over does first: claim the unfinished lanes
            raw_conn.execute(f'UPDATE "{state_schema}".lanes SET run_id = %s WHERE NOT done',
                             ("intruder",))
            taken.append(raw_conn.execute("SELECT clock_timestamp()").fetchone()[0])
    runner.emit = serialized(take_over)
    with pytest.raises(LeaseLost) as info:
        runner.apply(plan)
    assert "intruder" in info.value.message and "stopped before its next write" in \
        info.value.message
    late = raw_conn.execute(
        f'SELECT count(*) FROM "{state_schema}".batches WHERE run_id = %s AND '
        "committed_at > %s", (runner.run_id, taken[0])).fetchone()
    assert late == (0,)
    done = raw_conn.execute(f'SELECT count(*) FROM "{state_schema}".batches').fetchone()
    assert done is not None and 4 <= done[0] < 24


def test_lanes_shrink_their_batches_on_a_limit_error(
        make_runner: Any, raw_conn: psycopg.Connection[Any], state_schema: str,
        table_name: str) -> None:
    """Lanes walked at once each meet 54000 and halve their own batch size; the rows arrive
    once, each key range recorded once, and the shrunk size is kept in the lane's row."""
    create_source(raw_conn, table_name, 12_000)
    guard = f"{table_name}_guard"
    raw_conn.execute(f"""CREATE FUNCTION "{guard}"(n bigint) RETURNS boolean LANGUAGE plpgsql
        AS $$ BEGIN IF n > 150 THEN RAISE EXCEPTION USING ERRCODE = '54000',
        MESSAGE = 'transaction row limit exceeded'; END IF; RETURN true; END $$""")
    plan = recreate_plan(table_name, rows=12_000, batch_size=1000, drop_backup=False)
    plan = with_check_in_copy(plan, guard, "count(*)")
    before = checksum(raw_conn, table_name)
    events: list[Event] = []
    try:
        make_runner(events, parallel=3).apply(plan)
    finally:
        raw_conn.execute(f'DROP FUNCTION IF EXISTS "{guard}"(bigint) CASCADE')
    shrinks = [e.data for e in events if e.kind == "batch.shrink"]
    assert {s["lane"] for s in shrinks} == {0, 1, 2}
    assert all(e.data["batch_size"] <= 150 for e in events if e.kind == "batch")
    assert checksum(raw_conn, table_name) == before
    assert assert_batches_exactly_once(raw_conn, state_schema, plan.hash, plan.steps[2].id,
                                       12_000) == 3
    sizes = raw_conn.execute(f'SELECT batch_size FROM "{state_schema}".lanes WHERE plan_hash = '
                             "%s", (plan.hash,)).fetchall()
    assert all(size <= 150 for (size,) in sizes)


def _transactions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the transactions every session runs from now on (forked lanes' too)."""
    names: list[str] = []
    original = Session.transaction

    def recorded(self: Session, what: str, fn: Any, **kwargs: Any) -> Any:
        names.append(what)
        return original(self, what, fn, **kwargs)
    monkeypatch.setattr(Session, "transaction", recorded)
    return names


def test_a_lane_is_marked_done_with_its_last_batch(
        make_runner: Any, raw_conn: psycopg.Connection[Any], state_schema: str,
        table_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """On DSQL every writing commit waits the commit latency: a lane whose last batch saw that
    no page follows is marked done in that batch's transaction, not in one more commit."""
    create_source(raw_conn, table_name, 12_000)
    plan = recreate_plan(table_name, rows=12_000, batch_size=500)
    names = _transactions(monkeypatch)
    make_runner(allow_destructive=True, parallel=3).apply(plan)
    assert assert_batches_exactly_once(raw_conn, state_schema, plan.hash, 3, 12_000) == 3
    recorded = raw_conn.execute(f'SELECT count(*) FROM "{state_schema}".batches WHERE '
                                "plan_hash = %s AND step = 3", (plan.hash,)).fetchone()
    assert recorded == (24,)
    assert names.count("step 3 batch") == 24  # one transaction per batch, none after


def test_a_first_run_writes_its_lanes_in_one_commit(
        make_runner: Any, raw_conn: psycopg.Connection[Any], state_schema: str,
        table_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first run of a step finds no lanes with a read, then splits and claims them in one
    writing transaction (a claim of no lanes would be one more commit to wait for)."""
    create_source(raw_conn, table_name, 12_000)
    plan = recreate_plan(table_name, rows=12_000, batch_size=500)
    names = _transactions(monkeypatch)
    make_runner(allow_destructive=True, parallel=3).apply(plan)
    setup = names[names.index("read the lanes of step 3"):names.index("step 3 batch")]
    assert "claim the lanes of step 3" not in setup
    assert setup.count("split step 3 into lanes") == 1 + 2  # two reads of split keys


def test_lanes_hold_whole_batches(make_runner: Any, raw_conn: psycopg.Connection[Any],
                                  state_schema: str, table_name: str) -> None:
    """Lanes are cut at a multiple of the batch size: 10,000 rows in batches of 500 over 3
    lanes are 20 batches (3,500 + 3,500 + 3,000 rows), not 21 (three lanes of 3,334 rows
    ending with a short batch each)."""
    create_source(raw_conn, table_name, 10_000)
    plan = recreate_plan(table_name, rows=10_000, batch_size=500)
    make_runner(allow_destructive=True, parallel=3).apply(plan)
    assert assert_batches_exactly_once(raw_conn, state_schema, plan.hash, 3, 10_000) == 3
    ends = raw_conn.execute(f'SELECT end_key FROM "{state_schema}".lanes WHERE plan_hash = %s '
                            "ORDER BY lane", (plan.hash,)).fetchall()
    assert ends == [("[3500]",), ("[7000]",), (None,)]
    recorded = raw_conn.execute(f'SELECT count(*) FROM "{state_schema}".batches WHERE '
                                "plan_hash = %s AND step = 3", (plan.hash,)).fetchone()
    assert recorded == (20,)


def test_a_batch_is_two_round_trips(make_runner: Any, raw_conn: psycopg.Connection[Any],
                                    state_schema: str, table_name: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch's pipeline is synced only by its COMMIT: its statements' results are read after
    the next page bound's, which comes last in the first flight, not by a Sync of their own
    (one more round trip to a remote endpoint per batch)."""
    create_source(raw_conn, table_name, 3_000)
    plan = recreate_plan(table_name, rows=3_000, batch_size=500)
    syncs: list[int] = []
    original = psycopg.Pipeline.sync

    def counted(self: psycopg.Pipeline) -> None:
        syncs.append(1)
        original(self)
    monkeypatch.setattr(psycopg.Pipeline, "sync", counted)
    make_runner(allow_destructive=True, parallel=1).apply(plan)
    assert assert_batches_exactly_once(raw_conn, state_schema, plan.hash, 3, 3_000) == 1
    assert syncs == []
