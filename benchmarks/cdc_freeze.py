"""The write freeze of ``apply --writes cdc``: how long the application cannot write.

Each run, on a throwaway local target started with CDC (``local start --cdc``; with
``--chaos``, ``--cdc-chaos``: records duplicated, delayed and reordered), whose stream is the
producer, as DSQL's is on AWS:

- a table of ``--rows`` rows (``id bigint`` key, ``v integer``, ``note text``);
- the planner's ``--writes cdc`` plan for ``v integer -> bigint`` (a table recreation);
- a writer thread doing inserts, updates and deletes at ``--rate`` transactions per second,
  recording every committed write (the emulator streams them), retrying a write that fails;
- the runner applying the plan in this process with the options ``apply --cdc-stream local``
  resolves (the emulator's stream ARN, Kinesis endpoint, dummy keys and DSQL control plane).

After each run the new table must equal the writer's record of its committed writes. Prints
per run the freeze (from the REVOKE to the new table in place, database clock), the writer's
errors (only while frozen: 42501 permission denied, 42P01 between the renames) and the whole
apply; then the median freeze over the runs (goal: < 1 s) and the load average.

Usage::

    python benchmarks/cdc_freeze.py                       # 300,000 rows, 100 tx/s, 5 runs
    python benchmarks/cdc_freeze.py --rows 20000 --runs 3 --chaos
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "runner"))

from cdc_support import Writer, cdc_emulator, table_rows

from dsql_migrate.diff import diff_live, load_target
from dsql_migrate.plan import Plan
from dsql_migrate.planner import WRITES_CDC, Options
from dsql_migrate.planner import plan as make_plan
from dsql_migrate.profiles import CURRENT
from dsql_migrate.runner import Runner, RunOptions, Session, StateStore
from dsql_migrate.runner.events import Event

TABLE = "bench_cdc"


def make_source(raw_url: str, rows: int) -> None:
    with psycopg.connect(raw_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}, {TABLE}__new, {TABLE}__old CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS bench_state CASCADE")
        conn.execute(f"CREATE TABLE {TABLE} (id bigint PRIMARY KEY, v integer, note text)")
        conn.execute(f"INSERT INTO {TABLE} SELECT g, (g * 7) % 100003, 'n' || g "
                     f"FROM generate_series(1, {rows}) g")
        conn.execute(f"VACUUM (ANALYZE) {TABLE}")


def cdc_plan(url: str, raw_url: str, desired: Path) -> Plan:
    target = load_target(str(desired), scratch_server=raw_url)
    result, live = diff_live(url, target)
    return make_plan(result.ops, live, result.desired, CURRENT, Options(writes=WRITES_CDC))


def stream_options(info: dict[str, Any]) -> dict[str, Any]:
    """What ``apply --cdc-stream local`` resolves from the emulator's ``cdc_info()``."""
    return {"cdc_stream": info["cdc_stream_arn"], "cdc_endpoint": info["cdc_kinesis_endpoint"],
            "cdc_cluster": info["cdc_cluster_id"], "cdc_dsql_endpoint": info["cdc_dsql_endpoint"],
            "cdc_credentials": (info["cdc_access_key_id"], info["cdc_secret_access_key"])}


def one_run(url: str, raw_url: str, desired: Path, stream: dict[str, Any], *, rows: int,
            rate: float, show: bool = False) -> dict[str, Any]:
    make_source(raw_url, rows)
    plan = cdc_plan(url, raw_url, desired)
    with psycopg.connect(raw_url, autocommit=True) as conn:
        expected = table_rows(conn, TABLE)
    writer = Writer(url, TABLE, None, expected, rate=rate)
    freezes: list[float] = []

    def on_event(event: Event) -> None:
        if show and (event.kind.startswith(("cdc.", "verify", "step.")) or freezes == []):
            print(f"  {time.strftime('%H:%M:%S')}.{int(time.time() * 1000) % 1000:03d} "
                  f"{event.message[:150]}", flush=True)
        if event.kind == "cdc.freeze":
            freezes.append(float(event.data["freeze_seconds"]))
    session = Session(lambda: psycopg.connect(url, autocommit=True))
    writer.start()
    started = time.perf_counter()
    try:
        Runner(session, store=StateStore("bench_state"), options=RunOptions(
            allow_destructive=True, **stream), on_event=on_event).apply(plan)
        applied = time.perf_counter() - started
        time.sleep(0.5)
    finally:
        writer.finish()
        session.close()
    with psycopg.connect(raw_url, autocommit=True) as conn:
        got = table_rows(conn, TABLE)
    lost = len(set(expected) - set(got)) + len(set(got) - set(expected)) + sum(
        1 for k in set(got) & set(expected) if got[k] != expected[k])
    assert lost == 0, f"{lost} rows differ from the writer's record"
    assert {e[1] for e in writer.errors} <= {"42501", "42P01"}, writer.errors[:5]
    return {"freeze": freezes[-1], "errors": len(writer.errors), "apply": applied,
            "committed": writer.committed}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--rate", type=float, default=100.0,
                        help="the writer's transactions per second (default 100)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--chaos", action="store_true",
                        help="duplicate, hold back and reorder the stream's records")
    parser.add_argument("--dir", type=Path,
                        help="local target directory (default: a temp dir); destroyed after")
    parser.add_argument("--events", action="store_true", help="print the runner's events")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="dsql-migrate-bench-") as tmp, \
            cdc_emulator(args.dir or Path(tmp) / "target", chaos=args.chaos) as instance:
        desired = Path(tmp) / "desired.sql"
        desired.write_text(f"CREATE TABLE {TABLE} (id bigint PRIMARY KEY, v bigint, "
                           "note text);\n")
        stream = stream_options(instance.cdc_info())
        for run in range(args.runs):
            result = one_run(instance.url(), instance.raw_url(), desired, stream,
                             rows=args.rows, rate=args.rate, show=args.events)
            results.append(result)
            print(f"run {run + 1}: freeze {result['freeze']:.3f} s, writer errors "
                  f"{result['errors']} (of {result['committed']} committed writes), apply "
                  f"{result['apply']:.1f} s; new table equals the writer's record "
                  f"(load average {os.getloadavg()[0]:.1f})", flush=True)
    freezes = sorted(r["freeze"] for r in results)
    print(f"rows: {args.rows:,}, writer {args.rate:g} tx/s, chaos {'on' if args.chaos else 'off'}"
          f", {args.runs} runs")
    print(f"median freeze {statistics.median(freezes):.3f} s (runs: "
          f"{', '.join(f'{f:.3f}' for f in freezes)}; goal < 1 s); median writer errors "
          f"{statistics.median(r['errors'] for r in results):g}; load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    # a SIGTERM (a timeout, a kill) unwinds the context managers: the throwaway target stops
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
