"""Start-up: how long ``dsql-migrate --help``, ``status``, ``lint`` of a one-statement file and
the pre-commit hook ``ci lint-revisions`` on a typical revision take as whole processes
(issue 18: --help and status <= 150 ms, lint <= 60 ms; issue 17: the hook well under 1 s).

Each command runs ``--repeat`` times in a fresh process; the script prints, per command, the
best wall time, the best CPU time (user + system of the child: less inflated than wall time
when other work shares the machine), the number of modules imported (``python -X importtime``)
and the five largest imports by cumulative time, beside the bare interpreter's start-up and
the load average, since the figures mean little without them. ``status`` runs against a
throwaway local target started first (its start is not measured).

Beside them, the floors: the interpreter alone, and the imports each command cannot do without
(the standard library modules every command uses; psycopg for ``status``, which connects, and
click, which parses its command line; SQLAlchemy and Alembic for the hook, since the revision
file imports them itself).

Bytecode writing is on in the children (``PYTHONDONTWRITEBYTECODE`` removed) and each command
runs once before it is timed, as an installed dsql-migrate runs: without that, every run would
compile dsql-migrate's sources again (about 40 ms of the lint run).

Usage::

    python benchmarks/startup.py              # 10 runs each
    python benchmarks/startup.py --repeat 20
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dsql_migrate.alembic import example_revision
from dsql_migrate.local import LocalInstance

GOALS = {"--help": 0.150, "status": 0.150, "lint one.sql": 0.060,
         "ci lint-revisions a1_add_accounts.py": 0.500}
FLOORS = {
    "python -c pass": "pass",
    "stdlib": "import dataclasses, enum, json, logging, pathlib, re, typing",
    "import psycopg": "import psycopg",
    "psycopg+click": "import psycopg, click",
    "sqlalchemy+alembic.op": "import sqlalchemy; from alembic import op",
}


def run_once(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall, cpu) seconds of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def imports(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, list[str]]:
    """How many modules one run imports, and the largest by cumulative microseconds."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "dsql_migrate", *args],
                          env=env, cwd=cwd, capture_output=True, text=True, check=False)
    rows = []
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2]))
    # the packages below dsql_migrate.cli (nesting: two spaces), and the other top-level ones
    nested = [(micros, name.strip()) for micros, name in rows
              if len(name) - len(name.lstrip()) <= 3 and name.strip() != "dsql_migrate.cli"]
    top = [f"{name} {micros / 1000:.0f}ms" for micros, name in sorted(nested, reverse=True)[:5]]
    return len(rows), top


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dsql-migrate-startup-") as tmp:
        cwd = Path(tmp)
        (cwd / "one.sql").write_text("CREATE TABLE t (id bigint PRIMARY KEY);\n")
        example_revision.write(cwd)
        instance = LocalInstance(cwd / ".dsql-migrate" / "local")
        instance.start()
        env = {**os.environ, "DSQL_MIGRATE_LOCAL_DIR": str(instance.directory)}
        env.pop("DSQL_MIGRATE_URL", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        script = Path(sys.executable).parent / "dsql-migrate"
        entry = [str(script)] if script.exists() else [sys.executable, "-m", "dsql_migrate"]
        try:
            print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
                  f"{os.cpu_count()} CPUs; best of {args.repeat}", flush=True)
            for label, code in FLOORS.items():
                floor = [run_once([sys.executable, "-c", code], env, cwd)
                         for _ in range(args.repeat)]
                print(f"{label:22}: wall {min(w for w, _ in floor) * 1000:6.0f} ms, "
                      f"cpu {min(c for _, c in floor) * 1000:5.0f} ms (floor: {code})",
                      flush=True)
            for label, goal in GOALS.items():
                command = label.split()
                run_once([*entry, *command], env, cwd)  # writes the bytecode, as installing does
                runs = [run_once([*entry, *command], env, cwd) for _ in range(args.repeat)]
                wall, cpu = min(w for w, _ in runs), min(c for _, c in runs)
                count, top = imports(command, env, cwd)
                print(f"{label:22}: wall {wall * 1000:6.0f} ms, cpu {cpu * 1000:5.0f} ms "
                      f"(goal {goal * 1000:.0f} ms: wall {wall / goal:.2f}x of it); "
                      f"{count} modules; largest: {', '.join(top)}", flush=True)
        finally:
            instance.destroy()
        print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
