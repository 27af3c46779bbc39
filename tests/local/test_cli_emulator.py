"""``dsql-migrate local`` with the emulator: profile, raw URL, status, stop."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from click.testing import CliRunner

from dsql_migrate.cli import main
from dsql_migrate.local import LocalInstance


def test_start_profile_raw_url_status_stop(tmp_path: Path) -> None:
    runner = CliRunner()
    directory = str(tmp_path / "target")
    try:
        started = runner.invoke(main, ["local", "start", "--dir", directory,
                                       "--profile", "classic", "--transaction-age", "30"])
        assert started.exit_code == 0, started.output
        url = started.stdout.strip()
        assert url.startswith("postgresql://admin@127.0.0.1:")
        again = runner.invoke(main, ["local", "start", "--dir", directory])
        assert again.exit_code == 0 and again.stdout.strip() == url
        raw = runner.invoke(main, ["local", "url", "--raw", "--dir", directory]).stdout.strip()
        assert raw != url
        password = json.loads((Path(directory) / "passwords.json").read_text())["admin"]
        assert raw.startswith(f"postgresql://admin:{password}@127.0.0.1:")
        status_output = runner.invoke(
            main, ["local", "status", "--dir", directory, "--format", "json"]).stdout
        assert password not in status_output  # status shows no secret
        status = json.loads(status_output)
        assert status["running"] and status["profile"] == "classic"
        assert status["url"] == url
        assert status["raw_url"] == raw.replace(f":{password}@", "@")
        assert status["postgres_version"] >= 16
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE j (id bigint PRIMARY KEY, doc json)")
            try:
                conn.execute("CREATE TABLE jb (id bigint PRIMARY KEY, doc jsonb)")
                raise AssertionError("the classic profile accepted jsonb")
            except psycopg.errors.FeatureNotSupported:
                pass
        with psycopg.connect(raw, autocommit=True) as conn:  # no rules on the raw URL
            conn.execute("CREATE TABLE jb (id bigint PRIMARY KEY, doc jsonb)")
    finally:
        first = runner.invoke(main, ["local", "stop", "--dir", directory])
        second = runner.invoke(main, ["local", "stop", "--dir", directory])
        runner.invoke(main, ["local", "destroy", "--dir", directory, "--yes"])
    assert first.exit_code == 0 and second.exit_code == 0


def test_serve_runs_in_the_foreground(tmp_path: Path) -> None:
    directory = tmp_path / "served"
    process = subprocess.Popen(
        [sys.executable, "-m", "dsql_migrate", "local", "serve", "--dir", str(directory)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("postgresql://admin@127.0.0.1:")
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
                    assert conn.execute("SELECT 1").fetchone() == (1,)
                break
            except psycopg.OperationalError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
        status = LocalInstance(directory).status()
        assert not status.running and not status.server.running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        LocalInstance(directory).destroy()
