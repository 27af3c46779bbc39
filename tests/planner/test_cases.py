"""Data-driven planner cases: one folder per case under ``cases/``.

A case folder holds ``live.sql`` (the live schema and some rows), ``desired.sql`` (a
desired-state file) or ``desired.py`` (a module with a ``metadata``), ``case.toml`` (profile and
planner options) and ``expected.txt`` (the planned steps: ``<id> <kind>: <sql>``, one line per
statement). Two tests expand every case: the planned steps match ``expected.txt``, and executing
them step by step on PostgreSQL leaves no remaining difference.

Set ``DSQLM_UPDATE_EXPECTED=1`` to write ``expected.txt`` from the current planner (then review
the diff before committing).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from contextlib import ExitStack

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pglast
import psycopg
import pytest
from psycopg import sql as pgsql

from _support import PrivateTarget
from dsql_migrate.diff import Desired, Renames, diff_live, load_sql_target
from dsql_migrate.local import LocalInstance
from dsql_migrate.plan import DDL_KINDS, Plan, Step, StepKind, executable_sql
from dsql_migrate.planner import Options, plan
from dsql_migrate.profiles import get_profile
from dsql_migrate.runner import RunOptions
from dsql_migrate.runner.api import apply_plan

CASES = Path(__file__).parent / "cases"
CASE_NAMES = sorted(p.name for p in CASES.iterdir() if (p / "case.toml").is_file())
DDL_START = re.compile(r"^\s*(CREATE|ALTER|DROP|COMMENT|GRANT|REVOKE)\b", re.I)
QUERY_START = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b", re.I)


@dataclass
class Case:
    name: str
    folder: Path
    config: dict[str, Any]

    @property
    def profile(self) -> str:
        return str(self.config.get("profile", "current"))

    def options(self) -> Options:
        return Options(writes=self.config.get("writes", "pause"),
                       not_null=self.config.get("not_null", "recreate"),
                       batch_rows=self.config.get("batch_rows"))

    def renames(self) -> Renames:
        return Renames.parse(self.config.get("renames", []))

    def desired(self, server: str) -> Desired:
        sql = self.folder / "desired.sql"
        if sql.exists():
            return load_sql_target(sql, server)
        path = self.folder / "desired.py"
        spec = importlib.util.spec_from_file_location(f"planner_case_{self.name}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return Desired(metadata=module.metadata, source=str(path))


_DESIRED: dict[str, Desired] = {}


def desired_of(case: Case, server: str) -> Desired:
    """The case's desired schema, loaded once per session (loading it creates a database)."""
    if case.name not in _DESIRED:
        _DESIRED[case.name] = case.desired(server)
    return _DESIRED[case.name]


def load_case(name: str) -> Case:
    folder = CASES / name
    return Case(name, folder, tomllib.loads((folder / "case.toml").read_text()))


def make_plan(case: Case, server: str, live_url: str) -> Plan:
    with psycopg.connect(live_url, autocommit=True) as conn:
        conn.execute((case.folder / "live.sql").read_text().encode())
        conn.execute(b"ANALYZE")
    desired = desired_of(case, server)
    result, live = diff_live(live_url, desired, renames=case.renames())
    return plan(result.ops, live, result.desired, get_profile(case.profile), case.options(),
                warnings=result.warnings)


def expected_lines(plan_: Plan) -> list[str]:
    lines = []
    for step in plan_.steps:
        for statement in step.sql:
            flat = " ".join(statement.split())
            mark = " [destructive]" if step.destructive else ""
            lines.append(f"{step.id} {step.kind.value}{mark}: {flat}")
    lines.extend(f"warning: {w}" for w in plan_.warnings)
    return lines


def assert_structure(plan_: Plan, profile_name: str) -> None:
    """Point 5 without the linter: one DDL per step, DDL never mixed with DML, every CREATE
    INDEX is ASYNC, no batch above the profile's row limit."""
    limit = get_profile(profile_name).limits.rows_per_transaction
    for step in plan_.steps:
        ddl = [s for s in step.sql if DDL_START.match(s)]
        if step.kind in DDL_KINDS:
            assert len(step.sql) == 1 and len(ddl) == 1, step
        else:
            assert not ddl and all(QUERY_START.match(s) for s in step.sql), step
        for statement in step.sql:
            if re.match(r"^\s*CREATE\s+(UNIQUE\s+)?INDEX\b", statement, re.I):
                assert re.match(r"^\s*CREATE\s+(UNIQUE\s+)?INDEX\s+ASYNC\b", statement, re.I)
            assert not re.search(r"\b(SMALL|BIG)?SERIAL\b", statement, re.I), statement
        if step.batch is not None:
            assert step.batch.size <= limit
        if step.kind.is_batched:
            assert step.batch is not None
        for repair in step.details.get("repair", ()):
            assert step.batch is not None and step.batch.size * 2 <= limit, repair
        for statement in executable_sql(step):
            # until the linter lands: every statement is one valid statement (ASYNC aside)
            assert len(pglast.parse_sql(to_postgres(statement))) == 1, statement


@pytest.mark.parametrize("name", CASE_NAMES)
def test_case_plans_expected_steps(name: str, raw_url: str, scratch_url: str) -> None:
    case = load_case(name)
    planned = make_plan(case, raw_url, scratch_url)
    assert_structure(planned, case.profile)
    got = "\n".join(expected_lines(planned)) + "\n"
    expected_file = case.folder / "expected.txt"
    if os.environ.get("DSQLM_UPDATE_EXPECTED"):
        expected_file.write_text(got)
    assert got == expected_file.read_text()
    again = make_plan_again(case, raw_url, scratch_url)
    assert again.to_json() == planned.to_json()  # same inputs, byte-identical plan
    assert Plan.from_json(planned.to_json()) == planned  # loads back, hash verified


@pytest.mark.skipif(importlib.util.find_spec("dsql_migrate.lint") is None,
                    reason="the linter (issue 4) is not in this tree yet")
@pytest.mark.parametrize("name", CASE_NAMES)
def test_case_statements_lint_clean(name: str, raw_url: str, scratch_url: str) -> None:
    """Point 5: every statement of every planned step lints clean for the plan's profile.

    Runs once the linter (``dsql_migrate.lint``, issue 4) is in the tree; skipped before."""
    lint = importlib.import_module("dsql_migrate.lint")
    case = load_case(name)
    planned = make_plan(case, raw_url, scratch_url)
    settings = lint.LintSettings.build(get_profile(case.profile))
    for step in planned.steps:
        statements = executable_sql(step)[: len(step.sql)]  # the step's own SQL, params NULL
        for statement in statements:
            result = lint.lint_script(statement + ";\n", settings)
            assert result.errors == 0, (step.id, statement, result.diagnostics)


def make_plan_again(case: Case, server: str, live_url: str) -> Plan:
    desired = desired_of(case, server)
    result, live = diff_live(live_url, desired, renames=case.renames())
    return plan(result.ops, live, result.desired, get_profile(case.profile), case.options(),
                warnings=result.warnings)


# -- executing a plan on PostgreSQL (test helper; the real runner is another module) ---------

_ASYNC = [
    (re.compile(r"^(\s*CREATE\s+(?:UNIQUE\s+)?INDEX)\s+ASYNC\b", re.I), r"\1"),
    (re.compile(r"^(\s*ALTER\s+TABLE)\s+ASYNC\b", re.I), r"\1"),
]


def to_postgres(statement: str) -> str:
    """DSQL's ASYNC forms as plain PostgreSQL (they run synchronously there)."""
    for pattern, replacement in _ASYNC:
        statement = pattern.sub(replacement, statement)
    return statement


class StepFailed(AssertionError):
    pass


def execute_plan(plan_: Plan, url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for step in plan_.steps:
            execute_step(conn, plan_, step)


def execute_step(conn: psycopg.Connection[Any], plan_: Plan, step: Step) -> None:
    if step.kind is StepKind.VERIFY:
        run_verify(conn, step)
    elif step.kind in (StepKind.BACKFILL, StepKind.COPY):
        assert step.batch is not None
        for params in key_ranges(conn, step):
            with conn.transaction():
                for statement in step.sql:
                    cur = conn.execute(statement, params)
                    assert cur.rowcount <= step.batch.size
    else:
        if step.kind is StepKind.SWAP:
            run_verify(conn, plan_.steps[int(step.details["verified_by"]) - 1])
        for statement in step.sql:
            conn.execute(to_postgres(statement).encode())
        if "check" in step.details:
            row = conn.execute(step.details["check"]).fetchone()
            assert row is not None and row[0] is True, step


def key_ranges(conn: psycopg.Connection[Any], step: Step) -> Any:
    batch = step.batch
    assert batch is not None
    n = len(batch.key)
    after: tuple[Any, ...] = (None,) * n
    while True:
        params = {f"after_{i}": v for i, v in enumerate(after, start=1)}
        row = conn.execute(batch.bounds, {**params, **{f"end_{i}": None for i in range(1, n + 1)}}
                           ).fetchone()
        if row is None:
            return
        params.update({f"upto_{i}": v for i, v in enumerate(row, start=1)})
        yield params
        after = tuple(row)


def run_verify(conn: psycopg.Connection[Any], step: Step) -> None:
    if step.batch is None and step.details.get("expect") == "no rows":
        for statement in step.sql:
            rows = conn.execute(statement).fetchall()
            if rows:
                raise StepFailed(f"{step.summary}: {rows}")
        return
    if step.batch is not None and step.details.get("writes") == "resync":
        resync(conn, step)
    elif step.batch is not None:
        for params in key_ranges(conn, step):
            source, target = (conn.execute(s, params).fetchone() for s in step.sql)
            if source != target:
                raise StepFailed(f"{step.summary}: {params} {source} != {target}")
    counts = [conn.execute(s).fetchone() for s in step.details.get("totals", ())]
    if counts and len(set(counts)) != 1:
        raise StepFailed(f"{step.summary}: totals {counts}")


def resync(conn: psycopg.Connection[Any], step: Step, max_passes: int = 5) -> None:
    """Re-copy the key ranges whose checksums differ until a whole pass finds none."""
    for _ in range(max_passes):
        repaired = 0
        last: dict[str, Any] = {}
        for params in key_ranges(conn, step):
            last = params
            source, target = (conn.execute(s, params).fetchone() for s in step.sql)
            if source != target:
                with conn.transaction():
                    for statement in step.details["repair"]:
                        conn.execute(statement, params)
                repaired += 1
        if last:
            after = {k.replace("upto_", "after_"): v for k, v in last.items()
                     if k.startswith("upto_")}
            repaired += conn.execute(step.details["tail"], after).rowcount
        if not repaired:
            return
    raise StepFailed(f"{step.summary}: still differing after {max_passes} passes")


def run_until(conn: psycopg.Connection[Any], plan_: Plan, kind: StepKind) -> int:
    """Execute the steps up to and including the first of ``kind``; its index."""
    for index, step in enumerate(plan_.steps):
        execute_step(conn, plan_, step)
        if step.kind is kind:
            return index
    raise AssertionError(f"no {kind} step")


def writes_during_copy(conn: psycopg.Connection[Any]) -> None:
    conn.execute("UPDATE events SET payload = 'changed' WHERE id = 4")
    conn.execute("DELETE FROM events WHERE id = 5")
    conn.execute("INSERT INTO events VALUES (0, 99, 'late')")  # after the last copied key


def test_failing_pre_check_reports_offending_rows_and_changes_nothing(
        raw_url: str, scratch_url: str) -> None:
    case = load_case("recreate_classic")
    planned = make_plan(case, raw_url, scratch_url)
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        conn.execute("INSERT INTO orders VALUES (100, 'ten', 'n', 'x'), (101, '9e99', 'n', 'x')")
        with pytest.raises(StepFailed) as info:
            execute_plan(planned, scratch_url)
        assert "every orders.amount casts to INTEGER" in str(info.value)
        assert "(100, 'ten')" in str(info.value) and "(101, '9e99')" in str(info.value)
        assert conn.execute("SELECT to_regclass('orders__new')").fetchone() == (None,)
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (9,)


def test_paused_writes_verify_fails_and_the_swap_does_not_happen(
        raw_url: str, scratch_url: str) -> None:
    case = load_case("recreate_resync")
    case.config["writes"] = "pause"
    planned = make_plan(case, raw_url, scratch_url)
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        copied = run_until(conn, planned, StepKind.COPY)
        writes_during_copy(conn)
        rest = planned.steps[copied + 1:]
        verify = next(s for s in rest if s.kind is StepKind.VERIFY)
        with pytest.raises(StepFailed):
            execute_step(conn, planned, verify)
        swap = next(s for s in rest if s.kind is StepKind.SWAP)
        with pytest.raises(StepFailed):
            execute_step(conn, planned, swap)  # re-verifies first, so it refuses too
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (10,)
        assert conn.execute("SELECT to_regclass('events__old')").fetchone() == (None,)


def test_resync_recopies_changed_ranges_then_swaps(raw_url: str, scratch_url: str) -> None:
    case = load_case("recreate_resync")
    case.config["batch_rows"] = 3
    planned = make_plan(case, raw_url, scratch_url)
    verify = next(s for s in planned.steps if s.kind is StepKind.VERIFY and s.batch)
    assert verify.batch is not None and verify.batch.size == 3
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        copied = run_until(conn, planned, StepKind.COPY)
        writes_during_copy(conn)
        for step in planned.steps[copied + 1:]:
            execute_step(conn, planned, step)
        rows = conn.execute("SELECT tenant_id, id, payload FROM events ORDER BY id").fetchall()
    assert len(rows) == 10
    assert (1, 4, "chang") in rows and (0, 99, "late") in rows
    assert all(r[1] != 5 for r in rows)
    assert make_plan_again(case, raw_url, scratch_url).steps == ()


@pytest.mark.parametrize("name", CASE_NAMES)
def test_case_executes_and_converges(name: str, raw_url: str, scratch_url: str) -> None:
    case = load_case(name)
    planned = make_plan(case, raw_url, scratch_url)
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        before = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()
                  for t in case.config.get("keeps_rows", [])}
    execute_plan(planned, scratch_url)
    after_plan = make_plan_again(case, raw_url, scratch_url)
    assert after_plan.steps == (), "\n".join(expected_lines(after_plan))
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        for table, count in before.items():
            assert conn.execute(f'SELECT count(*) FROM "{table}"').fetchone() == count
        for query, expected in case.config.get("after", {}).items():
            got = [list(r) for r in conn.execute(query).fetchall()]
            assert got == expected, query


# -- the real thing: every case through the runner, on the emulator ----------------------------


@pytest.fixture(scope="module")
def case_emulators(private_target: PrivateTarget) -> Iterator[dict[str, LocalInstance]]:
    """Private emulators, one per profile: the cases drop every table between them."""
    with ExitStack() as stack:
        yield {name: stack.enter_context(private_target(f"case-{name}", profile=name))
               for name in ("current", "classic")}


def wipe_public(raw: str) -> None:
    with psycopg.connect(raw, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
        for (table,) in tables:
            conn.execute(pgsql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(
                pgsql.Identifier(table)))


@pytest.mark.parametrize("name", CASE_NAMES)
def test_case_applies_with_the_runner_on_the_emulator(
        name: str, raw_url: str, case_emulators: dict[str, LocalInstance]) -> None:
    """Issue 5, point 8 for real: plan against the emulator, apply with the runner (async jobs,
    batches, verifications and swaps as on DSQL), then find no remaining difference."""
    case = load_case(name)
    instance = case_emulators[case.profile]
    url, raw = instance.url(), instance.raw_url()
    wipe_public(raw)
    with psycopg.connect(raw, autocommit=True) as conn:  # the live state, however it came to be
        conn.execute((case.folder / "live.sql").read_text().encode())
        conn.execute(b"ANALYZE")
        before = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()
                  for t in case.config.get("keeps_rows", [])}
    desired = desired_of(case, raw_url)
    result, live = diff_live(url, desired, renames=case.renames())
    planned = plan(result.ops, live, result.desired, get_profile(case.profile), case.options(),
                   warnings=result.warnings)
    applied = apply_plan(
        planned, lambda: psycopg.connect(url, autocommit=True),
        options=RunOptions(allow_destructive=True, abandon_previous=True,
                           async_poll_seconds=0.05),
    )
    assert applied.status in ("done", "nothing"), applied
    result, live = diff_live(url, desired, renames=case.renames())
    remaining = plan(result.ops, live, result.desired, get_profile(case.profile), case.options())
    assert remaining.steps == (), "\n".join(expected_lines(remaining))
    with psycopg.connect(url, autocommit=True) as conn:
        for table, count in before.items():
            assert conn.execute(f'SELECT count(*) FROM "{table}"').fetchone() == count
        for query, expected in case.config.get("after", {}).items():
            got = [list(r) for r in conn.execute(query).fetchall()]
            assert got == expected, query
