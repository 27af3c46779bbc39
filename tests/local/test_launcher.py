"""The embedded PostgreSQL launcher, against real servers (each test module starts its own)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from dsql_migrate.errors import ConfigError, ExitCode
from dsql_migrate.local.accounts import Account, server_account
from dsql_migrate.local.postgres import EmbeddedPostgres, is_port_free, process_alive

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "dsql_migrate"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    pg = EmbeddedPostgres(tmp_path_factory.mktemp("launcher") / "state")
    pg.start()
    yield pg
    pg.destroy()


def test_fresh_server_has_dsql_shaped_database_and_admin_role(server: EmbeddedPostgres) -> None:
    url = server.url()
    assert url.startswith("postgresql://admin:") and url.endswith("/postgres")
    assert "@127.0.0.1:" in url
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select current_user, current_database(), "
            "pg_encoding_to_char(encoding), datcollate, rolsuper "
            "from pg_database, pg_roles "
            "where datname = current_database() and rolname = current_user"
        ).fetchone()
        assert row == ("admin", "postgres", "UTF8", "C", False)
        conn.execute("create table launcher_probe (id int primary key)")  # admin may create


def test_second_start_returns_the_same_server(server: EmbeddedPostgres) -> None:
    first = server.status()
    again = server.start()
    assert again.running and again.pid == first.pid and again.port == first.port


def test_second_start_on_another_port_is_refused(server: EmbeddedPostgres) -> None:
    other = EmbeddedPostgres(server.state_dir, port=_busy_free_port())
    with pytest.raises(ConfigError, match="already running"):
        other.start()


def _busy_free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_stop_twice_then_restart_keeps_data(server: EmbeddedPostgres) -> None:
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute("create table if not exists kept (v text)")
        conn.execute("insert into kept values ('still here')")
    port = server.status().port
    assert server.stop() is True
    assert server.stop() is False
    assert not server.status().running
    status = server.start()
    assert status.running
    # the URL stays stable, unless another process took the port while it was free
    assert status.port == port or not is_port_free(port)
    with psycopg.connect(server.url()) as conn:
        assert conn.execute("select v from kept").fetchall() == [("still here",)]


def test_stale_pid_after_a_crash_is_recovered(server: EmbeddedPostgres) -> None:
    pid = server.status().pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (server.data_dir / "postmaster.pid").exists()  # what a crash leaves behind
    assert not server.status().running
    status = server.start(timeout=60)
    assert status.running and status.pid != pid
    with psycopg.connect(server.url()) as conn:
        assert conn.execute("select count(*) from kept").fetchone() == (1,)


def test_port_in_use_is_a_clear_usage_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        pg = EmbeddedPostgres(tmp_path / "busy", port=port)
        with pytest.raises(ConfigError) as info:
            pg.start()
        assert f"port {port}" in str(info.value)
        assert info.value.exit_code == ExitCode.USAGE
        assert not pg.status().running


@pytest.mark.skipif(os.geteuid() != 0, reason="only root needs another account")
def test_as_root_the_server_runs_unprivileged(server: EmbeddedPostgres) -> None:
    pid = server.status().pid
    assert pid is not None
    uid = _uid_of(pid)
    account = server_account()
    assert uid == account.uid != 0
    assert server.data_dir.stat().st_uid == account.uid
    # nothing but the data directory changed hands
    assert server.state_dir.stat().st_uid == 0
    assert (server.state_dir / "instance.json").stat().st_uid == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="only root needs another account")
def test_as_root_an_unreachable_state_dir_gets_a_private_data_dir(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    os.chmod(private, 0o700)  # the server account cannot enter it
    pg = EmbeddedPostgres(private / "state")
    try:
        status = pg.start()
        assert status.running
        assert not str(status.data_dir).startswith(str(private))
        assert oct(private.stat().st_mode & 0o777) == "0o700"  # left as it was
        with psycopg.connect(pg.url()) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    finally:
        pg.destroy()
    assert not status.data_dir.exists()


def test_account_for_a_non_root_user_is_ourselves() -> None:
    me = Account.current()
    assert not me.is_switch
    assert me.popen_kwargs() == {}


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


# -- the CLI, as a user runs it ---------------------------------------------------------------


def _cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DSQL_MIGRATE_")}
    environ.update(env or {})
    return subprocess.run([*CLI, *args], cwd=cwd, env=environ, capture_output=True, text=True,
                          timeout=120, check=False)


def test_cli_lifecycle(tmp_path: Path) -> None:
    start = _cli("local", "start", cwd=tmp_path)
    assert start.returncode == 0, start.stderr
    url = start.stdout.strip()
    assert url.startswith("postgresql://admin@127.0.0.1:")
    assert start.stdout == url + "\n"  # only the URL on stdout: URL=$(dsql-migrate local start)
    try:
        again = _cli("local", "start", cwd=tmp_path)
        assert again.returncode == 0 and again.stdout.strip() == url
        assert _cli("local", "url", cwd=tmp_path).stdout.strip() == url
        status = _cli("local", "status", "--format", "json", cwd=tmp_path)
        data = json.loads(status.stdout)
        assert data["running"] is True and data["url"] == url and data["pid"] > 0
        text = _cli("local", "status", cwd=tmp_path).stdout
        assert "running" in text and url in text
        query = _cli("sql", "select 40 + 2 as answer", "--format", "json", cwd=tmp_path)
        assert query.returncode == 0, query.stderr
        assert json.loads(query.stdout)[0]["rows"] == [[42]]
    finally:
        assert _cli("local", "stop", cwd=tmp_path).returncode == 0
    second_stop = _cli("local", "stop", cwd=tmp_path)
    assert second_stop.returncode == 0 and "not running" in second_stop.stderr
    assert "not running" in _cli("local", "status", cwd=tmp_path).stdout
    url_when_stopped = _cli("local", "url", cwd=tmp_path)
    assert url_when_stopped.returncode == 1
    assert "local start" in url_when_stopped.stderr
    assert _cli("local", "destroy", "--yes", cwd=tmp_path).returncode == 0
    assert not (tmp_path / ".dsql-migrate" / "local" / "instance.json").exists()


def test_cli_without_binaries_exits_2_without_traceback(tmp_path: Path) -> None:
    result = _cli("local", "start", "--dir", str(tmp_path / "s"), cwd=tmp_path,
                  env={"DSQL_MIGRATE_PG_BIN": str(tmp_path)})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "DSQL_MIGRATE_PG_BIN" in result.stderr
    assert result.stdout == ""


def test_cli_serve_runs_until_interrupted(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DSQL_MIGRATE_")}
    proc = subprocess.Popen([*CLI, "local", "serve", "--dir", str(tmp_path / "s")], cwd=tmp_path,
                            env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        with psycopg.connect(url) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)
    EmbeddedPostgres(tmp_path / "s").destroy()
