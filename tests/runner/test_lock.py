"""The lease lock on a real server: exclusion, takeover of an expired or dead holder, fencing."""

from __future__ import annotations

import socket
import subprocess
import sys
from typing import Any

import psycopg
import pytest

from dsql_migrate.errors import ExitCode
from dsql_migrate.plan import Plan, Step, StepKind
from dsql_migrate.runner import LeaseLock, LeaseLost, LockHeld, Session, StateStore, force_unlock
from dsql_migrate.runner.events import Event
from dsql_migrate.runner.lock import _process_gone, host_identity


@pytest.fixture
def locks(target_url: str, state_schema: str) -> Any:
    sessions: list[Session] = []
    store = StateStore(state_schema)

    def make(**kwargs: Any) -> LeaseLock:
        session = Session(lambda: psycopg.connect(target_url, autocommit=True))
        sessions.append(session)
        store.ensure(session)
        return LeaseLock(store, session, **kwargs)
    yield make
    for session in sessions:
        session.close()


def test_second_runner_is_refused_with_the_holder_named(locks: Any) -> None:
    first, second = locks(), locks()
    first.acquire()
    with pytest.raises(LockHeld) as info:
        second.acquire()
    assert info.value.exit_code == ExitCode.LOCKED
    assert first.run_id in info.value.message and "since" in info.value.message
    first.release()
    second.acquire()
    assert second.token == 2


def test_waiting_for_the_lock_gives_up_after_the_wait(locks: Any) -> None:
    first, second = locks(), locks()
    first.acquire()
    slept: list[float] = []
    with pytest.raises(LockHeld, match="after waiting 3s"):
        second.acquire(3, poll_seconds=1, sleep=slept.append)


def test_expired_lease_is_taken_over_and_the_old_holder_is_fenced(
        locks: Any, raw_conn: psycopg.Connection[Any], state_schema: str) -> None:
    first, second = locks(lease_seconds=30), locks()
    first.acquire()
    raw_conn.execute(f'UPDATE "{state_schema}".locks SET expires_at = now() - interval \'1 s\'')
    second.acquire()
    assert second.token == (first.token or 0) + 1
    with pytest.raises(LeaseLost, match="taken over"):
        first.heartbeat()
    second.heartbeat()


def test_lock_of_a_dead_process_on_this_host_is_taken_over_at_once(
        locks: Any, raw_conn: psycopg.Connection[Any], state_schema: str) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    holder = locks(lease_seconds=3600)
    holder.acquire()
    raw_conn.execute(f'UPDATE "{state_schema}".locks SET pid = %s', (int(dead.stdout),))
    successor = locks()
    successor.acquire()
    assert successor.token == 2


def test_unlock_needs_force_for_a_live_lease(locks: Any, state_schema: str) -> None:
    holder = locks(lease_seconds=3600)
    holder.acquire()
    admin = locks()
    with pytest.raises(LockHeld, match="--force"):
        force_unlock(admin.store, admin.session)
    released = force_unlock(admin.store, admin.session, force=True)
    assert released is not None and released.run_id == holder.run_id
    with pytest.raises(LeaseLost):
        holder.heartbeat()
    assert force_unlock(admin.store, admin.session) is None


def test_a_pid_is_only_judged_on_the_same_host_boot_and_process_namespace() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its pid no longer exists
    assert host_identity().startswith(socket.gethostname() + "#")
    assert _process_gone(host_identity(), child.pid)
    # the same host name seen from another container (another boot or pid namespace)
    assert not _process_gone(f"{socket.gethostname()}#00000000", child.pid)
    assert not _process_gone(socket.gethostname(), child.pid)


def test_no_waiting_event_when_the_lock_is_free(make_runner: Any, table_name: str) -> None:
    """``--wait-lock`` with a free lock takes it at once and says nothing about waiting."""
    events: list[Event] = []
    plan = Plan(profile="current", steps=(
        Step(1, StepKind.DDL, "create",
             (f'CREATE TABLE "{table_name}" (id bigint PRIMARY KEY)',)),))
    make_runner(events, wait_lock_seconds=30).apply(plan)
    kinds = [e.kind for e in events]
    assert "lock.waiting" not in kinds and kinds[0] == "lock.acquired"


def test_waiting_event_names_the_holder(make_runner: Any, table_name: str) -> None:
    holder = make_runner()
    holder.store.ensure(holder.session)
    assert holder.lock.try_acquire() is None
    events: list[Event] = []
    plan = Plan(profile="current", steps=(
        Step(1, StepKind.DDL, "create",
             (f'CREATE TABLE "{table_name}" (id bigint PRIMARY KEY)',)),))
    with pytest.raises(LockHeld):
        make_runner(events, wait_lock_seconds=0.5).apply(plan)
    waiting = [e for e in events if e.kind == "lock.waiting"]
    assert len(waiting) == 1 and holder.run_id in waiting[0].message
