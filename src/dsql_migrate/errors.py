"""Errors that reach the user, and the exit codes of every command (DESIGN.md §3.4).

A :class:`DsqlMigrateError` is a *user-facing* error: the CLI prints its message (what is wrong,
where, what to do) on one or a few lines and exits with its code, never with a traceback.
Anything else that escapes is a bug.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes shared by every command."""

    OK = 0
    FAILED = 1
    USAGE = 2
    FIXED_WITH_WARNINGS = 3
    LOCKED = 4
    REFUSED = 5


class DsqlMigrateError(Exception):
    """An error the user can act on. ``hint`` says what to do about it."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class ConfigError(DsqlMigrateError):
    """Bad configuration or usage: a missing tool, a malformed config file, a bad URL."""

    exit_code = ExitCode.USAGE


class ConnectError(DsqlMigrateError):
    """The target could not be reached or refused the connection."""

    exit_code = ExitCode.FAILED


class LocalServerError(DsqlMigrateError):
    """The embedded PostgreSQL could not be set up, started or stopped."""

    exit_code = ExitCode.FAILED
