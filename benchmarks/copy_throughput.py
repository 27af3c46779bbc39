"""Copy throughput: the runner's batched, resumable copy vs one unbatched INSERT ... SELECT.

Both copies run in one process, side by side, on a throwaway local target:

- **runner**: a table recreation plan (create ``__new``, keyset copy, verify, swap) applied by
  the runner through the DSQL emulator; every batch is a DSQL-legal transaction (<= the row and
  byte limits) that also advances the cursor in the state tables. The copy step alone is timed.
- **unbatched**: ``INSERT INTO copy SELECT ... FROM src`` as one statement directly on the
  embedded PostgreSQL (no DSQL rules; on DSQL this would exceed the 3,000-row limit).

Usage::

    python benchmarks/copy_throughput.py            # 1,000,000 rows, batches of 1000 and 2995
    python benchmarks/copy_throughput.py --rows 100000 --batch-size 2000

Prints rows/s for both and the ratio (goal: >= 0.7).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from dsql_migrate.local import LocalInstance
from dsql_migrate.plan import Batch, Estimate, Plan, Step, StepKind
from dsql_migrate.runner import Runner, RunOptions, Session, StateStore
from dsql_migrate.runner.events import Event

COLUMNS = "id bigint PRIMARY KEY, v integer, note text, created timestamptz"


def make_source(raw_url: str, rows: int) -> None:
    with psycopg.connect(raw_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_src, bench_src__new, bench_src__old, "
                     "bench_base CASCADE")
        conn.execute(f"CREATE TABLE bench_src ({COLUMNS})")
        conn.execute(f"""INSERT INTO bench_src SELECT g, (g * 7) % 100003, 'note ' || g,
            timestamptz '2026-01-01' + g * interval '1 s' FROM generate_series(1, {rows}) g""")
        conn.execute("ANALYZE bench_src")


def unbatched_copy(raw_url: str) -> float:
    with psycopg.connect(raw_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE bench_base ({COLUMNS.replace('v integer', 'v bigint')})")
        started = time.perf_counter()
        conn.execute("INSERT INTO bench_base (id, v, note, created) "
                     "SELECT id, v::bigint, note, created FROM bench_src")
        return time.perf_counter() - started


def recreate_plan(rows: int, batch_size: int) -> Plan:
    bounds = ("SELECT id FROM (SELECT id FROM bench_src WHERE %(after_id)s::bigint IS NULL OR "
              "id > %(after_id)s::bigint ORDER BY id LIMIT %(size)s) AS page "
              "ORDER BY id DESC LIMIT 1")
    return Plan(profile="current", steps=(
        Step(1, StepKind.DDL, "create bench_src__new",
             (f"CREATE TABLE bench_src__new ({COLUMNS.replace('v integer', 'v bigint')})",)),
        Step(2, StepKind.COPY, "copy bench_src into bench_src__new",
             ("INSERT INTO bench_src__new (id, v, note, created) SELECT id, v::bigint, note, "
              "created FROM bench_src WHERE (%(after_id)s::bigint IS NULL OR "
              "id > %(after_id)s::bigint) AND id <= %(upto_id)s::bigint",),
             batch=Batch("bench_src", ("id",), ("bigint",), batch_size, bounds),
             estimate=Estimate(rows=rows)),
        Step(3, StepKind.VERIFY, "row counts", (
            "SELECT (SELECT count(*) FROM bench_src) AS source_rows, (SELECT count(*) FROM "
            "bench_src__new) AS target_rows, (SELECT count(*) FROM bench_src) = (SELECT "
            "count(*) FROM bench_src__new) AS ok",)),
        Step(4, StepKind.SWAP, "swap", ("ALTER TABLE bench_src RENAME TO bench_src__old",
                                        "ALTER TABLE bench_src__new RENAME TO bench_src"),
             details={"verified_by": 3}),
    ))


def runner_copy(url: str, rows: int, batch_size: int) -> tuple[float, int]:
    timings: dict[str, float] = {}
    batches = 0

    def on_event(event: Event) -> None:
        nonlocal batches
        if event.step == 2 and event.kind in ("step.start", "step.done"):
            timings[event.kind] = time.perf_counter()
        if event.kind == "batch":
            batches += 1
    session = Session(lambda: psycopg.connect(url, autocommit=True))
    try:
        Runner(session, store=StateStore("bench_state"), options=RunOptions(
            batch_size=batch_size), on_event=on_event).apply(recreate_plan(rows, batch_size))
    finally:
        session.close()
    return timings["step.done"] - timings["step.start"], batches


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, action="append", dest="batch_sizes",
                        help="rows per batch of the runner; repeat to compare several "
                        "(default: 1000, the runner's default, and 2995, the most a DSQL "
                        "transaction allows next to the runner's three state rows)")
    parser.add_argument("--dir", type=Path, help="local target directory (default: a temp dir)")
    args = parser.parse_args(argv)
    sizes = args.batch_sizes or [1000, 2995]
    results: list[tuple[int, int, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="dsql-migrate-bench-") as tmp:
        instance = LocalInstance(args.dir or Path(tmp) / "target")
        url = instance.start()
        raw = instance.raw_url()
        try:
            for size in sizes:
                make_source(raw, args.rows)
                base_seconds = unbatched_copy(raw)
                with psycopg.connect(raw, autocommit=True) as conn:
                    conn.execute("DROP SCHEMA IF EXISTS bench_state CASCADE")
                copy_seconds, batches = runner_copy(url, args.rows, size)
                with psycopg.connect(raw) as conn:
                    row: Any = conn.execute("SELECT count(*) FROM bench_src").fetchone()
                assert row[0] == args.rows, f"copied {row[0]} rows, expected {args.rows}"
                results.append((size, batches, base_seconds, copy_seconds))
        finally:
            if args.dir is None:
                instance.destroy()
    print(f"rows: {args.rows:,}")
    for size, batches, base_seconds, copy_seconds in results:
        base_rate = args.rows / base_seconds
        runner_rate = args.rows / copy_seconds
        print(f"unbatched INSERT ... SELECT on PostgreSQL: {base_seconds:8.2f} s "
              f"{base_rate:12,.0f} rows/s")
        print(f"runner copy on the emulator, {batches} batches of <= {size}: "
              f"{copy_seconds:8.2f} s {runner_rate:12,.0f} rows/s")
        print(f"  ratio runner / unbatched at batch size {size}: {runner_rate / base_rate:.2f} "
              "(goal >= 0.70)")


if __name__ == "__main__":
    main()
