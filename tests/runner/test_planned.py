"""Plans made by the planner, applied by the runner: a recreation end to end, then no drift."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from _support import cli as _run


def test_planned_type_change_applies_and_leaves_no_drift(workdir: Path, scratch_url: str,
                                                         raw_url: str) -> None:
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id bigint PRIMARY KEY, qty integer, note text)")
        conn.execute("INSERT INTO items SELECT g, g % 97, 'n' || g "
                     "FROM generate_series(1, 4321) AS g")
        before = conn.execute("SELECT md5(string_agg(id || ':' || qty || ':' || note, ',' "
                              "ORDER BY id)) FROM items").fetchone()
    desired = workdir / "desired.sql"
    desired.write_text("CREATE TABLE items (id bigint PRIMARY KEY, qty bigint, note text);\n")
    planned = _run("plan", "--url", scratch_url, "--target", str(desired), "--scratch-url",
                   raw_url, "--batch-rows", "500", "--format", "json", "-o", "plan.json")
    assert planned.exit_code == 0, planned.output
    plan = json.loads((workdir / "plan.json").read_text())
    kinds = [s["kind"] for s in plan["steps"]]
    assert "copy" in kinds and "swap" in kinds

    stopped = _run("apply", "plan.json", "--url", scratch_url)
    assert stopped.exit_code == 5, stopped.output
    applied = _run("apply", "plan.json", "--url", scratch_url, "--allow-destructive")
    assert applied.exit_code == 0, applied.output
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        after = conn.execute("SELECT md5(string_agg(id || ':' || qty || ':' || note, ',' "
                             "ORDER BY id)) FROM items").fetchone()
        qty_type = conn.execute("SELECT data_type FROM information_schema.columns WHERE "
                                "table_name = 'items' AND column_name = 'qty'").fetchone()
        verify = conn.execute("SELECT figures FROM dsql_migrate.steps WHERE kind = 'verify' "
                              "AND figures LIKE '%%ranges%%'").fetchone()
    assert after == before and qty_type == ("bigint",)
    assert verify is not None and '"mismatched_ranges": 0' in verify[0]
    drift = _run("plan", "--url", scratch_url, "--target", str(desired), "--scratch-url",
                 raw_url, "--check")
    assert drift.exit_code == 0, drift.output
