"""The lease lock: one runner at a time, without advisory locks (DSQL has none).

The lock is a row in ``<schema>.locks`` taken by a conditional ``INSERT ... ON CONFLICT DO
NOTHING`` or a conditional ``UPDATE ... WHERE the lease is free or expired``; when two runners
race, optimistic concurrency lets exactly one commit (the other gets 40001, retries, and then
sees the lock taken). Every acquisition increments the **fencing token**.

A lease lasts ``lease_seconds``. The holder extends it (*heartbeat*) inside every transaction
that writes state -- the same transaction, so a batch can never commit for a runner whose lease
was taken over: the conditional ``UPDATE ... WHERE run_id = mine AND fencing_token = mine``
finds no row and the runner stops before that write (:class:`LeaseLost`). Between writes
(async waits) it heartbeats explicitly.

An expired lease can be taken over by anyone. A lease whose holder is a process on *this* host
that no longer exists (a runner killed with SIGKILL) is taken over at once rather than after
expiry.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from ..errors import DsqlMigrateError, ExitCode
from .session import Conn, Session
from .state import StateStore

log = logging.getLogger(__name__)

LOCK_NAME = "apply"
DEFAULT_LEASE_SECONDS = 60.0


class LockHeld(DsqlMigrateError):
    exit_code = ExitCode.LOCKED


class LeaseLost(DsqlMigrateError):
    """Another runner took the lease over: this one must not write anything more."""

    exit_code = ExitCode.LOCKED


@dataclass(frozen=True)
class Holder:
    owner: str | None
    host: str | None
    pid: int | None
    run_id: str | None
    fencing_token: int
    acquired_at: datetime | None
    expires_at: datetime
    heartbeat_at: datetime | None
    expired: bool

    def describe(self) -> str:
        since = self.acquired_at.isoformat(timespec="seconds") if self.acquired_at else "?"
        beat = (self.heartbeat_at.isoformat(timespec="seconds")
                if self.heartbeat_at else "never")
        return (f"{self.owner} (host {self.host}, pid {self.pid}, run {self.run_id}) since "
                f"{since}, last heartbeat {beat}, lease until "
                f"{self.expires_at.isoformat(timespec='seconds')}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "owner": self.owner, "host": self.host, "pid": self.pid, "run_id": self.run_id,
            "fencing_token": self.fencing_token,
            "acquired_at": self.acquired_at.isoformat() if self.acquired_at else None,
            "expires_at": self.expires_at.isoformat(),
            "heartbeat_at": self.heartbeat_at.isoformat() if self.heartbeat_at else None,
            "expired": self.expired,
        }


def host_identity() -> str:
    """This host's name, and a tag of its boot and process namespace: containers that share a
    host name (host networking) do not share process ids, so a pid is only judged where the
    tag matches too."""
    parts = []
    for path in ("/proc/sys/kernel/random/boot_id", "/proc/self/ns/pid"):
        try:
            parts.append(os.readlink(path) if path.endswith("/pid")
                         else Path(path).read_text())
        except OSError:
            parts.append("?")
    tag = hashlib.sha256("|".join(parts).encode()).hexdigest()[:8]
    return f"{socket.gethostname()}#{tag}"


def _process_gone(host: str | None, pid: int | None) -> bool:
    """True only when we *know* the holder is dead: the same host (and boot and process
    namespace), and no such process."""
    if host != host_identity() or pid is None or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    # a zombie child (killed but not yet reaped by its parent) is gone as well
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


class LeaseLock:
    """The lock row ``name`` in ``store``'s schema, held for one run."""

    def __init__(self, store: StateStore, session: Session, *, name: str = LOCK_NAME,
                 lease_seconds: float = DEFAULT_LEASE_SECONDS, run_id: str | None = None,
                 owner: str | None = None) -> None:
        self.store = store
        self.session = session
        self.name = name
        self.lease_seconds = lease_seconds
        self.run_id = run_id or uuid.uuid4().hex[:16]
        self.host = host_identity()
        self.pid = os.getpid()
        self.owner = owner or f"{os.environ.get('USER', 'runner')}@{socket.gethostname()}"
        self.token: int | None = None
        self._renewed_at = 0.0

    @property
    def _table(self) -> sql.Composed:
        return self.store.table("locks")

    # -- reading ---------------------------------------------------------------------------------

    def holder(self, conn: Conn) -> Holder | None:
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(sql.SQL(
                "SELECT owner, host, pid, run_id, fencing_token, acquired_at, expires_at, "
                "heartbeat_at, expires_at < now() AS expired FROM {} WHERE name = %s").format(
                self._table), (self.name,)).fetchone()
        if row is None or row["run_id"] is None:
            return None
        return Holder(**row)

    # -- acquiring -------------------------------------------------------------------------------

    def try_acquire(self) -> Holder | None:
        """Take the lease if it is free; None on success, else who holds it."""
        return self.session.transaction("take the lock", self._try_acquire)

    def _try_acquire(self, conn: Conn) -> Holder | None:
        inserted = conn.execute(sql.SQL(
            "INSERT INTO {} (name, owner, host, pid, run_id, fencing_token, acquired_at, "
            "expires_at, heartbeat_at) VALUES (%s, %s, %s, %s, %s, 1, now(), "
            "now() + make_interval(secs => %s), now()) ON CONFLICT (name) DO NOTHING "
            "RETURNING fencing_token").format(self._table),
            (self.name, self.owner, self.host, self.pid, self.run_id,
             self.lease_seconds)).fetchone()
        if inserted is not None:
            self._held(int(inserted[0]))
            return None
        current = self.holder(conn)
        if current is not None and not current.expired and current.run_id != self.run_id \
                and not _process_gone(current.host, current.pid):
            return current
        # free, expired, ours, or a dead process on this host: take it over, conditionally on
        # the token we saw, so that of two runners taking over at once only one succeeds
        seen = None if current is None else current.fencing_token
        row = conn.execute(sql.SQL(
            "UPDATE {} SET owner = %s, host = %s, pid = %s, run_id = %s, "
            "fencing_token = fencing_token + 1, acquired_at = now(), "
            "expires_at = now() + make_interval(secs => %s), heartbeat_at = now() "
            "WHERE name = %s AND (%s::bigint IS NULL OR fencing_token = %s::bigint) "
            "RETURNING fencing_token").format(self._table),
            (self.owner, self.host, self.pid, self.run_id, self.lease_seconds, self.name,
             seen, seen)).fetchone()
        if row is None:
            again = self.holder(conn)
            if again is None:  # pragma: no cover - released in between; next try takes it
                raise LockHeld("the lock changed hands while taking it; try again")
            return again
        if current is not None:
            log.warning("took over the lock from %s", current.describe())
        self._held(int(row[0]))
        return None

    def _held(self, token: int) -> None:
        self.token = token
        self._renewed_at = time.monotonic()

    def acquire(self, wait_seconds: float = 0.0, *, poll_seconds: float = 1.0,
                sleep: Callable[[float], None] = time.sleep) -> None:
        """Take the lease, waiting up to ``wait_seconds`` for it; :class:`LockHeld` if not."""
        deadline = time.monotonic() + wait_seconds
        while True:
            holder = self.try_acquire()
            if holder is None:
                return
            if time.monotonic() >= deadline:
                waited = f" after waiting {wait_seconds:g}s" if wait_seconds else ""
                raise LockHeld(
                    f"another runner holds the lock{waited}: {holder.describe()}",
                    hint="wait for it (--wait-lock SECONDS); if that runner is gone, the lease "
                    "expires by itself, or run 'dsql-migrate unlock --force'",
                )
            sleep(min(poll_seconds, max(deadline - time.monotonic(), 0.05)))

    # -- holding ---------------------------------------------------------------------------------

    def fence(self, conn: Conn) -> None:
        """Inside a writing transaction: extend the lease, or raise :class:`LeaseLost`."""
        self.check_fence(conn, self.send_fence(conn))

    def send_fence(self, conn: Conn) -> psycopg.Cursor[Any]:
        """Queue the fencing update (in pipeline mode nothing waits for it yet)."""
        if self.token is None:
            raise LeaseLost("this runner does not hold the lock")
        return conn.execute(sql.SQL(
            "UPDATE {} SET expires_at = now() + make_interval(secs => %s), "
            "heartbeat_at = now() WHERE name = %s AND run_id = %s AND fencing_token = %s "
            "RETURNING fencing_token").format(self._table),
            (self.lease_seconds, self.name, self.run_id, self.token))

    def held(self) -> tuple[sql.Composed, tuple[Any, ...]]:
        """A condition (and its parameters) true while this runner holds the lease: for the
        lanes of a batched step, which must not all write the lock row (under optimistic
        concurrency they would conflict with each other). A takeover committed before the
        transaction began is seen, and the batch rolls back; one in flight meets the new
        owner's claim on the lane instead."""
        if self.token is None:
            raise LeaseLost("this runner does not hold the lock")
        return (sql.SQL("EXISTS (SELECT 1 FROM {} WHERE name = %s AND run_id = %s AND "
                        "fencing_token = %s)").format(self._table),
                (self.name, self.run_id, self.token))

    def ensure_held(self, conn: Conn) -> None:
        """:class:`LeaseLost` naming the new holder unless this runner still holds the lease."""
        condition, params = self.held()
        row = conn.execute(sql.SQL("SELECT {}").format(condition), params).fetchone()
        if row is None or not row[0]:
            self._lost(conn)

    def check_fence(self, conn: Conn, cursor: psycopg.Cursor[Any]) -> None:
        if cursor.fetchone() is None:
            self._lost(conn)
        self._renewed_at = time.monotonic()

    def _lost(self, conn: Conn) -> NoReturn:
        holder = self.holder(conn)
        self.token = None
        raise LeaseLost(
            "the lock was taken over by "
            f"{holder.describe() if holder else 'nobody (it was released)'}; "
            "this runner stopped before its next write",
            hint="run 'dsql-migrate status' to see what the other runner did")

    def heartbeat(self) -> None:
        self.session.transaction("lock heartbeat", self.fence)

    def heartbeat_if_due(self) -> None:
        if time.monotonic() - self._renewed_at > self.lease_seconds / 3:
            self.heartbeat()

    def release(self) -> None:
        if self.token is None:
            return
        token, self.token = self.token, None

        def run(conn: Conn) -> None:
            conn.execute(sql.SQL(
                "UPDATE {} SET owner = NULL, host = NULL, pid = NULL, run_id = NULL, "
                "expires_at = now() WHERE name = %s AND run_id = %s AND fencing_token = %s"
            ).format(self._table), (self.name, self.run_id, token))
        self.session.transaction("release the lock", run)


def force_unlock(store: StateStore, session: Session, *, name: str = LOCK_NAME,
                 force: bool = False) -> Holder | None:
    """Release the lock row; without ``force`` only when its lease has expired.

    Returns the holder that was removed (None if the lock was free).
    """
    lock = LeaseLock(store, session, name=name)

    def run(conn: Conn) -> Holder | None:
        holder = lock.holder(conn)
        if holder is None:
            return None
        if not force and not holder.expired and not _process_gone(holder.host, holder.pid):
            raise LockHeld(
                f"the lock is held and its lease has not expired: {holder.describe()}",
                hint="if you are sure that runner is gone, use 'dsql-migrate unlock --force'")
        conn.execute(sql.SQL(
            "UPDATE {} SET owner = NULL, host = NULL, pid = NULL, run_id = NULL, "
            "expires_at = now() WHERE name = %s AND fencing_token = %s").format(
            store.table("locks")), (name, holder.fencing_token))
        return holder
    return session.transaction("unlock", run)
