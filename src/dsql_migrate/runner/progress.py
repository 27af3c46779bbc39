"""Showing a run: a rich progress bar per batched step on a terminal, one line per event in CI.

``text`` on a TTY: a line per step and a live bar (rows done of the estimate, rate, ETA) while a
batched step runs. ``text`` without a TTY: one plain line per event (batches every 10 %). ``json``:
one JSON object per event, every event, for machines.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from .events import Event

if TYPE_CHECKING:  # rich is imported by the reporter that draws bars (status needs none of it)
    from rich.console import Console
    from rich.progress import TaskID

QUIET_KINDS = frozenset({"batch", "async.wait", "lock.acquired"})


class JsonReporter:
    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def __call__(self, event: Event) -> None:
        self.stream.write(json.dumps(event.as_dict(), default=str) + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Nothing to close."""


class PlainReporter:
    """One line per event; batches only when another tenth of the estimate is done."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._last_tenth: dict[int, int] = {}

    def __call__(self, event: Event) -> None:
        if event.kind == "batch":
            estimate = event.data.get("rows_estimate") or 0
            done = int(event.data.get("rows_done", 0))
            tenth = done * 10 // estimate if estimate else done // 100_000
            if event.step is None or self._last_tenth.get(event.step) == tenth:
                return
            self._last_tenth[event.step] = tenth
        self.stream.write(f"{event.at:%H:%M:%S} {event.message}\n")
        self.stream.flush()

    def close(self) -> None:
        """Nothing to close."""


class RichReporter:
    """Step lines and a progress bar per batched step, for a terminal."""

    def __init__(self, console: Console, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.console = console
        self._clock = clock
        #: per step: the rows an earlier run had done and when this run started it, so that
        #: the rate is this run's own
        self._since: dict[int, tuple[int, float]] = {}
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("step {task.fields[step]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[int, TaskID] = {}
        self._started = False

    def __call__(self, event: Event) -> None:
        if event.kind == "batch" and event.step is not None:
            self._advance(event)
            return
        if event.kind in ("step.start", "step.resume") and event.step is not None:
            self._since[event.step] = (int(event.data.get("rows_done") or 0), self._clock())
        if event.kind in ("step.done", "step.failed") and event.step in self._tasks:
            self.progress.stop_task(self._tasks[event.step])
        if event.kind in QUIET_KINDS:
            return
        style = {"step.failed": "red", "plan.failed": "red", "plan.stopped": "yellow",
                 "plan.done": "green", "batch.shrink": "yellow"}.get(event.kind)
        text = event.message if style is None else f"[{style}]{event.message}[/{style}]"
        self.console.print(text, highlight=False)

    def _advance(self, event: Event) -> None:
        assert event.step is not None
        if not self._started:
            self.progress.start()
            self._started = True
        done = int(event.data.get("rows_done", 0))
        estimate = event.data.get("rows_estimate")
        task = self._tasks.get(event.step)
        if task is None:
            task = self.progress.add_task("copy", total=estimate or None, step=event.step,
                                          rate="")
            self._tasks[event.step] = task
        before, started = self._since.get(event.step, (0, None))
        elapsed = (self._clock() - started if started is not None
                   else self.progress.tasks[task].elapsed or 0.0)
        rate = f"{(done - before) / elapsed:,.0f} rows/s" if elapsed > 0 else ""
        total = max(estimate or 0, done) or None
        self.progress.update(task, completed=done, total=total, rate=rate)

    def close(self) -> None:
        if self._started:
            self.progress.stop()


Reporter = JsonReporter | PlainReporter | RichReporter


def make_reporter(log_format: str, stream: IO[str], *, tty: bool | None = None) -> Reporter:
    if log_format == "json":
        return JsonReporter(stream)
    if tty if tty is not None else stream.isatty():
        from rich.console import Console

        return RichReporter(Console(file=stream, highlight=False))
    return PlainReporter(stream)


def status_text(data: dict[str, Any]) -> str:
    """``dsql-migrate status`` as text."""
    lines: list[str] = []
    lock = data.get("lock")
    if lock:
        state = "expired" if lock["expired"] else "held"
        lines.append(f"lock: {state} by {lock['owner']} (host {lock['host']}, pid {lock['pid']}, "
                     f"run {lock['run_id']}) since {lock['acquired_at']}, lease until "
                     f"{lock['expires_at']}")
    else:
        lines.append("lock: free")
    for frozen in data.get("frozen") or ():
        lines.append(f"WRITES FROZEN on {frozen['table']} since {frozen['frozen_at']} (the "
                     f"cut-over of plan {frozen['plan']}): the application cannot write it; "
                     "'dsql-migrate apply' resumes and gives the privileges back first")
    plan = data.get("plan")
    if not plan:
        lines.append("no plan has been applied here yet")
        return "\n".join(lines) + "\n"
    lines.append(f"plan {plan['hash']}: {plan['status']} (updated {plan['updated_at']})")
    if plan.get("error"):
        lines.append(f"  error: {plan['error']}")
    for step in data.get("steps", []):
        extra = []
        if step["rows_done"]:
            extra.append(f"{step['rows_done']:,} rows in {step['batches_done']} batches"
                         if step["batches_done"] else f"{step['rows_done']:,} rows")
        if step["job_id"]:
            extra.append(f"job {step['job_id']}")
        if step["attempts"] > 1:
            extra.append(f"{step['attempts']} attempts")
        more = f" ({'; '.join(extra)})" if extra else ""
        lines.append(f"  {step['step']:>3} {step['status']:<8} {step['kind']:<14} "
                     f"{step['summary'] or ''}{more}")
        if step["error"]:
            lines.append(f"      error: {step['error']}")
        if step["error_sql"]:
            lines.append(f"      sql: {step['error_sql']}")
    return "\n".join(lines) + "\n"
