"""The runner's own errors, each with its exit code (DESIGN.md §3.4)."""

from __future__ import annotations

from ..errors import DsqlMigrateError, ExitCode

RESUME_HINT = ("run 'dsql-migrate apply' again to resume where it stopped; or give up: "
               "'dsql-migrate status' shows what was applied, then fix the cause and re-plan")


class StepFailed(DsqlMigrateError):
    exit_code = ExitCode.FAILED

    def __init__(self, message: str, *, sql_text: str | None = None,
                 hint: str | None = RESUME_HINT) -> None:
        super().__init__(message, hint=hint)
        self.sql_text = sql_text


class VerificationFailed(StepFailed):
    pass


class AsyncTimeout(StepFailed):
    pass


class DestructiveRefused(DsqlMigrateError):
    exit_code = ExitCode.REFUSED


class PlanConflict(DsqlMigrateError):
    exit_code = ExitCode.REFUSED
