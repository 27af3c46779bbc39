"""Identifiers are composed as identifiers, never as text (issue 14, point 3): tables, columns,
indexes and constraints named with spaces, quotes, unicode, mixed case, reserved words, 63 bytes,
or ending in ``__new``/``__old`` go through every step kind -- add column + backfill, async index,
recreation with lanes, verify, swap, backup drop -- and a resume after a SIGKILL, with the data
identical and every name preserved.

The examples run against a private emulator (a declarative plan owns its whole schema); their
number is kept small for CI: ``DSQL_MIGRATE_HYPOTHESIS_EXAMPLES`` raises it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from psycopg import sql

from _support import PrivateTarget
from dsql_migrate.diff import Desired, diff_live
from dsql_migrate.local import LocalInstance
from dsql_migrate.planner import plan
from dsql_migrate.profiles import get_profile

pytestmark = pytest.mark.integration

ROWS = 1_200
HARD = [
    "my table", 'say "hi"', "it's", "Mixed Case", "UPPER", "select", "order", "user",
    "ünïcødé ✓", "日本語", "with-hyphen", "trailing ", "x" * 63, "é" * 31, "t__new", "t__old",
    "col__new", "idx__old", "1starts_with_digit", "semi;colon",
]
EXAMPLES = int(os.environ.get("DSQL_MIGRATE_HYPOTHESIS_EXAMPLES", "4"))
KILLS = ["batch.after_commit:2", "batch.before_commit:3", "swap.between:1",
         "ddl.after_execute:2", "verify.after_check:1", "async.wait:1"]


@pytest.fixture(scope="module")
def private(private_target: PrivateTarget) -> Iterator[LocalInstance]:
    with private_target("identifiers") as instance:
        yield instance


def _names() -> st.SearchStrategy[tuple[str, ...]]:
    """Table, key, value column, new column, index and constraint names, all distinct (a
    constraint and an index share the relation namespace with the table)."""
    return st.lists(st.sampled_from(HARD), min_size=6, max_size=6, unique=True).map(tuple)


def _apply(plan_file: Path, url: str, cwd: Path,
           crash: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSQL_MIGRATE_")}
    if crash:
        env["DSQL_MIGRATE_CRASH_AT"] = crash
    return subprocess.run(
        [sys.executable, "-m", "dsql_migrate", "apply", str(plan_file), "--url", url,
         "--allow-destructive", "--batch-size", "100", "--parallel", "4"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def _apply_with_a_kill(plan_file: Path, url: str, cwd: Path, crash: str) -> None:
    killed = _apply(plan_file, url, cwd, crash)
    # the crash point may not be on this plan's path: then the run simply finishes
    assert killed.returncode in (0, -9), killed.stderr
    if killed.returncode == -9:
        resumed = _apply(plan_file, url, cwd)
        assert resumed.returncode == 0, resumed.stderr
        assert "SQLSTATE 42602" not in resumed.stderr


def _desired(table: str, key: str, value: str, value_type: Any, added: str | None,
             index: str | None, check: str) -> Desired:
    metadata = sa.MetaData()
    columns: list[Any] = [sa.Column(key, sa.BigInteger, primary_key=True, autoincrement=False),
                          sa.Column(value, value_type), sa.Column("note", sa.Text)]
    if added is not None:
        columns.append(sa.Column(added, sa.Integer, server_default=sa.text("7")))
    t = sa.Table(table, metadata, *columns,
                 sa.CheckConstraint(sa.text(f"{_q(value)} >= 0"), name=check))
    if index is not None and added is not None:
        sa.Index(index, t.c[added])
    return Desired(metadata, "test")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _plan_to(url: str, desired: Desired, path: Path) -> int:
    result, live = diff_live(url, desired)
    planned = plan(result.ops, live, result.desired, get_profile("current"),
                   warnings=result.warnings)
    path.write_text(planned.to_json())
    return len(planned.steps)


def _checksum(conn: psycopg.Connection[Any], table: str, key: str, value: str) -> Any:
    return conn.execute(sql.SQL(
        "SELECT count(*), sum({v}), md5(string_agg({k}::text || ':' || {v}::text || ':' || "
        "note, ',' ORDER BY {k})) FROM {t}").format(
        k=sql.Identifier(key), v=sql.Identifier(value), t=sql.Identifier(table))).fetchone()


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(names=_names(), kill_a=st.sampled_from(KILLS), kill_b=st.sampled_from(KILLS),
       analyze=st.booleans())
@example(names=("my table", "Mixed Case", 'say "hi"', "select", "t__old", "ünïcødé ✓"),
         kill_a="batch.after_commit:2", kill_b="batch.before_commit:3", analyze=False)
@example(names=("with-hyphen", "UPPER", "user", "日本語", "semi;colon", "1starts_with_digit"),
         kill_a="batch.before_commit:3", kill_b="ddl.after_execute:2", analyze=True)
@example(names=("x" * 63, "order", "é" * 31, "col__new", "idx__old", "it's"),
         kill_a="async.wait:1", kill_b="swap.between:1", analyze=True)
def test_hard_names_through_every_step_kind(names: tuple[str, ...], kill_a: str, kill_b: str,
                                            analyze: bool, private: LocalInstance,
                                            tmp_path: Path) -> None:
    """``analyze``: with no statistics the runner counts the rows itself to split lanes."""
    table, key, value, added, index, check = names
    url, raw = private.url(), private.raw_url()
    work = tmp_path / uuid.uuid4().hex[:8]
    work.mkdir()
    with psycopg.connect(raw, autocommit=True) as conn:
        for (name,) in conn.execute("SELECT tablename FROM pg_tables "
                                    "WHERE schemaname = 'public'").fetchall():
            conn.execute(sql.SQL("DROP TABLE {} CASCADE").format(sql.Identifier(name)))
        conn.execute(sql.SQL(
            "CREATE TABLE {t} ({k} bigint PRIMARY KEY, {v} integer CONSTRAINT {c} "
            "CHECK ({v} >= 0), note text)").format(
            t=sql.Identifier(table), k=sql.Identifier(key), v=sql.Identifier(value),
            c=sql.Identifier(check)))
        conn.execute(sql.SQL("INSERT INTO {} SELECT g, g * 7, 'n' || g FROM "
                             "generate_series(1, {}) AS g").format(sql.Identifier(table),
                                                                   sql.Literal(ROWS)))
        if analyze:
            conn.execute("ANALYZE")
        before = _checksum(conn, table, key, value)

    # 1. add a column with a default (ADD COLUMN, SET DEFAULT, backfill) and an async index
    first = work / "add.json"
    assert _plan_to(url, _desired(table, key, value, sa.Integer, added, index, check),
                    first) >= 3
    _apply_with_a_kill(first, url, work, kill_a)
    # 2. change the value column's type: a recreation (create, copy in lanes, verify, swap,
    #    the index and constraint built again under their names, backup drop)
    desired = _desired(table, key, value, sa.BigInteger, added, index, check)
    second = work / "retype.json"
    assert _plan_to(url, desired, second) >= 5
    _apply_with_a_kill(second, url, work, kill_b)

    with psycopg.connect(raw, autocommit=True) as conn:
        assert _checksum(conn, table, key, value) == before
        assert conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE {} = 7").format(
            sql.Identifier(table), sql.Identifier(added))).fetchone() == (ROWS,)
        columns = conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid "
            "= to_regclass(%s) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            (_q(table),)).fetchall()
        assert columns == [(key, "bigint"), (value, "bigint"), ("note", "text"),
                           (added, "integer")]
        assert conn.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(%s) AND contype = 'c'",
            (_q(table),)).fetchall() == [(check,)]
        assert conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)",
            (_q(index),)).fetchone() == (True,)
        leftovers = conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND "
            "(relname LIKE '%%\\_\\_new' OR relname LIKE '%%\\_\\_old') AND relname <> ALL(%s)",
            (list(names),)).fetchall()
        assert leftovers == []
    remaining = work / "remaining.json"
    assert _plan_to(url, desired, remaining) == 0  # converged: every name is as asked
