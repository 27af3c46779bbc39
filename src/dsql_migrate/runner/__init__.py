"""The runner: executes Plans against a target, resumably (DESIGN.md §1, §3.3).

:class:`Runner` applies a :class:`~dsql_migrate.plan.Plan` through a :class:`Session` (a
reconnecting connection made from any connection factory), recording every step in the state
tables (:mod:`.state`) under a lease lock (:mod:`.lock`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    AsyncTimeout,
    DestructiveRefused,
    PlanConflict,
    StepFailed,
    VerificationFailed,
)
from .events import Event
from .lock import LeaseLock, LeaseLost, LockHeld, force_unlock
from .options import ApplyResult, RunOptions
from .retry import RetryPolicy
from .session import ConnectionFactory, Session
from .state import DEFAULT_SCHEMA, StateStore

if TYPE_CHECKING:
    from .execute import Runner


def __getattr__(name: str) -> Any:
    """``Runner`` is imported when first used: its steps pull in the SQL parser, which commands
    that only read the state tables (``status``, ``unlock``) do not need (issue 18)."""
    if name == "Runner":
        from .execute import Runner

        return Runner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "DEFAULT_SCHEMA",
    "ApplyResult",
    "AsyncTimeout",
    "ConnectionFactory",
    "DestructiveRefused",
    "Event",
    "LeaseLock",
    "LeaseLost",
    "LockHeld",
    "PlanConflict",
    "RetryPolicy",
    "RunOptions",
    "Runner",
    "Session",
    "StateStore",
    "StepFailed",
    "VerificationFailed",
    "force_unlock",
]
