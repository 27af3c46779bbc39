"""Crash safety at scale (issue 14, point 5): a 300,000-row recreation in 4 lanes, its batches
forced to shrink by the emulator's real row limit (54000), SIGKILLed at 20 and more points over
every phase -- create, copy, verify, swap, index build and wait, backup drop -- and resumed after
each: the same rows, no duplicate key, no ``__new``/``__old`` left, every batch recorded once.

The runner is told the row limit is 20,000 (``[limits]`` in the configuration) while the
emulator enforces DSQL's 3,000: the first batches of 8,000 rows fail with 54000 and the lanes
shrink to what fits. It takes a few minutes (about 25 runs of the CLI).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from runner_plans import assert_batches_exactly_once, checksum, create_source, recreate_plan

pytestmark = pytest.mark.integration

ROWS = 300_000

#: per step of the plan (recreate_plan with a unique index): where to kill it, in order
KILLS: dict[int, list[str]] = {
    1: ["step.after_mark_running:1"],                        # pre-check
    2: ["ddl.before_execute:1", "ddl.after_execute:1"],      # create t__new
    3: ["batch.after_commit:2", "batch.before_commit:3", "batch.after_commit:5",
        "batch.before_commit:2", "batch.after_commit:7", "batch.before_commit:6",
        "batch.after_commit:4", "batch.before_commit:8", "batch.after_commit:3",
        "batch.before_commit:5", "batch.after_commit:6", "batch.before_commit:4"],  # copy
    4: ["verify.after_check:1"],                             # verify
    5: ["ddl.before_execute:1", "swap.between:1"],           # swap (re-verifies first)
    6: ["async.after_submit:1", "async.wait:1"],             # unique index: build and wait
    7: ["ddl.after_execute:1"],                              # backup drop
}


def _first_open_step(conn: psycopg.Connection[Any], schema: str, plan_hash: str) -> int:
    if conn.execute("SELECT to_regclass(%s)", (f'"{schema}".steps',)).fetchone() == (None,):
        return 1
    row = conn.execute(f'SELECT min(step) FROM "{schema}".steps WHERE plan_hash = %s AND '
                       "status <> 'done'", (plan_hash,)).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _spec(kills: dict[int, list[str]], current: int) -> str:
    """The next kill of the current step and of every later one: the first point reached
    kills the run, so a point that does not come (a lane with fewer batches left) leaves the
    kill to the next phase instead of a run to the end."""
    chosen: dict[str, str] = {}
    for step in sorted(kills):
        if step >= current and kills[step]:
            name = kills[step][0].rpartition(":")[0]
            chosen.setdefault(name, kills[step][0])
    return ",".join(chosen.values())


def _apply(plan_file: Path, url: str, schema: str, cwd: Path, crash: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSQL_MIGRATE_")}
    if crash:
        env["DSQL_MIGRATE_CRASH_AT"] = crash
    done = subprocess.run(
        [sys.executable, "-m", "dsql_migrate", "apply", str(plan_file), "--url", url,
         "--state-schema", schema, "--allow-destructive", "--log-format", "json",
         "--parallel", "4"], cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
        check=False)
    return done.returncode, done.stderr


def test_sigkill_in_every_phase_of_a_large_recreation(
        has_jobs: bool, target_url: str, raw_conn: psycopg.Connection[Any], state_schema: str,
        table_name: str, tmp_path: Path) -> None:
    if not has_jobs:
        pytest.skip("the target has no sys.jobs (async jobs need the DSQL emulator)")
    create_source(raw_conn, table_name, ROWS)
    raw_conn.execute(f'ANALYZE "{table_name}"')
    before = checksum(raw_conn, table_name)
    sums = raw_conn.execute(f'SELECT sum(id), sum(v) FROM "{table_name}"').fetchone()
    plan = recreate_plan(table_name, rows=ROWS, batch_size=8_000, unique_index=True)
    (tmp_path / "plan.json").write_text(plan.to_json())
    (tmp_path / "dsql-migrate.toml").write_text("[limits]\nrows_per_transaction = 20000\n")

    kills = {step: list(points) for step, points in KILLS.items()}
    fired: list[tuple[int, str]] = []
    events: list[dict[str, Any]] = []
    for _ in range(40):
        current = _first_open_step(raw_conn, state_schema, plan.hash)
        code, err = _apply(tmp_path / "plan.json", target_url, state_schema, tmp_path,
                           _spec(kills, current))
        events += [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        if code == 0:
            break
        assert code == -9, err
        point = err.rsplit("crash point ", 1)[1].split()[0]
        step = next(s for s in sorted(kills) if s >= current and kills[s]
                    and kills[s][0].startswith(point + ":"))
        fired.append((step, point))
        kills[step].pop(0)
    else:
        pytest.fail(f"no run finished after {len(fired)} kills")

    assert len(fired) >= 20, fired
    assert {step for step, _ in fired} == set(KILLS), fired  # every phase was killed in
    assert any(e["event"] == "batch.shrink" for e in events)  # 54000 made the lanes shrink
    assert max(e["lanes"] for e in events if e["event"] == "step.lanes") == 4
    assert checksum(raw_conn, table_name) == before
    assert raw_conn.execute(f'SELECT sum(id), sum(v) FROM "{table_name}"').fetchone() == sums
    assert raw_conn.execute(
        f'SELECT count(*) = count(DISTINCT id) FROM "{table_name}"').fetchone() == (True,)
    assert raw_conn.execute(
        "SELECT count(*) FROM pg_class WHERE relname LIKE %s AND (relname LIKE '%%\\_\\_new' "
        "OR relname LIKE '%%\\_\\_old')", (f"{table_name}%",)).fetchone() == (0,)
    assert raw_conn.execute(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)",
        (f'"{table_name}_note_key"',)).fetchone() == (True,)
    copy = next(s for s in plan.steps if s.kind.value == "copy")
    assert assert_batches_exactly_once(raw_conn, state_schema, plan.hash, copy.id, ROWS) == 4
    statuses = raw_conn.execute(f'SELECT status FROM "{state_schema}".steps WHERE plan_hash = %s',
                                (plan.hash,)).fetchall()
    assert statuses == [("done",)] * len(plan.steps)
