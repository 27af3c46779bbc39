"""Which errors are worth another try, and how long to wait before it (DSQL.md §2).

DSQL arbitrates concurrency optimistically: a conflict surfaces at COMMIT as SQLSTATE 40001 with
``OC000`` (data) or ``OC001`` (catalog) in the message, and ``XX000 server unavailable`` is
transient too. Those are retried -- the *whole* transaction -- with jittered exponential backoff.
A lost connection is a different matter: the caller reconnects and re-reads its position from the
state tables before it tries again. Everything else stops the run.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from ..errors import ConfigError, DsqlMigrateError

RETRYABLE_SQLSTATES = frozenset({"40001", "XX000", "40P01"})
#: the limit errors (rows, bytes, transaction age): a batch shrinks and tries again
LIMIT_SQLSTATE = "54000"


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and delays; ``[runner.retry]`` in the configuration overrides the defaults."""

    attempts: int = 8
    base_seconds: float = 0.05
    cap_seconds: float = 5.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full-jitter backoff before retry number ``attempt`` (1-based)."""
        ceiling = min(self.cap_seconds, self.base_seconds * (2 ** (attempt - 1)))
        return (rng or random).uniform(0, ceiling)

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> RetryPolicy:
        known = {"attempts": int, "base_seconds": float, "cap_seconds": float}
        unknown = sorted(set(section) - set(known))
        if unknown:
            raise ConfigError(f"unknown setting(s) in [runner.retry]: {', '.join(unknown)}",
                              hint=f"known: {', '.join(sorted(known))}")
        values: dict[str, Any] = {}
        for key, kind in known.items():
            if key in section:
                value = section[key]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                    raise ConfigError(f"[runner.retry] {key} must be a positive number, "
                                      f"got {value!r}")
                values[key] = kind(value)
        return cls(**values)


def sqlstate(exc: BaseException) -> str | None:
    return getattr(exc, "sqlstate", None) if isinstance(exc, psycopg.Error) else None


def is_retryable(exc: BaseException) -> bool:
    """A conflict or a transient server error: run the whole transaction again."""
    return sqlstate(exc) in RETRYABLE_SQLSTATES


#: SQLSTATEs of a refused login (invalid authorization, invalid password)
AUTH_SQLSTATES = frozenset({"28000", "28P01"})
#: what a refused login says when the error carries no SQLSTATE (libpq's connection failures,
#: DSQL's IAM check)
_AUTH_TEXT = ("password authentication failed", "authentication failed", "access denied",
              "no pg_hba.conf entry", "does not exist", "invalid password",
              "pam authentication")


def is_auth_failure(exc: BaseException) -> bool:
    """A login the server refused: waiting will not fix the credentials, so no retry."""
    if sqlstate(exc) in AUTH_SQLSTATES:
        return True
    if not isinstance(exc, (psycopg.OperationalError, DsqlMigrateError)):
        return False
    text = (exc.message if isinstance(exc, DsqlMigrateError) else str(exc)).lower()
    if "does not exist" in text:  # a role (or database) that is not there, not a table
        return 'role "' in text or 'database "' in text
    return any(part in text for part in _AUTH_TEXT)


def is_limit_error(exc: BaseException) -> bool:
    return sqlstate(exc) == LIMIT_SQLSTATE


def is_connection_lost(exc: BaseException, conn: psycopg.Connection[Any] | None = None) -> bool:
    """The connection is gone (closed by the server, the network, or its age limit)."""
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        state = sqlstate(exc)
        if state is None or state.startswith("08") or state in ("57P01", "57P02", "57P03"):
            return True
    return conn is not None and conn.closed


def describe(exc: BaseException) -> str:
    """One line: the server's message and SQLSTATE, never connection parameters."""
    if isinstance(exc, psycopg.Error):
        diag = exc.diag
        message = diag.message_primary or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        state = f" (SQLSTATE {exc.sqlstate})" if exc.sqlstate else ""
        detail = f"; {diag.message_detail}" if diag.message_detail else ""
        return f"{message}{state}{detail}"
    return str(exc) or type(exc).__name__
