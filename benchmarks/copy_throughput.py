"""Copy throughput: the runner's batched, resumable copy vs one unbatched INSERT ... SELECT.

Both copies run in one process, side by side, on a throwaway local target:

- **runner**: the planner's own plan for a column type change (``v integer`` -> ``bigint``),
  a table recreation (create ``__new``, keyset copy, verify, swap), applied by the runner
  through the DSQL emulator. Every batch is a DSQL-legal transaction (<= the row and byte
  limits) that also advances its lane's cursor and writes its audit row in the state tables.
  The copy step alone is timed. It runs once per ``--parallel`` setting (lanes walked at once).
- **unbatched**: ``INSERT INTO copy SELECT ... FROM src`` as one statement directly on the
  embedded PostgreSQL (no DSQL rules; on DSQL this would exceed the 3,000-row limit), measured
  right before each runner copy, on the same source table.

Usage::

    python benchmarks/copy_throughput.py              # 1,000,000 rows, parallel 1 and 4
    python benchmarks/copy_throughput.py --rows 100000 --batch-size 2000 --parallel 2

Prints rows/s for both and their ratio per round, then the median ratio per setting (goal:
>= 0.85 with 4 lanes, issue 18). This machine is noisy: each runner copy is compared with the
unbatched copy measured just before it, in the same round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from dsql_migrate.diff import diff_live, load_target
from dsql_migrate.local import LocalInstance
from dsql_migrate.plan import Plan, StepKind
from dsql_migrate.planner import Options
from dsql_migrate.planner import plan as make_plan
from dsql_migrate.profiles import CURRENT
from dsql_migrate.runner import Runner, RunOptions, Session, StateStore
from dsql_migrate.runner.events import Event

COLUMNS = "id bigint PRIMARY KEY, v integer, note text, created timestamptz"


def make_source(raw_url: str, rows: int) -> None:
    with psycopg.connect(raw_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_src, bench_src__new, bench_src__old, "
                     "bench_base CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS bench_state CASCADE")
        conn.execute(f"CREATE TABLE bench_src ({COLUMNS})")
        conn.execute(f"""INSERT INTO bench_src SELECT g, (g * 7) % 100003, 'note ' || g,
            timestamptz '2026-01-01' + g * interval '1 s' FROM generate_series(1, {rows}) g""")
        # both copies read a settled table: no autovacuum of the fresh rows during either
        conn.execute("VACUUM (ANALYZE) bench_src")


def unbatched_copy(raw_url: str) -> float:
    with psycopg.connect(raw_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE bench_base ({COLUMNS.replace('v integer', 'v bigint')})")
        started = time.perf_counter()
        conn.execute("INSERT INTO bench_base (id, v, note, created) "
                     "SELECT id, v::bigint, note, created FROM bench_src")
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_base")  # its autovacuum would compete with the runner
        return elapsed


def recreate_plan(url: str, raw_url: str, desired: Path, batch_size: int | None) -> Plan:
    """What ``dsql-migrate plan`` makes of the type change, built by the same functions."""
    target = load_target(str(desired), scratch_server=raw_url)
    result, live = diff_live(url, target)
    planned = make_plan(result.ops, live, result.desired, CURRENT,
                        Options(batch_rows=batch_size))
    assert any(s.kind == StepKind.COPY for s in planned.steps), planned.to_json()
    return planned


def runner_copy(url: str, plan: Plan, batch_size: int | None,
                parallel: int) -> tuple[float, int]:
    timings: dict[str, float] = {}
    batches = 0
    copy = next(s.id for s in plan.steps if s.kind == StepKind.COPY)

    def on_event(event: Event) -> None:
        nonlocal batches
        if event.step == copy and event.kind in ("step.start", "step.done"):
            timings[event.kind] = time.perf_counter()
        if event.kind == "batch" and event.step == copy:
            batches += 1
    session = Session(lambda: psycopg.connect(url, autocommit=True))
    try:
        Runner(session, store=StateStore("bench_state"), options=RunOptions(
            batch_size=batch_size, parallel=parallel, allow_destructive=True),
            on_event=on_event).apply(plan)
    finally:
        session.close()
    return timings["step.done"] - timings["step.start"], batches


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int,
                        help="rows per batch (default: the plan's, as for a user: 2995 for a "
                        "recreation's copy, the most a DSQL transaction allows next to the "
                        "runner's state rows)")
    parser.add_argument("--parallel", type=int, action="append", dest="parallels",
                        help="lanes walked at once; repeat to compare several (default: 1, and "
                        "4, the runner's default)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds per setting, each copy measured beside its own unbatched "
                        "copy; the median ratio is reported (default 3)")
    parser.add_argument("--dir", type=Path, help="local target directory (default: a temp dir)")
    args = parser.parse_args(argv)
    parallels = args.parallels or [1, 4]
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
          f"{os.cpu_count()} CPUs", flush=True)
    results: dict[int, list[tuple[int, float, float]]] = {p: [] for p in parallels}
    size = args.batch_size
    with tempfile.TemporaryDirectory(prefix="dsql-migrate-bench-") as tmp:
        desired = Path(tmp) / "desired.sql"
        wider = COLUMNS.replace("v integer", "v bigint")
        desired.write_text(f"CREATE TABLE bench_src ({wider});\n")
        instance = LocalInstance(args.dir or Path(tmp) / "target")
        url = instance.start()
        raw = instance.raw_url()
        try:
            for round_ in range(args.repeat):
                for parallel in parallels:
                    make_source(raw, args.rows)
                    plan = recreate_plan(url, raw, desired, args.batch_size)
                    size = next(s.batch.size for s in plan.steps if s.batch is not None
                                and s.kind == StepKind.COPY)
                    base_seconds = unbatched_copy(raw)
                    copy_seconds, batches = runner_copy(url, plan, args.batch_size, parallel)
                    with psycopg.connect(raw) as conn:
                        row: Any = conn.execute(
                            "SELECT count(*), (SELECT data_type FROM information_schema.columns "
                            "WHERE table_name = 'bench_src' AND column_name = 'v') "
                            "FROM bench_src").fetchone()
                    assert row == (args.rows, "bigint"), f"after the run: {row}"
                    results[parallel].append((batches, base_seconds, copy_seconds))
                    print(f"round {round_ + 1}, parallel {parallel}: unbatched "
                          f"{args.rows / base_seconds:10,.0f} rows/s, runner "
                          f"{args.rows / copy_seconds:10,.0f} rows/s ({batches} batches), "
                          f"ratio {base_seconds / copy_seconds:.2f}", flush=True)
        finally:
            if args.dir is None:
                instance.destroy()
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"rows: {args.rows:,}, batches of <= {size}, {args.repeat} rounds")
    for parallel, rounds in results.items():
        ratios = sorted(base / copy for _, base, copy in rounds)
        median = statistics.median(ratios)
        base_rate = statistics.median(args.rows / base for _, base, _ in rounds)
        runner_rate = statistics.median(args.rows / copy for _, _, copy in rounds)
        print(f"parallel {parallel}: unbatched INSERT ... SELECT on PostgreSQL "
              f"{base_rate:10,.0f} rows/s; runner copy on the emulator {runner_rate:10,.0f} "
              f"rows/s; median ratio {median:.2f} (rounds: "
              f"{', '.join(f'{r:.2f}' for r in ratios)}; goal >= 0.85 with 4 lanes)")


if __name__ == "__main__":
    main()
