"""What the runner tells its observers: one :class:`Event` per thing that happened."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


@dataclass(frozen=True)
class Event:
    """``kind`` is one of: plan.start, plan.done, plan.nothing, plan.stopped, lock.acquired,
    lock.waiting, step.start, step.skip, step.done, step.failed, step.resume, step.lanes, batch,
    batch.shrink, async.submitted, async.wait, retry, verify, verify.repair; and from the
    premise/promise checks (:mod:`.guard`): guard.premise, guard.promise, plan.refused,
    plan.failed, plan.reapply."""

    kind: str
    message: str
    step: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.kind, "at": self.at.isoformat(timespec="milliseconds"),
                               "message": self.message}
        if self.step is not None:
            out["step"] = self.step
        out.update(self.data)
        return out


Listener = Callable[[Event], None]


def ignore(event: Event) -> None:
    """The listener that listens to nothing."""


def serialized(listener: Listener) -> Listener:
    """``listener``, called by one thread at a time (the lanes of a batched step report from
    their own threads)."""
    lock = threading.Lock()

    def call(event: Event) -> None:
        with lock:
            listener(event)
    return call
