"""Progress output: JSON lines, plain lines (batches every tenth), a rich bar on a terminal."""

from __future__ import annotations

import io
import json

from rich.console import Console

from dsql_migrate.runner.events import Event
from dsql_migrate.runner.progress import (
    JsonReporter,
    PlainReporter,
    RichReporter,
    make_reporter,
    status_text,
)


def _events() -> list[Event]:
    out = [Event("plan.start", "applying plan sha256:x (2 steps)"),
           Event("step.start", "step 1 (copy) running: copy t", 1)]
    for n in range(1, 21):
        out.append(Event("batch", f"step 1: batch {n}", 1,
                         data={"batch": n, "rows": 500, "rows_done": 500 * n,
                               "rows_estimate": 10_000, "batch_size": 500}))
    out += [Event("step.done", "step 1 done", 1), Event("plan.done", "plan applied")]
    return out


def test_json_reporter_writes_every_event_as_one_object() -> None:
    stream = io.StringIO()
    reporter = make_reporter("json", stream)
    assert isinstance(reporter, JsonReporter)
    for event in _events():
        reporter(event)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 24 and lines[5]["event"] == "batch" and lines[5]["rows_done"] == 2000


def test_plain_reporter_prints_batches_every_tenth() -> None:
    stream = io.StringIO()
    reporter = make_reporter("text", stream, tty=False)
    assert isinstance(reporter, PlainReporter)
    for event in _events():
        reporter(event)
    batch_lines = [line for line in stream.getvalue().splitlines() if ": batch " in line]
    # the first batch, then one line per tenth of the estimate
    assert len(batch_lines) == 11 and batch_lines[1].endswith("batch 2")
    assert "plan applied" in stream.getvalue()


def test_rich_reporter_draws_a_bar_on_a_terminal() -> None:
    stream = io.StringIO()
    reporter = make_reporter("text", stream, tty=True)
    assert isinstance(reporter, RichReporter)
    for event in _events():
        reporter(event)
    reporter.close()
    text = stream.getvalue()
    assert "10000/10000" in text.replace(",", "") and "plan applied" in text


def test_status_text_lists_steps_with_rows_jobs_and_errors() -> None:
    text = status_text({
        "lock": None,
        "plan": {"hash": "sha256:abc", "status": "failed", "updated_at": "now",
                 "error": "step 2: boom"},
        "steps": [
            {"step": 1, "status": "done", "kind": "copy", "summary": "copy t", "rows_done": 1500,
             "batches_done": 3, "job_id": None, "attempts": 1, "error": None,
             "error_sql": None},
            {"step": 2, "status": "failed", "kind": "async_index", "summary": "index",
             "rows_done": 0, "batches_done": 0, "job_id": "j1", "attempts": 2,
             "error": "job j1 failed", "error_sql": "CREATE UNIQUE INDEX ASYNC ..."},
        ]})
    assert "lock: free" in text and "plan sha256:abc: failed" in text
    assert "1,500 rows in 3 batches" in text and "job j1; 2 attempts" in text
    assert "sql: CREATE UNIQUE INDEX ASYNC" in text


def test_rich_reporter_rate_counts_only_the_rows_of_this_run() -> None:
    """A resumed step starts at the rows an earlier run did: they are not this run's speed."""
    now = [100.0]
    reporter = RichReporter(Console(file=io.StringIO(), force_terminal=True, width=120),
                            clock=lambda: now[0])
    reporter(Event("step.resume", "step 1 (copy) resuming: copy t", 1,
                   data={"rows_done": 9_000, "rows_estimate": 10_000}))
    now[0] = 102.0
    reporter(Event("batch", "step 1: batch 19", 1,
                   data={"batch": 19, "rows": 500, "rows_done": 9_500, "rows_estimate": 10_000}))
    now[0] = 104.0
    reporter(Event("batch", "step 1: batch 20", 1,
                   data={"batch": 20, "rows": 500, "rows_done": 10_000, "rows_estimate": 10_000}))
    reporter.close()
    task = reporter.progress.tasks[0]
    assert task.fields["rate"] == "250 rows/s"  # 1,000 rows in 4 s, not 10,000
