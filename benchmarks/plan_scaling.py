"""Round trips and time of ``dsql-migrate plan`` vs Alembic's ``compare_metadata``.

DSQL is remote: every round trip costs milliseconds, so the number of catalog queries must not
grow with the number of tables. This script builds a schema of N tables (default 500) on the
local embedded PostgreSQL, a SQLAlchemy model of the same schema with a handful of changes, and
measures, in one run and side by side:

- dsql-migrate: the live snapshot (``catalog.snapshot``) alone, and the whole ``plan``
  (snapshot + comparison + planning);
- Alembic: ``compare_metadata`` over the same database and model;

each ``--repeat`` times, interleaved, reporting the median and the best run (issue 18 point 1:
the library call at least 10x faster than ``compare_metadata``); then, as whole processes
(imports included), ``dsql-migrate plan --target bench_model:metadata`` against a Python
process that runs ``compare_metadata`` on the same model (goal: at least 3x), and the floor
both share: a process that only imports SQLAlchemy and psycopg and builds the model.

Round trips are counted by wrapping ``psycopg.Cursor.execute`` (every statement sent by either
tool goes through it). Usage::

    python benchmarks/plan_scaling.py [--tables 500] [--small 100] [--repeat 5] [--url ...]

Without ``--url`` a throwaway local server is started in a temporary directory and removed.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from dsql_migrate.catalog import snapshot
from dsql_migrate.diff import Desired, diff_live, engine_for
from dsql_migrate.local import LocalInstance
from dsql_migrate.planner import plan
from dsql_migrate.profiles import CURRENT

COUNTER = {"n": 0}
_original_execute = psycopg.Cursor.execute


def _counting_execute(self: Any, *args: Any, **kwargs: Any) -> Any:
    COUNTER["n"] += 1
    return _original_execute(self, *args, **kwargs)


@contextmanager
def counted() -> Iterator[dict[str, float]]:
    result: dict[str, float] = {}
    psycopg.Cursor.execute = _counting_execute  # type: ignore[method-assign]
    COUNTER["n"] = 0
    start = time.perf_counter()
    try:
        yield result
    finally:
        result["seconds"] = time.perf_counter() - start
        result["round_trips"] = COUNTER["n"]
        psycopg.Cursor.execute = _original_execute  # type: ignore[method-assign]


def build_live(url: str, tables: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        for i in range(tables):
            conn.execute(
                f"CREATE TABLE t{i} (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, "
                f"name varchar(40), amount numeric(12, 2), "
                f"parent_id bigint{f' REFERENCES t{i - 1} (id)' if i else ''})")
            conn.execute(f"CREATE INDEX ix_t{i}_tenant ON t{i} (tenant_id)")


def build_model(tables: int) -> sa.MetaData:
    metadata = sa.MetaData()
    for i in range(tables):
        columns: list[Any] = [
            sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
            sa.Column("tenant_id", sa.Uuid, nullable=False),
            sa.Column("name", sa.String(40)),
            sa.Column("amount", sa.Numeric(12, 2)),
            sa.Column("parent_id", sa.BigInteger,
                      sa.ForeignKey(f"t{i - 1}.id") if i else None),
        ]
        if i == 1:
            columns.append(sa.Column("status", sa.Text, server_default="new"))  # add column
        if i == 2:
            columns[2] = sa.Column("name", sa.String(80))  # type change: recreation
        table = sa.Table(f"t{i}", metadata, *columns)
        sa.Index(f"ix_t{i}_tenant", table.c.tenant_id)
        if i == 3:
            sa.Index("ix_t3_name", table.c.name)  # new index
    sa.Table("brand_new", metadata, sa.Column("id", sa.BigInteger, sa.Identity(cache=1),
                                              primary_key=True))
    return metadata


def measure(url: str, tables: int, repeat: int) -> dict[str, dict[str, float]]:
    """In one process: each tool ``repeat`` times, interleaved; the median (and best) time of
    each. The garbage of the previous run is collected before each (it is not the next
    tool's cost)."""
    model = build_model(tables)
    runs: dict[str, list[dict[str, float]]] = {}

    def record(tool: str, result: dict[str, float]) -> None:
        runs.setdefault(tool, []).append(result)

    for _ in range(repeat):
        gc.collect()
        with counted() as snap_result, psycopg.connect(url, autocommit=True) as conn:
            snap = snapshot(conn)
        assert len(snap.tables) == tables
        record("dsql-migrate snapshot", snap_result)
        with counted() as plan_result:
            result, live = diff_live(url, Desired(metadata=model, source="benchmark"))
            planned = plan(result.ops, live, result.desired, CURRENT)
        assert planned.steps
        record("dsql-migrate plan", plan_result)
        gc.collect()
        engine = engine_for(url)
        try:
            with counted() as alembic_result, engine.connect() as sa_conn:
                diffs = compare_metadata(MigrationContext.configure(sa_conn, opts={
                    "compare_type": True, "compare_server_default": True}), model)
            assert diffs
        finally:
            engine.dispose()
        record("alembic compare_metadata", alembic_result)
    return {tool: {"seconds": statistics.median(r["seconds"] for r in results),
                   "best": min(r["seconds"] for r in results),
                   "round_trips": max(r["round_trips"] for r in results)}
            for tool, results in runs.items()}


def model_module(tables: int) -> str:
    """The model as a user's module: SQLAlchemy and the tables, nothing of this script."""
    return (f"from typing import Any\n\nimport sqlalchemy as sa\n\n\n"
            f"{inspect.getsource(build_model)}\n\nmetadata = build_model({tables})\n")

ALEMBIC_SCRIPT = """
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from bench_model import metadata
engine = sa.create_engine({url!r})
with engine.connect() as conn:
    assert compare_metadata(MigrationContext.configure(conn, opts={{
        "compare_type": True, "compare_server_default": True}}), metadata)
"""


#: what every process here pays before it compares anything: the interpreter, SQLAlchemy
#: and psycopg (the model needs one, the database the other) and the model itself
FLOOR_SCRIPT = "import psycopg, sqlalchemy, bench_model"


def measure_processes(url: str, tables: int, repeat: int) -> dict[str, float]:
    """Whole processes, imports included: ``dsql-migrate plan --target bench_model:metadata``
    and a Python process that runs ``compare_metadata`` on the same model (median wall
    time of ``repeat`` runs each, interleaved); and the floor both share (``FLOOR_SCRIPT``)."""
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "bench_model.py").write_text(model_module(tables))
        sa_url = "postgresql+psycopg://" + url.split("://", 1)[1]
        commands = {
            "dsql-migrate plan (process)": [sys.executable, "-m", "dsql_migrate", "plan",
                                            "--url", url, "--target", "bench_model:metadata"],
            "alembic compare_metadata (process)": [
                sys.executable, "-c", ALEMBIC_SCRIPT.format(url=sa_url)],
            "floor: python + imports + model": [sys.executable, "-c", FLOOR_SCRIPT],
        }
        env = {**os.environ, "PYTHONPATH": str(folder), "NO_COLOR": "1"}
        for _ in range(repeat):
            for tool, command in commands.items():
                start = time.perf_counter()
                subprocess.run(command, cwd=folder, env=env, check=True,
                               stdout=subprocess.DEVNULL)
                times.setdefault(tool, []).append(time.perf_counter() - start)
    return {tool: statistics.median(values) for tool, values in times.items()}


@contextmanager
def server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory() as tmp:
        instance = LocalInstance(Path(tmp) / "local")
        instance.start()
        try:
            yield instance.raw_url()
        finally:
            instance.destroy()


@contextmanager
def database(server_url: str) -> Iterator[str]:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=500)
    parser.add_argument("--small", type=int, default=100,
                        help="a smaller schema measured too, to show what grows")
    parser.add_argument("--repeat", type=int, default=5,
                        help="runs of each tool; the median is reported")
    parser.add_argument("--url", help="a PostgreSQL server to create scratch databases on")
    args = parser.parse_args(argv)
    report: Callable[[str], None] = print
    processes: dict[str, float] = {}
    with server(args.url) as server_url:
        results = {}
        for n in (args.small, args.tables):
            with database(server_url) as url:
                build_live(url, n)
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("ANALYZE")
                results[n] = measure(url, n, args.repeat)
                if n == args.tables:
                    processes = measure_processes(url, n, args.repeat)
    report(f"load average before / after: {LOAD_BEFORE} / {_load()}; median of "
           f"{args.repeat} runs each")
    report(f"{'':28}" + "".join(f"{f'{n} tables':>26}" for n in results))
    for tool in results[args.tables]:
        cells = "".join(
            f"{int(r[tool]['round_trips']):>6} trips {r[tool]['seconds'] * 1000:>5.0f} ms "
            f"(best {r[tool]['best'] * 1000:>4.0f})" for r in results.values())
        report(f"{tool:28}{cells}")
    big, small = results[args.tables], results[args.small]
    ours, whole = big["dsql-migrate snapshot"], big["dsql-migrate plan"]
    theirs = big["alembic compare_metadata"]
    report("")
    report(f"round trips, {args.small} -> {args.tables} tables: "
           + ", ".join(f"{tool} {int(small[tool]['round_trips'])} -> "
                       f"{int(big[tool]['round_trips'])}" for tool in big))
    report(f"in one process at {args.tables} tables, Alembic compare_metadata / dsql-migrate "
           f"snapshot: {theirs['seconds'] / ours['seconds']:.1f}x time")
    report(f"in one process at {args.tables} tables, Alembic compare_metadata / dsql-migrate "
           f"plan (snapshot + diff + planning): {theirs['seconds'] / whole['seconds']:.1f}x "
           f"time (goal: >= 10x; best runs: {theirs['best'] / whole['best']:.1f}x)")
    for tool, seconds in processes.items():
        report(f"{tool:36} {seconds * 1000:>8.0f} ms")
    if processes:
        alembic = processes["alembic compare_metadata (process)"]
        ratio = alembic / processes["dsql-migrate plan (process)"]
        report(f"whole processes at {args.tables} tables, Alembic compare_metadata / "
               f"dsql-migrate plan: {ratio:.1f}x time (goal: >= 3x)")
        report(f"  the most any process could reach: Alembic's / the floor = "
               f"{alembic / processes['floor: python + imports + model']:.1f}x")


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


LOAD_BEFORE = _load()


if __name__ == "__main__":
    main()
