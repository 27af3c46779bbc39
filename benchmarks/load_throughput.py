"""Load throughput: ``dsql-migrate load`` through the emulator vs ``COPY FROM`` straight into the
same PostgreSQL, for one CSV file, in one run.

- **copy**: ``COPY bench_copy FROM STDIN (FORMAT csv, HEADER true)``, the whole file in one
  transaction, on the embedded PostgreSQL directly (no DSQL rules, no batches: on DSQL this
  would exceed the 3,000-row limit), into a table of the same shape.
- **load**: what ``dsql-migrate load bench_load FILE`` runs (the same library call), through the
  DSQL emulator: batches of at most 2,995 rows and 5 MiB, each one transaction with its record in
  the state tables, ``--parallel`` workers, the emulator's row and byte counting on every batch.

Usage::

    python benchmarks/load_throughput.py                     # 1,000,000 rows, parallel 4
    python benchmarks/load_throughput.py --rows 200000 --parallel 2 --parallel 4

Prints rows/s for both and their ratio (goal: >= 0.7). Each load is measured right after its own
``COPY``, on fresh tables, so the noise of this machine hits both alike.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from dsql_migrate.load import LoadRequest, run_load
from dsql_migrate.load.source import get_format
from dsql_migrate.local import LocalInstance
from dsql_migrate.profiles import CURRENT

COLUMNS = "id bigint PRIMARY KEY, v integer, note text, created timestamptz"


def make_csv(path: Path, rows: int) -> None:
    """Quoted text with commas and quotes in it, like an export: the loader must respect them."""
    with path.open("w", encoding="utf-8") as out:
        out.write("id,v,note,created\n")
        for start in range(1, rows + 1, 100_000):
            out.write("".join(
                f'{i},{(i * 7) % 100003},"note {i}, ""quoted""",2026-01-01 00:00:{i % 60:02d}+00\n'
                for i in range(start, min(start + 100_000, rows + 1))))


def fresh_tables(url: str, raw_url: str) -> None:
    """Empty tables to load into, and no record of an earlier load (the state tables stay, as
    after any earlier dsql-migrate run: they are created once per database)."""
    with psycopg.connect(raw_url, autocommit=True) as raw:
        raw.execute("DROP TABLE IF EXISTS bench_copy, bench_load")
        for table in ("loads", "load_batches"):
            raw.execute(f"DELETE FROM bench_state.{table}")
        raw.execute(f"CREATE TABLE bench_copy ({COLUMNS})")  # plain PostgreSQL
    with psycopg.connect(url, autocommit=True) as conn:  # through the emulator: DSQL's rules
        conn.execute(f"CREATE TABLE bench_load ({COLUMNS})")


def create_state_tables(url: str, tmp: Path) -> None:
    """The state tables, made by a first load of one row (not measured)."""
    one = tmp / "one.csv"
    one.write_text("id\n1\n", encoding="utf-8")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_warmup (id bigint PRIMARY KEY)")
    run_load(LoadRequest(table="bench_warmup", location=str(one), format=get_format("csv")),
             lambda: psycopg.connect(url, autocommit=True), limits=CURRENT.limits,
             state_schema="bench_state")


def copy_from(raw_url: str, path: Path) -> float:
    with psycopg.connect(raw_url) as conn:
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(
                "COPY bench_copy FROM STDIN (FORMAT csv, HEADER true)") as copy, \
                path.open("rb") as data:
            while block := data.read(1 << 20):
                copy.write(block)
        conn.commit()
        return time.perf_counter() - started


def load(url: str, path: Path, parallel: int) -> tuple[float, int]:
    request = LoadRequest(table="bench_load", location=str(path), format=get_format("csv"),
                          parallel=parallel)
    started = time.perf_counter()
    result = run_load(request, lambda: psycopg.connect(url, autocommit=True),
                      limits=CURRENT.limits, state_schema="bench_state")
    return time.perf_counter() - started, result.batches


def count(url: str, table: str) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*), sum(v), count(DISTINCT id) FROM {table}").fetchone()
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--parallel", type=int, action="append", dest="parallels",
                        help="load workers; repeat to compare several (default: 4, the "
                        "command's default)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds per setting, each load measured beside its own COPY; the "
                        "median ratio is reported (default 3)")
    parser.add_argument("--dir", type=Path, help="local target directory (default: a temp dir)")
    args = parser.parse_args(argv)
    parallels = args.parallels or [4]
    ratios: dict[int, list[float]] = {p: [] for p in parallels}
    rates: dict[int, list[tuple[float, float]]] = {p: [] for p in parallels}
    with tempfile.TemporaryDirectory(prefix="dsql-migrate-bench-") as tmp:
        path = Path(tmp) / "bench.csv"
        make_csv(path, args.rows)
        path_size_mib = path.stat().st_size / 2**20
        instance = LocalInstance(args.dir or Path(tmp) / "target")
        url = instance.start()
        raw = instance.raw_url()
        try:
            create_state_tables(url, Path(tmp))
            for round_ in range(args.repeat):
                for parallel in parallels:
                    fresh_tables(url, raw)
                    copy_seconds = copy_from(raw, path)
                    load_seconds, batches = load(url, path, parallel)
                    assert count(raw, "bench_load") == count(raw, "bench_copy"), "rows differ"
                    ratios[parallel].append(copy_seconds / load_seconds)
                    rates[parallel].append((args.rows / copy_seconds, args.rows / load_seconds))
                    print(f"round {round_ + 1}, parallel {parallel}: COPY FROM "
                          f"{args.rows / copy_seconds:10,.0f} rows/s, load "
                          f"{args.rows / load_seconds:10,.0f} rows/s ({batches} batches), "
                          f"ratio {copy_seconds / load_seconds:.2f}", flush=True)
        finally:
            if args.dir is None:
                instance.destroy()
    print(f"{args.rows:,} rows, {path_size_mib:.0f} MiB CSV, {args.repeat} rounds")
    for parallel in parallels:
        copy_rate = statistics.median(c for c, _ in rates[parallel])
        load_rate = statistics.median(lo for _, lo in rates[parallel])
        print(f"parallel {parallel}: COPY FROM on PostgreSQL {copy_rate:10,.0f} rows/s; load on "
              f"the emulator {load_rate:10,.0f} rows/s; median ratio "
              f"{statistics.median(ratios[parallel]):.2f} (rounds: "
              f"{', '.join(f'{r:.2f}' for r in ratios[parallel])}; goal >= 0.70)")


if __name__ == "__main__":
    main()
