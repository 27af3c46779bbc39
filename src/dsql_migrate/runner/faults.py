"""Crash points, for the crash-resume tests: kill this process with SIGKILL at a named point.

``DSQL_MIGRATE_CRASH_AT="batch.before_commit:3"`` kills the runner the third time it reaches the
point ``batch.before_commit``; ``*:7`` at the seventh point of any name. The runner calls
:meth:`CrashPoints.reach` at every instant where a crash is interesting (inside a batch
transaction, between a DDL statement and its done mark, during an async wait, between the two
renames of a swap). Unset, it costs a dictionary lookup. This is a testing aid, not a feature.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Mapping

ENV = "DSQL_MIGRATE_CRASH_AT"

POINTS = (
    "step.after_mark_running",
    "ddl.before_execute",
    "ddl.after_execute",
    "swap.between",
    "batch.before_commit",
    "batch.after_commit",
    "async.after_submit",
    "async.wait",
    "dml.before_commit",
    "verify.after_check",
    "cdc.after_freeze_record",
    "cdc.after_revoke",
    "cdc.before_swap",
    "cdc.swapped",
    "cdc.after_swap",
)


class CrashPoints:
    def __init__(self, spec: str | None = None) -> None:
        self._targets: dict[str, int] = {}
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()  # lanes reach points from several threads
        for part in (spec or "").split(","):
            if part.strip():
                name, _, count = part.strip().rpartition(":")
                self._targets[name] = int(count)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CrashPoints:
        return cls((environ if environ is not None else os.environ).get(ENV))

    def reach(self, name: str) -> None:
        if not self._targets:
            return
        for key in (name, "*"):
            if key in self._targets:
                with self._lock:
                    self._seen[key] = self._seen.get(key, 0) + 1
                    hit = self._seen[key] == self._targets[key]
                if hit:
                    sys.stderr.write(f"crash point {name}\n")
                    sys.stderr.flush()
                    os.kill(os.getpid(), signal.SIGKILL)
