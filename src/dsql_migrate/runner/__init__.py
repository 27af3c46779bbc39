"""The runner: executes Plans against a target, resumably (DESIGN.md §1, §3.3).

:class:`Runner` applies a :class:`~dsql_migrate.plan.Plan` through a :class:`Session` (a
reconnecting connection made from any connection factory), recording every step in the state
tables (:mod:`.state`) under a lease lock (:mod:`.lock`).
"""

from __future__ import annotations

from .errors import (
    AsyncTimeout,
    DestructiveRefused,
    PlanConflict,
    StepFailed,
    VerificationFailed,
)
from .events import Event
from .execute import Runner
from .lock import LeaseLock, LeaseLost, LockHeld, force_unlock
from .options import ApplyResult, RunOptions
from .retry import RetryPolicy
from .session import ConnectionFactory, Session
from .state import DEFAULT_SCHEMA, StateStore

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
