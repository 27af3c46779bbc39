"""Fixtures for the runner tests: a state schema per test, plan builders, a runner factory.

The plans are built by hand here (the planner has its own tests): a table recreation with a type
change -- pre-check, create ``<t>__new``, keyset copy, verify, swap, optional async unique index,
drop of the backup -- and small DDL/DML plans.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dsql_migrate.runner import Runner, RunOptions, Session, StateStore
from dsql_migrate.runner.events import Event

# the plan builders live next to this file; test modules import them as 'runner_plans'
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def target_url(dsql_url: str) -> str:
    """The URL the runner talks to (the emulator once it is merged; DSQL rules apply)."""
    return dsql_url


@pytest.fixture
def has_jobs(raw_conn: psycopg.Connection[Any]) -> bool:
    return raw_conn.execute("SELECT to_regclass('sys.jobs') IS NOT NULL").fetchone() == (True,)


@pytest.fixture
def state_schema(raw_url: str) -> Iterator[str]:
    name = f"dm_state_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(raw_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def table_name(raw_url: str) -> Iterator[str]:
    """A fresh table name; the table and whatever a recreation left are dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(raw_url, autocommit=True) as conn:
        for suffix in ("", "__new", "__old"):
            conn.execute(f'DROP TABLE IF EXISTS "{name}{suffix}" CASCADE')


RunnerFactory = Callable[..., Runner]


@pytest.fixture
def make_runner(target_url: str, state_schema: str) -> Iterator[RunnerFactory]:
    sessions: list[Session] = []

    def make(events: list[Event] | None = None, **options: Any) -> Runner:
        session = Session(lambda: psycopg.connect(target_url, autocommit=True))
        sessions.append(session)
        sink = events.append if events is not None else (lambda e: None)
        return Runner(session, store=StateStore(state_schema), options=RunOptions(**options),
                      on_event=sink)
    yield make
    for session in sessions:
        session.close()
