"""One database session for the runner: reconnects, recycles, retries whole transactions.

The runner is given a *connection factory* -- any callable that returns a new psycopg connection
(``dsql_migrate.connect.Connector`` fits, so does ``lambda: psycopg.connect(url)``) -- and an
optional maximum connection age (DSQL closes connections after 60 minutes; IAM tokens are
checked only at connect). The session keeps one autocommit connection: a bare statement is its own
transaction (how DDL and ``CALL`` run), :meth:`Session.transaction` wraps a function in an
explicit ``BEGIN``/``COMMIT`` and runs it again, whole, on a retryable error.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import psycopg

from ..errors import ConnectError, DsqlMigrateError
from .retry import RetryPolicy, describe, is_auth_failure, is_connection_lost, is_retryable

log = logging.getLogger(__name__)

T = TypeVar("T")
Conn = psycopg.Connection[Any]


class ConnectionFactory(Protocol):
    def __call__(self) -> Conn: ...


class RetriesExhausted(DsqlMigrateError):
    """A transaction kept failing with retryable errors."""


class Session:
    """A reconnecting, recycling connection with whole-transaction retries."""

    def __init__(
        self,
        factory: Callable[[], Conn],
        *,
        max_connection_seconds: float | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[str, int, BaseException], None] | None = None,
    ) -> None:
        self._factory = factory
        self._max_age = max_connection_seconds
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._on_retry = on_retry
        self._conn: Conn | None = None
        self._opened_at = 0.0
        self.reconnects = 0

    def fork(self) -> Session:
        """Another session like this one (same factory, age limit and retries) on its own
        connection: for work that runs beside this session's, in another thread."""
        return Session(self._factory, max_connection_seconds=self._max_age, retry=self.retry,
                       sleep=self._sleep, on_retry=self._on_retry)

    # -- connection ------------------------------------------------------------------------------

    @property
    def conn(self) -> Conn:
        conn = self._conn
        expired = (self._max_age is not None
                   and time.monotonic() - self._opened_at > self._max_age)
        if conn is None or conn.closed or expired:
            if conn is not None:
                self._discard()
                self.reconnects += 1
            conn = self._factory()
            conn.autocommit = True
            self._conn = conn
            self._opened_at = time.monotonic()
        return conn

    def _discard(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        self._discard()

    # -- running ---------------------------------------------------------------------------------

    def transaction(self, what: str, fn: Callable[[Conn], T], *,
                    before_retry: Callable[[], None] | None = None,
                    pipeline: bool = False) -> T:
        """Run ``fn`` inside BEGIN/COMMIT; on a conflict or a lost connection, run it again.

        ``fn`` must be idempotent against the database it reads: after a lost connection nobody
        knows whether the COMMIT happened, so ``fn`` re-reads its position inside the transaction.
        """
        run = _in_pipelined_transaction if pipeline else _in_transaction
        return self._attempt(what, lambda c: run(c, fn), before_retry)

    def autocommit(self, what: str, fn: Callable[[Conn], T], *,
                   before_retry: Callable[[], None] | None = None) -> T:
        """Run ``fn`` outside any transaction block (DDL, ``CALL``), retrying like above."""
        return self._attempt(what, fn, before_retry)

    def _attempt(self, what: str, fn: Callable[[Conn], T],
                 before_retry: Callable[[], None] | None) -> T:
        attempt = 0
        while True:
            attempt += 1
            try:
                conn = self.conn
            except (psycopg.OperationalError, ConnectError) as exc:
                # the endpoint is unreachable for a moment (a deploy, a network blip); a
                # refused login is not: waiting does not fix credentials
                if attempt >= self.retry.attempts or is_auth_failure(exc):
                    raise
                self._pause(what, attempt, exc)
                continue
            try:
                return fn(conn)
            except psycopg.Error as exc:
                lost = is_connection_lost(exc, conn)
                if lost or not self._back_to_idle(conn):
                    self._discard()
                    self.reconnects += 1
                if not (lost or is_retryable(exc)):
                    raise
                if attempt >= self.retry.attempts:
                    raise RetriesExhausted(
                        f"{what}: still failing after {attempt} attempts: {describe(exc)}",
                        hint="run 'dsql-migrate apply' again: it resumes where it stopped",
                    ) from exc
                self._pause(what, attempt, exc)
                if before_retry is not None:
                    before_retry()

    @staticmethod
    def _back_to_idle(conn: Conn) -> bool:
        """End whatever transaction a failure left open, so a retry starts clean.

        A COMMIT that fails with 40001 ends the transaction on DSQL, but a failure in the middle
        of a pipeline, or a server that reports the error before the transaction ends, can
        leave it aborted; retrying on that connection would only meet 25P02. False: the
        connection cannot be trusted any more.
        """
        if conn.closed:
            return False
        if _idle(conn):
            return True
        try:
            conn.rollback()
        except psycopg.Error:
            return False
        return _idle(conn)

    def _pause(self, what: str, attempt: int, exc: BaseException) -> None:
        delay = self.retry.delay(attempt)
        log.info("%s: %s; retry %d in %.2fs", what, describe(exc), attempt, delay)
        if self._on_retry is not None:
            self._on_retry(what, attempt, exc)
        self._sleep(delay)


def _idle(conn: Conn) -> bool:
    return conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def _in_transaction(conn: Conn, fn: Callable[[Conn], T]) -> T:
    with conn.transaction():
        return fn(conn)


def _in_pipelined_transaction(conn: Conn, fn: Callable[[Conn], T]) -> T:
    """The same, in pipeline mode: BEGIN, COMMIT and the statements that ``fn`` does not wait
    for travel together, so a transaction costs fewer round trips to a remote endpoint."""
    with conn.pipeline(), conn.transaction():
        return fn(conn)
