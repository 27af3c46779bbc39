"""How much the emulator costs: the same loop, directly against the embedded PostgreSQL and
through the emulator (the DSQL-rules proxy), in one run; prints the latency ratio.

    python benchmarks/emulator_overhead.py [--dir DIR] [--rounds N]

The loop, per round: a small SELECT by primary key, a single-row INSERT (autocommit) and a
single-row UPDATE in an explicit transaction (BEGIN/UPDATE/COMMIT), each over one connection with
psycopg. The two targets alternate in blocks so machine noise hits both alike; the number is the
median per-round latency. Both targets are the same database, so the server-side parts of the
emulator (the row-counting triggers, which run only for emulator sessions) are part of the cost.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from dsql_migrate.local import LocalInstance


def one_round(conn: psycopg.Connection[Any], key: int) -> float:
    start = time.perf_counter()
    conn.execute("SELECT v FROM bench WHERE id = %s", (key % 100,)).fetchone()
    conn.execute("INSERT INTO bench (id, v) VALUES (%s, 'x')", (key,))
    with conn.transaction():
        conn.execute("UPDATE bench SET v = 'y' WHERE id = %s", (key,))
    return time.perf_counter() - start


def measure(url: str, keys: range, *, server_rules: bool = True) -> list[float]:
    with psycopg.connect(url, autocommit=True) as conn:
        if not server_rules:  # only to show where the time goes: the proxy alone
            conn.execute("SET dsql.emulate = off")
        return [one_round(conn, key) for key in keys]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None, help="state dir (default: a temp one)")
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        instance = LocalInstance(args.dir or Path(tmp) / "bench")
        url = instance.start()
        raw = instance.raw_url()
        try:
            with psycopg.connect(raw, autocommit=True) as conn:
                conn.execute("DROP TABLE IF EXISTS bench")
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE TABLE bench (id bigint PRIMARY KEY, v text)")
                conn.execute("INSERT INTO bench SELECT g, 'x' FROM generate_series(0, 99) g")
            direct: list[float] = []
            proxied: list[float] = []
            proxy_only: list[float] = []
            block = 200
            next_key = 1000
            measure(raw, range(10**9, 10**9 + 100))  # warm up both paths
            measure(url, range(2 * 10**9, 2 * 10**9 + 100))
            for _ in range(max(1, args.rounds // block)):
                direct += measure(raw, range(next_key, next_key + block))
                next_key += block
                proxied += measure(url, range(next_key, next_key + block))
                next_key += block
                proxy_only += measure(url, range(next_key, next_key + block),
                                      server_rules=False)
                next_key += block
        finally:
            if args.dir is None:
                instance.destroy()
    d, p = statistics.median(direct), statistics.median(proxied)
    o = statistics.median(proxy_only)
    print(f"rounds per target: {len(direct)} (SELECT by key + INSERT + BEGIN/UPDATE/COMMIT)")
    print(f"direct PostgreSQL: {d * 1e6:8.0f} us per round (median)")
    print(f"through emulator:  {p * 1e6:8.0f} us per round (median)")
    print(f"  of which the proxy hop alone (server-side rules off): {o * 1e6:8.0f} us "
          f"({o / d:.2f}x)")
    print(f"ratio: {p / d:.2f}x")


if __name__ == "__main__":
    main()
