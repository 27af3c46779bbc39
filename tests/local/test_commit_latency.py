"""``--commit-latency``: the emulator adds a fixed latency to every commit that wrote, per
connection (other connections go on meanwhile), as a DSQL commit across availability zones.

The bounds below are lower bounds (a commit cannot be faster than the added latency) and a
serial-versus-parallel comparison with a wide margin, not performance targets."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import click
import psycopg
import pytest
from click.testing import CliRunner

from dsql_migrate.cli import main
from dsql_migrate.cli.local import Duration
from dsql_migrate.local import LocalInstance
from dsql_migrate.local.proxy import Faults

LATENCY = 1.0


def _table(raw_conn: psycopg.Connection[Any]) -> str:
    name = f"lat_{uuid.uuid4().hex[:10]}"
    raw_conn.execute(f"CREATE TABLE {name} (id bigint PRIMARY KEY)")
    return name


def _timed(action: Any) -> float:
    start = time.monotonic()
    action()
    return time.monotonic() - start


def test_commits_that_wrote_wait_the_latency(emulator: LocalInstance, dsql_url: str,
                                             raw_conn: psycopg.Connection[Any]) -> None:
    table = _table(raw_conn)
    emulator.set_faults(Faults(commit_latency=LATENCY))
    with psycopg.connect(dsql_url) as conn:
        conn.execute(f"INSERT INTO {table} VALUES (1)")
        assert _timed(conn.commit) >= LATENCY
        conn.autocommit = True  # an implicit transaction's commit too
        assert _timed(lambda: conn.execute(f"INSERT INTO {table} VALUES (2)")) >= LATENCY
    assert raw_conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (2,)


def test_read_only_and_rolled_back_transactions_get_no_latency(
        emulator: LocalInstance, dsql_url: str, raw_conn: psycopg.Connection[Any]) -> None:
    table = _table(raw_conn)
    emulator.set_faults(Faults(commit_latency=30.0))  # would time the test out if added
    with psycopg.connect(dsql_url) as conn:
        conn.execute(f"SELECT * FROM {table}")
        assert _timed(conn.commit) < 30.0
        conn.execute(f"INSERT INTO {table} VALUES (1)")
        assert _timed(conn.rollback) < 30.0


def test_connections_wait_their_latency_at_the_same_time(
        emulator: LocalInstance, dsql_url: str, raw_conn: psycopg.Connection[Any]) -> None:
    table = _table(raw_conn)
    lanes = 4
    conns = [psycopg.connect(dsql_url) for _ in range(lanes)]
    try:
        emulator.set_faults(Faults(commit_latency=LATENCY))
        for i, conn in enumerate(conns):
            conn.execute(f"INSERT INTO {table} VALUES (%s)", (i,))
        threads = [threading.Thread(target=conn.commit) for conn in conns]
        start = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        elapsed = time.monotonic() - start
    finally:
        for conn in conns:
            conn.close()
    assert LATENCY <= elapsed < lanes * LATENCY  # one after another would take 4 s
    assert raw_conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (lanes,)


def test_start_on_a_running_emulator_applies_the_requested_latency(
        emulator: LocalInstance) -> None:
    LocalInstance(emulator.directory, faults=Faults(commit_latency=0.25)).start()
    assert emulator.settings().faults == Faults(commit_latency=0.25)


def test_faults_keep_the_latency_through_the_settings_file() -> None:
    faults = Faults(commit_latency=0.01, seed=3)
    assert Faults.from_dict(faults.as_dict()) == faults
    assert Faults.from_dict({}).commit_latency == 0.0


@pytest.mark.parametrize(("text", "seconds"), [("10ms", 0.01), ("0.5s", 0.5), ("0ms", 0.0),
                                               (" 25MS ", 0.025)])
def test_duration_takes_a_unit(text: str, seconds: float) -> None:
    assert Duration().convert(text, None, None) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["10", "-1ms", "fast", "ms", "61s"])
def test_duration_without_unit_or_out_of_range_is_refused(text: str) -> None:
    with pytest.raises(click.BadParameter, match="such as 10ms"):
        Duration().convert(text, None, None)
    result = CliRunner().invoke(main, ["local", "start", "--commit-latency", text])
    assert result.exit_code == 2 and "--commit-latency" in result.output
