"""A restarted local target keeps its URL (issue 15): stopped in the middle of an apply, started
again, the same command resumes against the same URL. The emulator's port is then in TIME_WAIT
or FIN_WAIT (the emulator closed the apply's connections), which a plain bind() takes for "in
use"."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dsql_migrate.local import LocalInstance
from dsql_migrate.local.postgres import is_port_free

# the runner tests' plan builders
sys.path.insert(0, str(Path(__file__).parents[1] / "runner"))
from runner_plans import checksum, create_source, recreate_plan

pytestmark = pytest.mark.integration

ROWS = 20_000
SCHEMA = "dm_restart"


def _apply(plan_file: Path, url: str, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSQL_MIGRATE_")}
    return subprocess.Popen(
        [sys.executable, "-m", "dsql_migrate", "apply", str(plan_file), "--url", url,
         "--state-schema", SCHEMA, "--allow-destructive"],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _rows_copied(raw: psycopg.Connection[Any]) -> int:
    if raw.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.steps",)).fetchone() == (None,):
        return 0
    row = raw.execute(f"SELECT coalesce(sum(rows_done), 0) FROM {SCHEMA}.steps").fetchone()
    return int(row[0]) if row else 0


def test_a_port_in_time_wait_is_free_to_a_restart() -> None:
    import socket

    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server side closes first: its port goes to TIME_WAIT
        client.close()
    assert is_port_free(port)


def test_stop_in_the_middle_of_an_apply_then_start_keeps_the_url(tmp_path: Path) -> None:
    instance = LocalInstance(tmp_path / "target")
    try:
        url = instance.start()
        emulator_port, server_port = instance.status().url, instance.status().server.port
        with psycopg.connect(instance.raw_url(), autocommit=True) as raw:
            create_source(raw, "moving", ROWS)
            before = checksum(raw, "moving")
        plan_file = tmp_path / "plan.json"
        plan_file.write_text(recreate_plan("moving", rows=ROWS, batch_size=100).to_json())
        first = _apply(plan_file, url, tmp_path)
        try:
            deadline = time.monotonic() + 120
            with psycopg.connect(instance.raw_url(), autocommit=True) as raw:
                while _rows_copied(raw) == 0:
                    assert first.poll() is None, first.communicate()
                    assert time.monotonic() < deadline, "the copy did not start"
                    time.sleep(0.05)
            # paused in the middle of the copy (a stop lets open sessions go on for a moment,
            # long enough for a fast copy to end): its connections outlive the emulator
            os.kill(first.pid, signal.SIGSTOP)
            instance.stop()
            assert instance.start() == url
            assert instance.status().url == emulator_port
            assert instance.status().server.port == server_port
            os.kill(first.pid, signal.SIGCONT)
            # the interrupted run retries its connection; if it gave up, run it again
            first_code = first.wait(timeout=300)
        finally:
            if first.poll() is None:
                first.kill()
        if first_code != 0:
            again = _apply(plan_file, url, tmp_path)
            out, err = again.communicate(timeout=300)
            assert again.returncode == 0, err + out
        with psycopg.connect(instance.raw_url(), autocommit=True) as raw:
            assert checksum(raw, "moving") == before
            assert raw.execute(
                "SELECT data_type FROM information_schema.columns WHERE table_name = 'moving' "
                "AND column_name = 'v'").fetchone() == ("bigint",)
            assert raw.execute(f"SELECT count(*) FROM {SCHEMA}.steps WHERE status <> 'done'"
                               ).fetchone() == (0,)
    finally:
        instance.destroy()
