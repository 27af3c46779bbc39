"""``dsql-migrate apply``, ``status`` and ``unlock`` end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from click.testing import CliRunner
from runner_plans import checksum, create_source, recreate_plan

from _support import cli as _run
from dsql_migrate.cli import main


def test_apply_status_unlock(workdir: Path, target_url: str, raw_conn: psycopg.Connection[Any],
                             state_schema: str, table_name: str) -> None:
    create_source(raw_conn, table_name, 1_500)
    before = checksum(raw_conn, table_name)
    plan = recreate_plan(table_name, rows=1_500, batch_size=500)
    plan_file = workdir / "plan.json"
    plan_file.write_text(plan.to_json())
    common = ("--url", target_url, "--state-schema", state_schema)

    wrong = _run("apply", str(plan_file), *common, "--expect-hash", "sha256:00")
    assert wrong.exit_code == 5 and "not the expected" in wrong.output

    first = _run("apply", str(plan_file), *common, "--log-format", "json")
    assert first.exit_code == 5, first.output
    events = [json.loads(line) for line in first.output.splitlines() if line.startswith("{")]
    assert {"plan.start", "batch", "step.done", "plan.stopped"} <= {e["event"] for e in events}
    assert "--allow-destructive" in first.output

    status = _run("status", *common, "--format", "json")
    data = json.loads(status.output)
    assert data["plan"]["hash"] == plan.hash and data["plan"]["status"] == "stopped"
    assert [s["status"] for s in data["steps"]] == ["done"] * 5 + ["pending"]
    assert data["steps"][2]["rows_done"] == 1_500 and data["lock"] is None

    done = _run("apply", str(plan_file), *common, "--allow-destructive",
                "--expect-hash", plan.hash)
    assert done.exit_code == 0, done.output
    assert "1 step(s) run, 5 already done" in done.output
    assert checksum(raw_conn, table_name) == before

    text = _run("status", *common)
    assert f"plan {plan.hash}: done" in text.output and "1,500 rows in 3 batches" in text.output
    assert _run("unlock", *common).output.strip() == "The lock was free."


def test_tampered_plan_is_refused(workdir: Path, target_url: str, state_schema: str,
                                  table_name: str) -> None:
    plan = recreate_plan(table_name, rows=10)
    data = json.loads(plan.to_json())
    data["steps"][1]["sql"] = [f'DROP TABLE "{table_name}"']
    plan_file = workdir / "plan.json"
    plan_file.write_text(json.dumps(data))
    result = _run("apply", str(plan_file), "--url", target_url, "--state-schema", state_schema)
    assert result.exit_code == 5 and "does not match" in result.output


def test_unlock_refuses_a_live_lock_without_force(workdir: Path, target_url: str,
                                                  raw_conn: psycopg.Connection[Any],
                                                  make_runner: Any, state_schema: str) -> None:
    runner = make_runner(lease_seconds=3600)
    runner.store.ensure(runner.session)
    runner.lock.acquire()
    common = ("--url", target_url, "--state-schema", state_schema)
    refused = _run("unlock", *common)
    assert refused.exit_code == 4 and "--force" in refused.output
    status = _run("status", *common)
    assert f"run {runner.run_id}" in status.output
    forced = _run("unlock", *common, "--force")
    assert forced.exit_code == 0 and runner.run_id in forced.output


def test_a_database_refusal_is_one_line_not_a_traceback(workdir: Path, raw_url: str,
                                                        raw_conn: psycopg.Connection[Any],
                                                        state_schema: str) -> None:
    """A role that may not create the state schema: the server's message, exit 1."""
    role = f"ro_{state_schema[-8:]}"
    # no CREATE on the database; a password, which the raw server asks every role for
    raw_conn.execute(f'CREATE ROLE "{role}" LOGIN PASSWORD \'{role}\'')
    try:
        url = urlunsplit(urlsplit(raw_url)._replace(
            netloc=f"{role}:{role}@{urlsplit(raw_url).netloc.rsplit('@', 1)[1]}"))
        plan_file = workdir / "plan.json"
        plan_file.write_text(recreate_plan("t_none", rows=1, batch_size=1).to_json())
        for args in (("apply", str(plan_file)), ("status",), ("unlock",)):
            result = CliRunner().invoke(main, [*args, "--url", url, "--state-schema",
                                               state_schema])
            assert result.exit_code in (0, 1), (args, result.output)
            assert result.exception is None or isinstance(result.exception, SystemExit), \
                (args, result.output)
        apply = CliRunner().invoke(main, ["apply", str(plan_file), "--url", url,
                                          "--state-schema", state_schema])
        assert apply.exit_code == 1
        assert "error: the database refused: permission denied" in apply.output
    finally:
        raw_conn.execute(f'DROP ROLE "{role}"')
