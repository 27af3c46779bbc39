"""The runner's promise, with real processes: kill it anywhere, run it again, it finishes with
nothing applied twice and nothing lost. Four runners at once: one works, the others wait or exit 4.
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

ROWS = 50_000


def _apply(plan_file: Path, url: str, schema: str, cwd: Path, *, crash: str = "",
           extra: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSQL_MIGRATE_")}
    if crash:
        env["DSQL_MIGRATE_CRASH_AT"] = crash
    return subprocess.Popen(
        [sys.executable, "-m", "dsql_migrate", "apply", str(plan_file), "--url", url,
         "--state-schema", schema, "--allow-destructive", "--log-format", "json", *extra],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _current_step(conn: psycopg.Connection[Any], schema: str, plan_hash: str) -> tuple[int, str]:
    if conn.execute("SELECT to_regclass(%s)", (f'"{schema}".steps',)).fetchone() == (None,):
        return 0, "none"
    row = conn.execute(f'SELECT step, kind FROM "{schema}".steps WHERE plan_hash = %s AND '
                       "status <> 'done' ORDER BY step LIMIT 1", (plan_hash,)).fetchone()
    return (0, "none") if row is None else (int(row[0]), str(row[1]))


def _assert_state_is_clean(conn: psycopg.Connection[Any], schema: str, plan: Any) -> None:
    steps = conn.execute(f'SELECT step, status, statements_done, rows_done FROM "{schema}".steps '
                         "WHERE plan_hash = %s ORDER BY step", (plan.hash,)).fetchall()
    assert [s[1] for s in steps] == ["done"] * len(plan.steps)
    for step, row in zip(plan.steps, steps, strict=True):
        if step.kind.value in ("ddl", "swap"):
            assert row[2] == len(step.sql), f"step {step.id}: statements recorded {row[2]}"
    copy = next(s for s in plan.steps if s.kind.value == "copy")
    # every key range exactly once, over several lanes walked at once
    assert assert_batches_exactly_once(conn, schema, plan.hash, copy.id, ROWS) > 1
    assert steps[copy.id - 1][3] == ROWS


@pytest.mark.parametrize("with_index", [False, True], ids=["copy-swap", "copy-swap-async-index"])
def test_sigkill_anywhere_then_resume(with_index: bool, has_jobs: bool, target_url: str,
                                      raw_conn: psycopg.Connection[Any], state_schema: str,
                                      table_name: str, tmp_path: Path) -> None:
    if with_index and not has_jobs:
        pytest.skip("the target has no sys.jobs (async jobs need the DSQL emulator)")
    create_source(raw_conn, table_name, ROWS)
    before = checksum(raw_conn, table_name)
    plan = recreate_plan(table_name, rows=ROWS, batch_size=500, unique_index=with_index)
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan.to_json())

    once = ["step.after_mark_running:1", "ddl.before_execute:1", "verify.after_check:1",
            "swap.between:1"]
    if with_index:
        # the emulator's jobs finish fast: kill in the wait first, after a submit later
        once += ["async.wait:1"]
    ddl_kills_left = 5
    kills: list[str] = []
    for run in range(100):
        _, kind = _current_step(raw_conn, state_schema, plan.hash)
        parts = list(once)
        if ddl_kills_left:
            parts.append("ddl.after_execute:1")
        if kind in ("none", "verify", "ddl", "copy"):
            parts.append(f"batch.{'before' if run % 2 else 'after'}_commit:{2 + run % 7}")
        proc = _apply(plan_file, target_url, state_schema, tmp_path, crash=",".join(parts))
        out, err = proc.communicate(timeout=300)
        if proc.returncode == 0:
            break
        assert proc.returncode == -9, f"run {run} failed ({proc.returncode}):\n{err}\n{out}"
        point = err.rsplit("crash point ", 1)[1].split()[0]
        kills.append(point)
        once = [p for p in once if not p.startswith(point + ":")]
        if point == "async.wait":
            once.append("async.after_submit:1")
        if point == "ddl.after_execute":
            ddl_kills_left -= 1
    else:
        pytest.fail(f"no run finished after {len(kills)} kills")

    assert len(kills) >= 20, kills
    for point in ("batch.before_commit", "batch.after_commit", "ddl.after_execute",
                  "swap.between", *(("async.wait",) if with_index else ())):
        assert point in kills, (point, kills)
    assert checksum(raw_conn, table_name) == before
    assert raw_conn.execute(
        "SELECT data_type FROM information_schema.columns WHERE table_name = %s AND "
        "column_name = 'v'", (table_name,)).fetchone() == ("bigint",)
    assert raw_conn.execute(f"SELECT to_regclass('\"{table_name}__old\"'), "
                            f"to_regclass('\"{table_name}__new\"')").fetchone() == (None, None)
    if with_index:
        assert raw_conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)",
            (f'"{table_name}_note_key"',)).fetchone() == (True,)
    _assert_state_is_clean(raw_conn, state_schema, plan)


def test_four_runners_at_once(target_url: str, raw_conn: psycopg.Connection[Any],
                              state_schema: str, table_name: str, tmp_path: Path) -> None:
    create_source(raw_conn, table_name, ROWS // 5)
    before = checksum(raw_conn, table_name)
    plan = recreate_plan(table_name, rows=ROWS // 5, batch_size=1000)
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan.to_json())
    procs = [_apply(plan_file, target_url, state_schema, tmp_path,
                    extra=("--wait-lock", "120") if i % 2 else ())
             for i in range(4)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(r[0] for r in results)
    assert all(c in (0, 4) for c in codes), results
    assert 0 in codes
    events = [json.loads(line) for _, out, err in results for line in err.splitlines()
              if line.startswith("{")]
    starts = [e for e in events if e["event"] in ("step.start", "step.resume")]
    # every step started exactly once over all four runners
    assert sorted(e["step"] for e in starts) == [s.id for s in plan.steps]
    workers = [i for i, (_, _, err) in enumerate(results) if '"step.start"' in err]
    assert len(workers) == 1, results
    for i, (code, _, err) in enumerate(results):
        if i != workers[0]:
            assert code == 4 or (code == 0 and '"plan.nothing"' in err), (i, code, err)
            assert code == 0 or "another runner holds the lock" in err
    assert checksum(raw_conn, table_name) == before
