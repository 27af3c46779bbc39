"""``apply --writes cdc``: a table recreated while an application keeps writing, with the
changed keys read from a (local, moto) Kinesis stream; no write lost or duplicated, errors only
during the short write freeze, and a kill anywhere resumed without leaving the table frozen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cdc_support import (
    Producer,
    Writer,
    create_stream,
    kinesis_server,
    make_plan,
    table_rows,
)
from runner_plans import create_source

FREEZE_ERRORS = {"42501", "42P01"}  # permission denied while frozen; no table between renames


@pytest.fixture(scope="module")
def kinesis() -> Iterator[str]:
    with kinesis_server() as endpoint:
        yield endpoint


def _apply(plan: Path, url: str, schema: str, cwd: Path, *, stream: str | None,
           endpoint: str | None, crash: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSQL_MIGRATE_")}
    env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
    if crash:
        env["DSQL_MIGRATE_CRASH_AT"] = crash
    args = [sys.executable, "-m", "dsql_migrate", "apply", str(plan), "--url", url,
            "--state-schema", schema, "--allow-destructive", "--log-format", "json"]
    if stream:
        args += ["--cdc-stream", stream]
    if endpoint:
        args += ["--cdc-endpoint", endpoint]
    return subprocess.run(args, check=False, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)


#: crash points at which the table is frozen (a kill there leaves it so until the next run)
FROZEN_AT = {"cdc.after_revoke", "cdc.before_swap", "cdc.swapped", "cdc.after_swap"}


def _status(url: str, schema: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSQL_MIGRATE_")}
    done = subprocess.run([sys.executable, "-m", "dsql_migrate", "status", "--url", url,
                           "--state-schema", schema], check=False, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _events(err: str) -> list[dict[str, Any]]:
    out = []
    for line in err.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def _frozen_rows(conn: psycopg.Connection[Any], schema: str) -> int:
    if conn.execute("SELECT to_regclass(%s)", (f'"{schema}".cdc',)).fetchone() == (None,):
        return 0
    row = conn.execute(f'SELECT count(*) FROM "{schema}".cdc WHERE frozen').fetchone()
    return int(row[0]) if row else 0


def _writers_of(conn: psycopg.Connection[Any], table: str) -> set[str]:
    rows = conn.execute(
        "SELECT privilege_type FROM information_schema.table_privileges WHERE table_name = %s "
        "AND grantee = current_user", (table,)).fetchall()
    return {str(r[0]) for r in rows}


def run_online_recreation(*, rows: int, chaos: bool, kinesis: str, dsql_url: str,
                          raw_conn: psycopg.Connection[Any], scratch_url: str,
                          state_schema: str, table_name: str, tmp_path: Path,
                          crash: str = "") -> dict[str, Any]:
    """Recreate ``table_name`` (v integer -> bigint) with --writes cdc while a writer runs at
    ~100 tx/s; with ``crash``, the first run is killed there and a second one resumes. The
    new table must equal the writer's record of every committed write."""
    create_source(raw_conn, table_name, rows)
    expected = table_rows(raw_conn, table_name)
    arn = create_stream(kinesis)
    plan_file = tmp_path / "plan.json"
    plan = make_plan(dsql_url, scratch_url, table_name, plan_file, tmp_path)
    writer = Writer(dsql_url, table_name, Producer(kinesis, arn, chaos=chaos), expected)
    writer.start()
    try:
        time.sleep(0.5)
        runs = []
        if crash:
            killed = _apply(plan_file, dsql_url, state_schema, tmp_path, stream=arn,
                            endpoint=kinesis, crash=crash)
            assert killed.returncode == -9, killed.stderr[-3000:]
            runs.append(killed)
            status = _status(dsql_url, state_schema, tmp_path)
            frozen = "WRITES FROZEN on" in status
            assert frozen == (crash.rpartition(":")[0] in FROZEN_AT), status
        done = _apply(plan_file, dsql_url, state_schema, tmp_path, stream=arn,
                      endpoint=kinesis)
        runs.append(done)
        assert done.returncode == 0, done.stderr[-5000:]
        time.sleep(0.5)  # writes go on against the new table
    finally:
        writer.finish()
    assert writer.committed > 50
    got = table_rows(raw_conn, table_name)
    missing = set(expected) - set(got)
    extra = set(got) - set(expected)
    wrong = {k for k in set(got) & set(expected) if got[k] != expected[k]}
    assert not (missing or extra or wrong), (
        f"{len(missing)} missing, {len(extra)} extra, {len(wrong)} differing rows: "
        f"{sorted(missing)[:5]} {sorted(extra)[:5]} {sorted(wrong)[:5]}")
    # the new table is in place (bigint), nothing is left frozen, the owner may write again
    kind = raw_conn.execute("SELECT data_type FROM information_schema.columns WHERE "
                            "table_name = %s AND column_name = 'v'", (table_name,)).fetchone()
    assert kind == ("bigint",)
    assert _frozen_rows(raw_conn, state_schema) == 0
    assert {"INSERT", "UPDATE", "DELETE"} <= _writers_of(raw_conn, table_name)
    assert {e[1] for e in writer.errors} <= FREEZE_ERRORS, writer.errors[:5]
    events = [e for run in runs for e in _events(run.stderr)]
    freezes = [e["freeze_seconds"] for e in events if e.get("event") == "cdc.freeze"]
    assert freezes, [e.get("event") for e in events]
    for event in events:
        if str(event.get("event", "")).startswith(("cdc.", "verify", "step.")):
            print(event["at"][11:23], event["message"][:160])
    return {"freeze_seconds": freezes[-1], "errors": len(writer.errors),
            "committed": writer.committed, "plan": plan, "events": events}


def test_plan_says_it_in_plain_words(dsql_url: str, raw_conn: psycopg.Connection[Any],
                                     scratch_url: str, table_name: str,
                                     tmp_path: Path) -> None:
    create_source(raw_conn, table_name, 10)
    plan = make_plan(dsql_url, scratch_url, table_name, tmp_path / "p.json", tmp_path)
    swap = next(s for s in plan["steps"] if s["kind"] == "swap")
    assert "freeze writes" in swap["summary"] and "drain the stream" in swap["summary"]
    text = " ".join(swap["notes"])
    for words in ("REVOKE INSERT, UPDATE, DELETE", "recorded in the state tables first",
                  "drains the stream", "verifies every key range", "42501"):
        assert words in text
    after = plan["steps"][plan["steps"].index(swap) + 1]
    assert after["summary"].endswith("then unfreeze")
    assert after["details"]["unfreeze"] == swap["details"]["source"]
    assert "recorded grants are restored" in " ".join(after["notes"])
    verify = next(s for s in plan["steps"] if s["kind"] == "verify" and s.get("batch"))
    assert verify["details"]["stream"] == {"schema": "public", "table": table_name,
                                           "key": ["id"]}
    assert "CDC stream" in " ".join(verify["notes"])


def test_apply_without_stream_is_refused_before_anything(
        dsql_url: str, raw_conn: psycopg.Connection[Any], scratch_url: str, table_name: str,
        state_schema: str, tmp_path: Path, kinesis: str) -> None:
    create_source(raw_conn, table_name, 10)
    plan_file = tmp_path / "p.json"
    make_plan(dsql_url, scratch_url, table_name, plan_file, tmp_path)
    no_stream = _apply(plan_file, dsql_url, state_schema, tmp_path, stream=None, endpoint=None)
    assert no_stream.returncode == 2, no_stream.stderr
    assert "--cdc-stream" in no_stream.stderr and "Traceback" not in no_stream.stderr
    arn = create_stream(kinesis)
    no_endpoint = _apply(plan_file, dsql_url, state_schema, tmp_path, stream=arn,
                         endpoint=None)
    assert no_endpoint.returncode == 2, no_endpoint.stderr
    assert "--cdc-endpoint" in no_endpoint.stderr and "Traceback" not in no_endpoint.stderr
    missing = _apply(plan_file, dsql_url, state_schema, tmp_path, stream=arn + "-gone",
                     endpoint=kinesis)
    assert missing.returncode == 1, missing.stderr
    assert "cannot read the CDC stream" in missing.stderr
    assert raw_conn.execute("SELECT to_regclass(%s)", (f"{table_name}__new",)).fetchone() \
        == (None,)


@pytest.mark.parametrize("chaos", [False, True], ids=["in-order", "chaos"])
def test_online_recreation_loses_no_write(chaos: bool, kinesis: str, dsql_url: str,
                                          raw_conn: psycopg.Connection[Any], scratch_url: str,
                                          state_schema: str, table_name: str,
                                          tmp_path: Path) -> None:
    result = run_online_recreation(rows=20_000, chaos=chaos, kinesis=kinesis,
                                   dsql_url=dsql_url, raw_conn=raw_conn,
                                   scratch_url=scratch_url, state_schema=state_schema,
                                   table_name=table_name, tmp_path=tmp_path)
    assert result["freeze_seconds"] < 5


@pytest.mark.slow
@pytest.mark.parametrize("chaos", [False, True], ids=["in-order", "chaos"])
def test_online_recreation_300k(chaos: bool, kinesis: str, dsql_url: str,
                                raw_conn: psycopg.Connection[Any], scratch_url: str,
                                state_schema: str, table_name: str, tmp_path: Path) -> None:
    result = run_online_recreation(rows=300_000, chaos=chaos, kinesis=kinesis,
                                   dsql_url=dsql_url, raw_conn=raw_conn,
                                   scratch_url=scratch_url, state_schema=state_schema,
                                   table_name=table_name, tmp_path=tmp_path)
    assert result["freeze_seconds"] < 2


@pytest.mark.parametrize("crash", [
    "batch.after_commit:3",        # during the copy
    "cdc.before_swap:1",           # frozen, verified, before the renames
    "cdc.after_revoke:1",          # right after the REVOKE
    "cdc.swapped:1",               # between the two renames, frozen
    "cdc.after_swap:1",            # swapped, grants not yet given back
])
def test_killed_anywhere_resumes_and_unfreezes(crash: str, kinesis: str, dsql_url: str,
                                               raw_conn: psycopg.Connection[Any],
                                               scratch_url: str, state_schema: str,
                                               table_name: str, tmp_path: Path) -> None:
    run_online_recreation(rows=20_000, chaos=True, kinesis=kinesis, dsql_url=dsql_url,
                          raw_conn=raw_conn, scratch_url=scratch_url,
                          state_schema=state_schema, table_name=table_name,
                          tmp_path=tmp_path, crash=crash)
