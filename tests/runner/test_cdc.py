"""``apply --writes cdc``: a table recreated while an application keeps writing, with the
changed keys read from the stream of an emulator started with CDC (``local start --cdc``, the
producer, as DSQL is on AWS); no write lost or duplicated, errors only during the short write
freeze, and a kill anywhere resumed without leaving the table frozen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cdc_support import (
    Writer,
    cdc_emulator,
    create_stream,
    kinesis_server,
    make_plan,
    table_rows,
)
from runner_plans import create_source

from dsql_migrate.local import LocalInstance

FREEZE_ERRORS = {"42501", "42P01"}  # permission denied while frozen; no table between renames


@pytest.fixture(scope="module")
def kinesis() -> Iterator[str]:
    """A bare local Kinesis: only for a stream that is not the target's (refusals)."""
    with kinesis_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def cdc_targets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[bool, LocalInstance]]:
    """Emulators started with CDC, one without and one with chaos, each started on first
    use and destroyed after the module: the producers of the streams the runner reads."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        class Targets(dict[bool, LocalInstance]):
            def __missing__(self, chaos: bool) -> LocalInstance:
                directory = tmp_path_factory.mktemp("cdc") / ("chaos" if chaos else "plain")
                self[chaos] = stack.enter_context(cdc_emulator(directory, chaos=chaos))
                return self[chaos]
        yield Targets()


def _apply(plan: Path, url: str, schema: str, cwd: Path, *, stream: str | None,
           endpoint: str | None = None, crash: str = "",
           local_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``apply`` in a child process with no AWS credentials in its environment (the local
    stream needs none; any other is given test keys)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DSQL_MIGRATE_", "AWS_"))}
    if stream not in (None, "local"):
        env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
    if crash:
        env["DSQL_MIGRATE_CRASH_AT"] = crash
    args = [sys.executable, "-m", "dsql_migrate", "apply", str(plan), "--url", url,
            "--state-schema", schema, "--allow-destructive", "--log-format", "json"]
    if local_dir is not None:
        args += ["--local-dir", str(local_dir)]
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


def _scratch(raw_url: str) -> str:
    """A fresh database on the target's own server, for the planner's desired schema."""
    from urllib.parse import urlsplit, urlunsplit

    name = f"scratch_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(raw_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(raw_url)._replace(path=f"/{name}"))


def run_online_recreation(*, rows: int, target: LocalInstance, tmp_path: Path,
                          crash: str = "") -> dict[str, Any]:
    """Recreate a fresh table (v integer -> bigint) on ``target`` (an emulator with CDC) with
    ``--writes cdc --cdc-stream local`` while a writer runs at ~100 tx/s; with ``crash``, the
    first run is killed there and a second one resumes. The new table must equal the writer's
    record of every committed write."""
    table_name = f"t_{uuid.uuid4().hex[:8]}"
    state_schema = f"dm_state_{uuid.uuid4().hex[:8]}"
    dsql_url = target.url()
    raw_conn = psycopg.connect(target.raw_url(), autocommit=True)
    try:
        return _recreate(rows, target, dsql_url, raw_conn, table_name, state_schema, tmp_path,
                         crash)
    finally:
        raw_conn.close()


def _recreate(rows: int, target: LocalInstance, dsql_url: str,
              raw_conn: psycopg.Connection[Any], table_name: str, state_schema: str,
              tmp_path: Path, crash: str) -> dict[str, Any]:
    create_source(raw_conn, table_name, rows)
    expected = table_rows(raw_conn, table_name)
    plan_file = tmp_path / "plan.json"
    plan = make_plan(dsql_url, _scratch(target.raw_url()), table_name, plan_file, tmp_path)
    writer = Writer(dsql_url, table_name, None, expected)  # the emulator streams its writes
    writer.start()
    try:
        time.sleep(0.5)
        runs = []
        if crash:
            killed = _apply(plan_file, "local", state_schema, tmp_path, stream="local",
                            crash=crash, local_dir=target.directory)
            assert killed.returncode == -9, killed.stderr[-3000:]
            runs.append(killed)
            status = _status(dsql_url, state_schema, tmp_path)
            frozen = "WRITES FROZEN on" in status
            assert frozen == (crash.rpartition(":")[0] in FROZEN_AT), status
        done = _apply(plan_file, "local", state_schema, tmp_path, stream="local",
                      local_dir=target.directory)
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
    # the markers the runner wrote to see how far the stream had delivered are gone
    assert raw_conn.execute(f'SELECT count(*) FROM "{state_schema}".cdc_marker').fetchone() \
        == (0,)
    assert {"INSERT", "UPDATE", "DELETE"} <= _writers_of(raw_conn, table_name)
    assert {e[1] for e in writer.errors} <= FREEZE_ERRORS, writer.errors[:5]
    events = [e for run in runs for e in _events(run.stderr)]
    # the emulator's stream delivers every marker: none was given up on
    assert not [e for e in events if e.get("event") == "cdc.marker_missing"]
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
    # the cut-over's verification between the renames reads the backup: statements the
    # planner made for it, the same as the source's but for the table they read
    moved = verify["details"]["on_backup"]
    backup = swap["details"]["backup"]
    assert moved["table"] == backup and backup == f"{table_name}__old"
    source = swap["details"]["source"]
    assert moved["sql"] == [verify["sql"][0].replace(f"FROM {source} ", f"FROM {backup} "),
                            verify["sql"][1]]
    assert moved["totals"][0] == f"SELECT count(*) FROM {backup}"
    assert f"FROM {backup} WHERE" in moved["repair"][1] and f"FROM {backup} WHERE" in \
        moved["bounds"]


def test_a_key_not_kept_is_refused_with_cdc(dsql_url: str,
                                                 raw_conn: psycopg.Connection[Any],
                                                 scratch_url: str, table_name: str,
                                                 tmp_path: Path) -> None:
    """The cut-over re-syncs and verifies by a key both tables share: a recreation that
    drops the key column cannot be done online, and plan says so (exit 1), not apply."""
    create_source(raw_conn, table_name, 10)
    desired = tmp_path / "desired.sql"
    desired.write_text(f'CREATE TABLE "{table_name}" (k bigint PRIMARY KEY, v bigint, '
                       "note text);\n")  # the key id is dropped
    done = subprocess.run(
        [sys.executable, "-m", "dsql_migrate", "plan", "--url", dsql_url, "--target",
         str(desired), "--scratch-url", scratch_url, "--writes", "cdc", "--allow-destructive",
         "-o", str(tmp_path / "p.json")], check=False, cwd=tmp_path, capture_output=True,
        text=True, timeout=300)
    assert done.returncode == 1, done.stderr  # a change that cannot be planned
    assert "does not keep its primary key column(s) (id)" in done.stderr
    assert "--writes=pause" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "p.json").exists()


def test_a_plan_from_before_the_backup_side_still_verifies_the_backup(
        dsql_url: str, raw_conn: psycopg.Connection[Any], scratch_url: str, table_name: str,
        tmp_path: Path) -> None:
    """A --writes=cdc plan made before the planner wrote the backup's statements (one may be
    under way, frozen, when dsql-migrate is upgraded) is still verified against the backup:
    the statements moved to it by name are the planner's."""
    import dataclasses

    from dsql_migrate.plan import Plan
    from dsql_migrate.runner.cdc.cutover import on_backup

    create_source(raw_conn, table_name, 10)
    data = make_plan(dsql_url, scratch_url, table_name, tmp_path / "p.json", tmp_path)
    plan = Plan.from_dict(data, verify=False)
    swap = next(s for s in plan.steps if s.kind.value == "swap")
    verify = next(s for s in plan.steps if s.id == int(swap.details["verified_by"]))
    source, backup = str(swap.details["source"]), str(swap.details["backup"])
    legacy = dataclasses.replace(verify, details={
        k: v for k, v in verify.details.items() if k != "on_backup"})
    new, old = on_backup(verify, source, backup), on_backup(legacy, source, backup)
    assert new.sql == old.sql and new.batch == old.batch
    assert new.details["totals"] == old.details["totals"]
    assert new.details["repair"] == old.details["repair"]


def test_apply_without_stream_is_refused_before_anything(
        dsql_url: str, raw_conn: psycopg.Connection[Any], scratch_url: str, table_name: str,
        state_schema: str, tmp_path: Path, kinesis: str, local_instance: LocalInstance) -> None:
    create_source(raw_conn, table_name, 10)
    plan_file = tmp_path / "p.json"
    make_plan(dsql_url, scratch_url, table_name, plan_file, tmp_path)
    no_stream = _apply(plan_file, dsql_url, state_schema, tmp_path, stream=None, endpoint=None)
    assert no_stream.returncode == 2, no_stream.stderr
    assert "--cdc-stream" in no_stream.stderr and "Traceback" not in no_stream.stderr
    # "local" is the emulator's own stream: only when the target is that emulator
    not_local = _apply(plan_file, dsql_url, state_schema, tmp_path, stream="local")
    assert not_local.returncode == 2, not_local.stderr
    assert "not the local emulator" in not_local.stderr and "Traceback" not in not_local.stderr
    # ... and only when it runs with CDC (the session's emulator does not)
    no_cdc = _apply(plan_file, "local", state_schema, tmp_path, stream="local",
                    local_dir=local_instance.directory)
    assert no_cdc.returncode != 0, no_cdc.stderr
    assert "runs without CDC" in no_cdc.stderr and "Traceback" not in no_cdc.stderr
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
def test_online_recreation_loses_no_write(chaos: bool, cdc_targets: dict[bool, LocalInstance],
                                          tmp_path: Path) -> None:
    result = run_online_recreation(rows=20_000, target=cdc_targets[chaos], tmp_path=tmp_path)
    # how long the freeze lasts is benchmarks/cdc_freeze.py's to measure, not a test's
    assert result["freeze_seconds"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("chaos", [False, True], ids=["in-order", "chaos"])
def test_online_recreation_300k(chaos: bool, cdc_targets: dict[bool, LocalInstance],
                                tmp_path: Path) -> None:
    result = run_online_recreation(rows=300_000, target=cdc_targets[chaos], tmp_path=tmp_path)
    assert result["freeze_seconds"] > 0


@pytest.mark.parametrize("crash", [
    "batch.after_commit:3",        # during the copy
    "cdc.before_swap:1",           # frozen, drained, before the renames
    "cdc.after_revoke:1",          # right after the REVOKE
    "cdc.swapped:1",               # between the two renames, frozen, not yet verified
    "cdc.after_swap:1",            # swapped, grants not yet given back
])
def test_killed_anywhere_resumes_and_unfreezes(crash: str,
                                               cdc_targets: dict[bool, LocalInstance],
                                               tmp_path: Path) -> None:
    run_online_recreation(rows=20_000, target=cdc_targets[True], tmp_path=tmp_path,
                          crash=crash)


@pytest.mark.parametrize("via", ["postgresql", "dsql"])
def test_a_write_open_across_the_freeze_is_not_lost(via: str,
                                                    cdc_targets: dict[bool, LocalInstance],
                                                    tmp_path: Path) -> None:
    """A transaction that wrote the table before the REVOKE (privileges are checked per
    statement) and commits only after the cut-over's verification would have read its range.
    On PostgreSQL (the application on the raw server) it commits: its write must be in the new
    table (the first rename waits for it, and the verification runs after that rename). On
    DSQL (through the emulator's proxy) a DDL committed by another session since it began
    makes its commit fail with 40001 (OC001): nothing of it may appear."""
    import threading

    from dsql_migrate.plan import Plan
    from dsql_migrate.runner import Runner, RunOptions, Session, StateStore
    from dsql_migrate.runner.events import Event

    target = cdc_targets[False]
    info = target.cdc_info()
    table = f"t_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(target.raw_url(), autocommit=True) as raw:
        create_source(raw, table, 2_000)
    plan_file = tmp_path / "plan.json"
    make_plan(target.url(), _scratch(target.raw_url()), table, plan_file, tmp_path)
    plan = Plan.from_json(plan_file.read_text())
    # the application: one transaction, written before the freeze, committed later
    app = psycopg.connect(target.raw_url() if via == "postgresql" else target.url())
    app.execute(f'UPDATE "{table}" SET v = 424242 WHERE id = 7')
    app.execute(f'INSERT INTO "{table}" (id, v, note) VALUES (900001, 1, %s)', ("late",))
    committed = threading.Event()
    failed: list[str] = []
    lock = threading.Lock()

    def commit() -> None:
        with lock:
            if committed.is_set():
                return
            try:
                app.commit()
            except psycopg.Error as exc:
                failed.append(str(exc.sqlstate))
            committed.set()
    seen: list[str] = []

    def on_event(event: Event) -> None:
        seen.append(event.kind)
        if event.kind == "cdc.frozen":
            # the first rename (after the fix) waits for this transaction: commit it soon
            threading.Timer(3.0, commit).start()
        elif event.kind == "verify" and "with writes frozen" in event.message:
            commit()  # right after the verification read every range
    stream = {"cdc_stream": info["cdc_stream_arn"], "cdc_endpoint": info["cdc_kinesis_endpoint"],
              "cdc_cluster": info["cdc_cluster_id"],
              "cdc_dsql_endpoint": info["cdc_dsql_endpoint"],
              "cdc_credentials": (info["cdc_access_key_id"], info["cdc_secret_access_key"])}
    session = Session(lambda: psycopg.connect(target.url(), autocommit=True))
    try:
        Runner(session, store=StateStore(f"dm_state_{uuid.uuid4().hex[:8]}"),
               options=RunOptions(allow_destructive=True, **stream),
               on_event=on_event).apply(plan)
    finally:
        session.close()
        commit()
        app.close()
    assert committed.is_set() and "cdc.freeze" in seen
    with psycopg.connect(target.raw_url(), autocommit=True) as raw:
        got = table_rows(raw, table)
        kind = raw.execute("SELECT data_type FROM information_schema.columns WHERE "
                           "table_name = %s AND column_name = 'v'", (table,)).fetchone()
    assert kind == ("bigint",)  # the new table is in place
    if via == "dsql":
        assert failed == ["40001"]
        assert got.get(7) == (7 * 7) % 100003 and 900001 not in got
        return
    assert failed == []
    assert got.get(7) == 424242, "the update committed after the verification was lost"
    assert got.get(900001) == 1, "the insert committed after the verification was lost"
    assert len(got) == 2_001
