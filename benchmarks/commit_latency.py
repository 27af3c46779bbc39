"""Commit latency: how well the runner's lanes hide a DSQL commit's latency.

On real DSQL every batch of a copy is a commit that crosses availability zones; the emulator
models it with ``--commit-latency`` (``Faults(commit_latency=...)``), added to every commit that
wrote. This copies ``--rows`` rows (a column type change: the planner's table recreation, as
in copy_throughput.py) with ``--parallel N`` for each N, once with the latency and once
without, in the same run, on a throwaway local target, and prints per N:

- rows/s with the latency, and the issue's ideal ``N x rows-per-batch / latency`` (what the
  lanes would reach if each batch cost only its commit's latency), and their ratio (goal 0.7);
- rows/s without the latency (what this machine's CPU allows at that N), and the ratio of the
  two: the share of the added latency the lanes hide (1.0: all of it);
- a batch's own work without the latency (ms a lane spends per batch: N x seconds / batches).
  A lane does its batches one after another, each its work plus the latency, so it reaches
  ``latency / (latency + work)`` of its ideal at most: 0.7 needs the work under 0.43 x the
  latency (4.3 ms at 10 ms), whatever N. The line says when that bound rules the goal out.

Usage::

    python benchmarks/commit_latency.py                      # 300,000 rows, 10 ms, N 1..16
    python benchmarks/commit_latency.py --latency-ms 10 --parallel 4 --parallel 8
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from copy_throughput import COLUMNS, make_source, recreate_plan, runner_copy

from dsql_migrate.local import LocalInstance
from dsql_migrate.local.proxy import Faults
from dsql_migrate.plan import StepKind


def one_copy(instance: LocalInstance, url: str, raw: str, desired: Path, rows: int,
             batch_size: int | None, parallel: int, latency: float) -> tuple[float, int, int]:
    """(seconds, batches, rows per batch) of one runner copy with the given commit latency."""
    make_source(raw, rows)
    instance.set_faults(Faults())  # planning is not what is measured
    plan = recreate_plan(url, raw, desired, batch_size)
    size = next(s.batch.size for s in plan.steps if s.batch is not None
                and s.kind == StepKind.COPY)
    instance.set_faults(Faults(commit_latency=latency))
    try:
        seconds, batches = runner_copy(url, plan, batch_size, parallel)
    finally:
        instance.set_faults(Faults())
    with psycopg.connect(raw) as conn:
        count = conn.execute("SELECT count(*) FROM bench_src").fetchone()
    assert count == (rows,), f"after the run: {count}"
    return seconds, batches, size


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--latency-ms", type=float, default=10.0)
    parser.add_argument("--batch-size", type=int, help="rows per batch (default: the plan's)")
    parser.add_argument("--parallel", type=int, action="append", dest="parallels",
                        help="lanes; repeat for several (default: 1, 2, 4, 8, 16)")
    parser.add_argument("--dir", type=Path, help="local target directory (default: a temp dir)")
    args = parser.parse_args(argv)
    latency = args.latency_ms / 1000
    parallels = args.parallels or [1, 2, 4, 8, 16]
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
          f"{os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory(prefix="dsql-migrate-bench-") as tmp:
        desired = Path(tmp) / "desired.sql"
        wider = COLUMNS.replace("v integer", "v bigint")
        desired.write_text(f"CREATE TABLE bench_src ({wider});\n")
        instance = LocalInstance(args.dir or Path(tmp) / "target")
        url = instance.start()
        raw = instance.raw_url()
        lines = []
        try:
            for parallel in parallels:
                slow, batches, size = one_copy(instance, url, raw, desired, args.rows,
                                               args.batch_size, parallel, latency)
                fast, free_batches, _ = one_copy(instance, url, raw, desired, args.rows,
                                                 args.batch_size, parallel, 0.0)
                rate, free = args.rows / slow, args.rows / fast
                ideal = parallel * size / latency
                work = fast * min(parallel, free_batches) / free_batches  # s per batch, a lane
                bound = latency / (latency + work)
                line = (f"parallel {parallel:2}: {rate:9,.0f} rows/s with {args.latency_ms:g} ms "
                        f"(ideal {ideal:10,.0f}, ratio {rate / ideal:.2f}); "
                        f"{free:9,.0f} rows/s without (latency hidden: {rate / free:.2f}); "
                        f"{batches} batches of <= {size}; work {work * 1000:.1f} ms/batch, "
                        f"so at most {bound:.2f} of the ideal"
                        f"{' (0.7 out of reach)' if bound < 0.7 else ''}; "
                        f"load {os.getloadavg()[0]:.1f}")
                lines.append(line)
                print(line, flush=True)
        finally:
            if args.dir is None:
                instance.destroy()
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"rows: {args.rows:,}; summary:")
    for line in lines:
        print("  " + line)


if __name__ == "__main__":
    main()
