"""The emulator runs PostgreSQL 16 or newer, as DSQL (issue 15): the session's own target, and
what ``local start`` does when only an older server can be found."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dsql_migrate.local import binaries, postgres
from dsql_migrate.local.accounts import server_account
from dsql_migrate.local.binaries import ENV_ALLOW_OLD, MIN_MAJOR, OLD_SERVER_DIFFERENCES

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "dsql_migrate"]


def test_the_session_emulator_runs_postgresql_16(conn: psycopg.Connection[Any]) -> None:
    if binaries.allow_old_from_env():
        pytest.skip(f"{ENV_ALLOW_OLD} explicitly allows an older server")
    row = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()
    assert row is not None and row[0] >= MIN_MAJOR * 10000, row
    # what DSQL (PostgreSQL 16) has and 15 does not
    assert conn.execute("SELECT pg_input_is_valid('12', 'integer')").fetchone() == (True,)


def _older_server() -> Path:
    for directory in sorted(Path("/usr/lib/postgresql").glob("*/bin")):
        if directory.parent.name.isdigit() and int(directory.parent.name) < MIN_MAJOR and \
                (directory / "postgres").exists():
            return directory
    pytest.skip("no PostgreSQL server older than 16 on this machine")


def _cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DSQL_MIGRATE_")}
    environ.update(env)
    return subprocess.run([*CLI, *args], cwd=cwd, env=environ, capture_output=True, text=True,
                          timeout=180, check=False)


def test_an_older_server_needs_allow_old_postgres_and_says_what_differs(tmp_path: Path) -> None:
    old = _older_server()
    major = int(old.parent.name)
    env = {"DSQL_MIGRATE_PG_BIN": str(old)}
    directory = str(tmp_path / "old")
    refused = _cli("local", "start", "--dir", directory, cwd=tmp_path, env=env)
    assert refused.returncode == 2, refused.stderr
    assert f"is PostgreSQL {major}" in refused.stderr and "--allow-old-postgres" in \
        refused.stderr
    assert "Traceback" not in refused.stderr and refused.stdout == ""
    started = _cli("local", "start", "--dir", directory, "--allow-old-postgres", cwd=tmp_path,
                   env=env)
    try:
        assert started.returncode == 0, started.stderr
        assert f"runs PostgreSQL {major}, not {MIN_MAJOR}" in started.stderr
        for difference in OLD_SERVER_DIFFERENCES:
            assert difference in started.stderr
        url = started.stdout.strip()
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()
            assert row is not None and row[0] // 10000 == major
        status = _cli("local", "status", "--dir", directory, cwd=tmp_path, env=env)
        assert f"PostgreSQL {major}" in status.stdout
        data = json.loads(_cli("local", "status", "--dir", directory, "--format", "json",
                               cwd=tmp_path, env=env).stdout)
        assert data["postgres_version"] == major
        # stopped, the old data directory is refused again without the option
        assert _cli("local", "stop", "--dir", directory, cwd=tmp_path, env=env).returncode == 0
        again = _cli("local", "start", "--dir", directory, cwd=tmp_path, env={})
        assert again.returncode == 2 and f"made by PostgreSQL {major}" in again.stderr
    finally:
        _cli("local", "destroy", "--dir", directory, "--yes", cwd=tmp_path, env=env)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another account")
def test_as_root_an_unreachable_bundled_server_is_copied_where_its_account_can_run_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CI clones as root, maybe under /root: the virtual environment's embedded-pg build is then
    out of the server account's reach, and a copy of it is used."""
    bundled = binaries._pgserver_bindir()
    if bundled is None:
        pytest.skip("the optional pgserver package is not installed")
    private = tmp_path / "site"  # the pytest base directory is root's, mode 0700
    if server_account().can_reach(tmp_path):
        pytest.skip(f"{tmp_path} is reachable by the server account")
    shutil.copytree(bundled.parent, private / "pgserver" / "pginstall", symlinks=True)
    libs = bundled.parents[2] / "pgserver.libs"
    if libs.is_dir():
        shutil.copytree(libs, private / "pgserver.libs", symlinks=True)
    unreachable = private / "pgserver" / "pginstall" / "bin"
    monkeypatch.setattr(postgres, "_pgserver_bindir", lambda: unreachable)
    state = Path(tempfile.mkdtemp(prefix="dsql-migrate-open-"))
    state.chmod(0o755)
    server = postgres.EmbeddedPostgres(state / "target",
                                       binaries=binaries.PgBinaries(unreachable, MIN_MAJOR))
    copy: Path | None = None
    try:
        status = server.start()
        assert status.bin_dir is not None
        copy = Path(status.bin_dir).parents[2]
        assert copy.parent == Path("/var/tmp") / f"dsql-migrate-{server_account().name}"
        with psycopg.connect(server.url(postgres.SUPERUSER)) as conn:
            row = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()
            assert row is not None and row[0] >= MIN_MAJOR * 10000
    finally:
        server.destroy()
        shutil.rmtree(state, ignore_errors=True)
        if copy is not None:
            shutil.rmtree(copy, ignore_errors=True)
