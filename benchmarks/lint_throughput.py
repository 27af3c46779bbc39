"""Lint throughput: dsql-migrate lint vs AWS's dsql-lint, side by side on the same script.

    python benchmarks/lint_throughput.py [--statements 20000] [--repeat 3] [--keep FILE]

Generates a realistic migration script (CREATE TABLE with constraints, indexes, ALTERs, DML in
transaction blocks, comments), second, a worst-case script where every statement has a
problem to report (half as many statements), and third, a real pg_dump (the Northwind sample
of tests/convert/samples: schema, data as INSERTs, constraints) repeated to at least 10,000
statements, then times each, best of ``--repeat`` runs:

- ``dsql-migrate lint --format json FILE`` as a subprocess (interpreter start-up included), as
  it chooses (two processes only where a second CPU is idle by the load average), and with
  ``DSQL_MIGRATE_LINT_WORKERS`` set to 1 and to 2 (one process; two, whatever the load),
- ``dsql-lint --format json FILE`` as a subprocess (install it with ``pip install dsql-lint``),
- ``dsql_migrate.lint.lint_script`` in-process (the library cost alone),

and prints statements per second for each and the ratio of the two commands, by wall time and
by CPU time (user + system of the child: less inflated than wall time when other work shares
the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TYPES = ["bigint", "integer", "text", "varchar(255)", "boolean", "timestamptz", "numeric(12,2)",
         "uuid", "date", "jsonb"]


def generate(n: int, seed: int = 7) -> tuple[str, int]:
    """A script of at least ``n`` statements; returns (text, exact statement count)."""
    rng = random.Random(seed)
    out: list[str] = []
    count = 0
    table = 0
    while count < n:
        table += 1
        t = f"app.t{table}"
        cols = [f"    c{i} {rng.choice(TYPES)}{' NOT NULL' if rng.random() < 0.3 else ''}"
                for i in range(rng.randint(3, 10))]
        out.append(f"-- table {table}")
        out.append(
            f"CREATE TABLE {t} (\n    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),\n"
            f"    tenant_id uuid NOT NULL,\n" + ",\n".join(cols) + ",\n"
            f"    created_at timestamptz NOT NULL DEFAULT now(),\n"
            f"    CONSTRAINT t{table}_c0_check CHECK (c0 IS NOT NULL),\n"
            f"    UNIQUE (tenant_id, c1)\n);"
        )
        out.append(f"CREATE INDEX ASYNC ix_t{table}_tenant ON {t} (tenant_id, created_at);")
        out.append(f"CREATE INDEX ix_t{table}_c2 ON {t} (c2);")
        out.append(f"ALTER TABLE {t} ADD COLUMN note text;")
        out.append(f"ALTER TABLE {t} ADD CONSTRAINT t{table}_note_len CHECK "
                   f"(length(note) < 500) NOT VALID;")
        out.append(f"ALTER TABLE ASYNC {t} VALIDATE CONSTRAINT t{table}_note_len;")
        out.append("BEGIN;")
        out.append(f"INSERT INTO {t} (tenant_id, c0, c1) VALUES "
                   f"('{rng.getrandbits(64):x}', 1, 'a'), ('{rng.getrandbits(64):x}', 2, 'b');")
        out.append(f"UPDATE {t} SET note = 'seeded' WHERE c0 = {rng.randint(1, 9)};")
        out.append(f"DELETE FROM {t} WHERE created_at < now() - interval '30 days';")
        out.append("COMMIT;")
        out.append(f"SELECT count(*) FROM {t} WHERE tenant_id = '{rng.getrandbits(32):x}';")
        count += 11
    return "\n".join(out) + "\n", count


DIRTY = [
    "CREATE TABLE d{i} (id serial PRIMARY KEY, tags text[], name text COLLATE \"C\");",
    "CREATE INDEX ix_d{i} ON d{i} USING btree (name DESC);",
    "CREATE INDEX CONCURRENTLY ix2_d{i} ON d{i} (name);",
    "ALTER TABLE d{i} ADD COLUMN flag int DEFAULT 0;",
    "ALTER TABLE d{i} ALTER COLUMN name TYPE varchar(50);",
    "CREATE SEQUENCE s{i} AS integer CACHE 10;",
    "CREATE TEMPORARY TABLE tmp{i} (a int);",
    "TRUNCATE d{i};",
    "BEGIN;",
    "CREATE TABLE e{i} (a int);",
    "INSERT INTO e{i} VALUES (1);",
    "COMMIT;",
]


def generate_dirty(n: int) -> tuple[str, int]:
    """A script where every statement has something to report (the linter's worst case)."""
    out: list[str] = []
    i = 0
    while len(out) < n:
        out.extend(line.format(i=i) for line in DIRTY)
        i += 1
    return "\n".join(out) + "\n", len(out)


PG_DUMP = Path(__file__).resolve().parent.parent / "tests/convert/samples/northwind-pg_dump.sql"


def generate_pg_dump(n: int) -> tuple[str, int]:
    """The Northwind pg_dump repeated until it has at least ``n`` statements."""
    from dsql_migrate.sql import split_script

    dump = PG_DUMP.read_text(encoding="utf-8")
    per_copy = len(split_script(dump))
    copies = -(-n // per_copy)
    return dump * copies, per_copy * copies


def find_dsql_lint() -> str | None:
    here = Path(sys.executable).parent / "dsql-lint"
    if here.exists():
        return str(here)
    return shutil.which("dsql-lint")


def find_dsql_migrate() -> list[str]:
    here = Path(sys.executable).parent / "dsql-migrate"
    if here.exists():
        return [str(here)]
    return [sys.executable, "-m", "dsql_migrate"]


def best_of(repeat: int, fn: object) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def best_cpu_of(repeat: int, cmd: list[str], env: dict[str, str] | None = None) -> float:
    """The least CPU time (user + system, with the command's own children) of ``repeat`` runs
    of ``cmd``."""
    times = []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        run_cmd(cmd, env)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        times.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return min(times)


def run_cmd(cmd: list[str], env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if proc.returncode not in (0, 1, 3):
        raise SystemExit(f"{cmd[0]} failed with exit code {proc.returncode}:\n{proc.stderr}")
    return proc


def measure(label: str, script: str, n: int, repeat: int, keep: Path | None) -> None:
    if keep:
        keep.write_text(script, encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sql"
        path.write_text(script, encoding="utf-8")
        print(f"\n{label}: {n:,} statements, {len(script) / 1e6:.1f} MB")

        from dsql_migrate.lint import LintSettings, lint_script
        from dsql_migrate.profiles import CURRENT

        settings = LintSettings.build(CURRENT)
        result = lint_script(script, settings)
        lib = best_of(repeat, lambda: lint_script(script, settings))
        print(f"  dsql-migrate (library, in-process): {n / lib:>10,.0f} statements/s "
              f"({lib:.3f} s, {len(result.diagnostics)} diagnostics)")

        ours_cmd = [*find_dsql_migrate(), "lint", "--format", "json", str(path)]
        ours_doc = json.loads(run_cmd(ours_cmd).stdout)
        ours = best_of(repeat, lambda: run_cmd(ours_cmd))
        ours_cpu = best_cpu_of(repeat, ours_cmd)
        print(f"  dsql-migrate lint (command):        {n / ours:>10,.0f} statements/s "
              f"({ours:.3f} s, cpu {ours_cpu:.3f} s, "
              f"{ours_doc['summary']['diagnostics']} diagnostics)")
        modes = {}
        for workers in ("1", "2"):
            env = {**os.environ, "DSQL_MIGRATE_LINT_WORKERS": workers}
            if run_cmd(ours_cmd, env).stdout != json.dumps(ours_doc, ensure_ascii=False) + "\n":
                raise SystemExit(f"DSQL_MIGRATE_LINT_WORKERS={workers}: a different report")
            modes[workers] = (best_of(repeat, lambda env=env: run_cmd(ours_cmd, env)),
                              best_cpu_of(repeat, ours_cmd, env))
            print(f"    with DSQL_MIGRATE_LINT_WORKERS={workers}:  "
                  f"{n / modes[workers][0]:>10,.0f} statements/s ({modes[workers][0]:.3f} s, "
                  f"cpu {modes[workers][1]:.3f} s)")

        theirs_bin = find_dsql_lint()
        if theirs_bin is None:
            print("  dsql-lint is NOT installed, no comparison: pip install dsql-lint")
            return
        theirs_cmd = [theirs_bin, "--format", "json", str(path)]
        their_doc = json.loads(run_cmd(theirs_cmd).stdout)
        their_count = sum(len(f["diagnostics"]) for f in their_doc["files"])
        theirs = best_of(repeat, lambda: run_cmd(theirs_cmd))
        theirs_cpu = best_cpu_of(repeat, theirs_cmd)
        print(f"  dsql-lint (command):                {n / theirs:>10,.0f} statements/s "
              f"({theirs:.3f} s, cpu {theirs_cpu:.3f} s, {their_count} diagnostics)")
        print(f"  ratio dsql-migrate lint / dsql-lint (commands): {theirs / ours:.2f}x "
              f"(by CPU time: {theirs_cpu / ours_cpu:.2f}x); one process "
              f"{theirs / modes['1'][0]:.2f}x, two {theirs / modes['2'][0]:.2f}x")
        print(f"  ratio dsql-migrate library / dsql-lint:         {theirs / lib:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--statements", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="also write the realistic script here")
    ap.add_argument("--no-worst-case", action="store_true",
                    help="skip the second script, where every statement has a problem")
    ap.add_argument("--only", choices=("realistic", "worst", "pg_dump"),
                    help="run one of the three scripts only")
    args = ap.parse_args()
    if args.statements < 10_000:
        ap.error("use at least 10,000 statements")
    if find_dsql_lint() is None:
        print("NOTE: dsql-lint is not installed, so there is nothing to compare with: "
              "pip install dsql-lint")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
          f"{os.cpu_count()} CPUs")
    if args.only in (None, "realistic"):
        script, n = generate(args.statements)
        measure("realistic migration script", script, n, args.repeat, args.keep)
    if args.only in (None, "worst") and not args.no_worst_case:
        dirty, m = generate_dirty(args.statements // 2)
        measure("worst case: every statement has a problem", dirty, m, args.repeat, None)
    if args.only in (None, "pg_dump"):
        dump, k = generate_pg_dump(args.statements // 2)
        measure(f"pg_dump: {PG_DUMP.name} repeated", dump, k, args.repeat, None)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
