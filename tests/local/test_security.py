"""The local target's security model (issue 15, docs/local.md "Security model"), tried as a
hostile local user would: as the unprivileged OS user ``nobody``.

Nothing is trusted: the server's superuser has a random password in a 0600 file; its Unix socket
is in a private 0700 directory of the instance; the emulator's port lets in DSQL's roles, never
the superuser, and ``admin`` is no PostgreSQL superuser.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from dsql_migrate.local import LocalInstance
from dsql_migrate.local.postgres import MAX_SOCKET_DIR, PASSWORDS_FILE, SHORT_SOCKET_PREFIX

pytestmark = pytest.mark.integration

def _nobody() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no OS user 'nobody' on this machine")


def _as_nobody(*command: str) -> subprocess.CompletedProcess[str]:
    """Run a program as ``nobody``: a forked child that drops root before it executes it."""
    user = _nobody()

    def drop() -> None:
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)

    env = {"PATH": "/usr/bin:/bin", "HOME": "/", "LC_ALL": "C", "PGCONNECT_TIMEOUT": "5"}
    return subprocess.run(list(command), preexec_fn=drop, env=env, cwd="/",
                          capture_output=True, text=True, timeout=60, check=False)


def _psql(instance: LocalInstance) -> str:
    """A ``psql`` that ``nobody`` may run (the server's own, else one on the PATH)."""
    bin_dir = instance.status().server.bin_dir
    for candidate in (Path(bin_dir or "/nonexistent") / "psql", shutil.which("psql")):
        if candidate and _as_nobody(str(candidate), "--version").returncode == 0:
            return str(candidate)
    pytest.skip("no psql that the OS user 'nobody' may run")


def _attempt(psql: str, host: str, port: int, user: str, sql: str = "select current_user",
             password: str | None = None) -> tuple[int, str]:
    """(exit code, output) of a psql session as ``nobody``: 0 ran, 1 SQL error, 2 no login."""
    conninfo = f"host={host} port={port} user={user} dbname=postgres"
    if password is not None:
        conninfo += f" password={password}"
    run = _as_nobody(psql, "-X", "-w", "-At", "-v", "ON_ERROR_STOP=1", "-d", conninfo,
                     "-c", sql)
    return run.returncode, (run.stdout + run.stderr).strip()


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every user may enter, so that only the instance's own modes protect it."""
    parent = Path(tempfile.mkdtemp(prefix="dsql-migrate-open-"))
    parent.chmod(0o755)
    yield parent
    shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="module")
def exposed() -> Iterator[LocalInstance]:
    """A target in a directory every user may enter (only its files' own modes protect it)."""
    if os.geteuid() != 0:
        pytest.skip("switching to the OS user 'nobody' needs root (CI runs as root)")
    parent = Path(tempfile.mkdtemp(prefix="dsql-migrate-open-"))
    parent.chmod(0o755)
    instance = LocalInstance(parent / "target")
    try:
        instance.start()
        yield instance
    finally:
        instance.destroy()
        shutil.rmtree(parent, ignore_errors=True)


def test_a_hostile_local_user_gets_nothing_but_admin(exposed: LocalInstance) -> None:
    state = exposed.state_dir
    assert state.stat().st_mode & 0o005 == 0o005  # nobody can enter the instance directory
    psql = _psql(exposed)
    assert _as_nobody("id", "-u").stdout.strip() == str(_nobody().pw_uid)
    raw_port = urlsplit(exposed.raw_url()).port
    emulator_port = urlsplit(exposed.url()).port
    socket_dir = str(exposed.postgres.socket_dir)
    assert raw_port is not None and emulator_port is not None

    # the raw server: the superuser needs its password, over TCP and on the socket
    code, out = _attempt(psql, "127.0.0.1", raw_port, "postgres")
    assert code == 2 and "no password supplied" in out, out
    code, out = _attempt(psql, "127.0.0.1", raw_port, "postgres", password="guess")
    assert code == 2 and "password authentication failed" in out, out
    code, out = _attempt(psql, "127.0.0.1", raw_port, "admin")
    assert code == 2 and "no password supplied" in out, out
    for user in ("postgres", "admin"):
        code, out = _attempt(psql, socket_dir, raw_port, user)
        assert code == 2 and "Permission denied" in out, out
    listing = _as_nobody("ls", socket_dir)
    assert listing.returncode != 0 and "Permission denied" in listing.stderr
    read = _as_nobody("cat", str(state / PASSWORDS_FILE))
    assert read.returncode != 0 and "Permission denied" in read.stderr
    assert read.stdout == ""

    # the emulator: DSQL's roles only, and admin is no superuser
    code, out = _attempt(psql, "127.0.0.1", emulator_port, "postgres")
    assert code == 2 and "not permitted to log in" in out, out
    assert _attempt(psql, "127.0.0.1", emulator_port, "admin") == (0, "admin")
    for sql, message in (
        ("COPY (SELECT 1) TO PROGRAM 'id > /tmp/dsql-migrate-pwned'",
         "permission denied to COPY to or from an external program"),
        ("COPY (SELECT 1) TO '/tmp/dsql-migrate-pwned'", "permission denied to COPY to a file"),
        ("ALTER SYSTEM SET log_min_messages = 'debug5'", "permission denied to set parameter"),
        ("SELECT pg_read_file('PG_VERSION')", "permission denied for function pg_read_file"),
        ("GRANT pg_execute_server_program TO admin", "permission denied to grant role"),
    ):
        # through the emulator DSQL's rules may refuse the form before PostgreSQL sees it ...
        code, out = _attempt(psql, "127.0.0.1", emulator_port, "admin", sql)
        assert code == 1 and (message in out or "is not supported" in out), (sql, out)
        # ... and PostgreSQL itself refuses it to admin, who is no superuser
        code, out = _attempt(psql, "127.0.0.1", raw_port, "admin", sql,
                             password=urlsplit(exposed.raw_url()).password)
        assert code == 1 and message in out, (sql, out)
    assert not Path("/tmp/dsql-migrate-pwned").exists()


def test_files_and_directories_are_private(exposed: LocalInstance) -> None:
    passwords = exposed.state_dir / PASSWORDS_FILE
    assert stat.S_IMODE(passwords.stat().st_mode) == 0o600
    assert set(json.loads(passwords.read_text())) == {"postgres", "admin"}
    socket_dir = exposed.postgres.socket_dir
    assert socket_dir.parent == exposed.state_dir  # inside the instance, not /tmp
    assert stat.S_IMODE(socket_dir.stat().st_mode) == 0o700
    # even the emulator's own OS user, which may enter it, needs the superuser's password there
    port = exposed.status().server.port
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        psycopg.connect(host=str(socket_dir), port=port, user="postgres", dbname="postgres")
    with psycopg.connect(host=str(socket_dir), port=port, user="admin", dbname="postgres") as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("admin",)  # peer: the emulator
    hba = (exposed.postgres.data_dir / "pg_hba.conf").read_text()
    rules = [line.split() for line in hba.splitlines() if line.strip() and line[0] != "#"]
    assert rules and all("trust" not in rule for rule in rules), hba


def test_admin_is_what_dsql_admin_is_not_a_superuser(exposed: LocalInstance) -> None:
    with psycopg.connect(exposed.url(), autocommit=True) as conn:
        assert conn.execute("SELECT rolsuper, rolcreaterole FROM pg_roles "
                            "WHERE rolname = current_user").fetchone() == (False, True)
        # what DSQL's admin does: roles, grants, schemas, tables, views, SQL functions, jobs
        conn.execute("CREATE ROLE app_reader WITH LOGIN")
        conn.execute("CREATE SCHEMA app")
        conn.execute("CREATE TABLE app.t (id int PRIMARY KEY, v text)")
        conn.execute("GRANT USAGE ON SCHEMA app TO app_reader")
        conn.execute("GRANT SELECT ON app.t TO app_reader")
        conn.execute("CREATE VIEW app.v AS SELECT id FROM app.t")
        conn.execute("CREATE FUNCTION app.f() RETURNS int LANGUAGE sql AS 'SELECT 1'")
        job = conn.execute("CREATE INDEX ASYNC t_v ON app.t (v)").fetchone()
        assert job is not None
        assert conn.execute("CALL sys.wait_for_job(%s)", (job[0],)).fetchone() == (True,)
        assert conn.execute("SELECT status FROM sys.jobs WHERE job_id = %s",
                            (job[0],)).fetchone() == ("completed",)
    # a role made with CREATE ROLE ... LOGIN connects through the emulator with no password
    reader = exposed.url().replace("//admin@", "//app_reader@")
    with psycopg.connect(reader) as conn:
        assert conn.execute("SELECT count(*) FROM app.t").fetchone() == (0,)


def test_raw_and_superuser_urls_carry_their_passwords(exposed: LocalInstance) -> None:
    passwords = json.loads((exposed.state_dir / PASSWORDS_FILE).read_text())
    raw, superuser = exposed.raw_url(), exposed.superuser_url()
    assert f"//admin:{passwords['admin']}@" in raw
    assert f"//postgres:{passwords['postgres']}@" in superuser
    with psycopg.connect(superuser, autocommit=True) as conn:
        row = conn.execute("SELECT current_user, rolsuper FROM pg_roles "
                           "WHERE rolname = current_user").fetchone()
        assert row == ("postgres", True)
    with psycopg.connect(raw, autocommit=True) as conn:  # admin may make databases
        conn.execute("CREATE DATABASE raw_probe")
        conn.execute("DROP DATABASE raw_probe")


def _connect_ok(url: str) -> Any:
    with psycopg.connect(url, connect_timeout=10) as conn:
        return conn.execute("SELECT current_user").fetchone()


def test_a_long_instance_path_gets_a_short_private_socket_dir(open_dir: Path) -> None:
    directory = open_dir / ("deep-" * 20) / "target"  # where the server account may go
    instance = LocalInstance(directory)
    try:
        url = instance.start()
        socket_dir = instance.postgres.socket_dir
        assert len(str(socket_dir)) <= MAX_SOCKET_DIR
        assert socket_dir.name.startswith(SHORT_SOCKET_PREFIX)
        assert stat.S_IMODE(socket_dir.stat().st_mode) == 0o700
        # the instance records where it is
        recorded = json.loads((directory / "instance.json").read_text())["socket_dir"]
        assert recorded == str(socket_dir)
        assert _connect_ok(url) == ("admin",)  # the emulator reaches the server through it
        instance.stop()
        assert instance.start() == url
        assert instance.postgres.socket_dir == socket_dir  # reused while it is ours
        assert _connect_ok(url) == ("admin",)
    finally:
        instance.destroy()
    assert not socket_dir.exists()


def test_lost_passwords_are_replaced_at_the_next_start(tmp_path: Path) -> None:
    """An instance made before passwords existed (or whose file was deleted) gets new ones."""
    instance = LocalInstance(tmp_path / "target")
    try:
        instance.start()
        old_superuser = instance.superuser_url()
        instance.stop()
        (instance.state_dir / PASSWORDS_FILE).unlink()
        url = instance.start()
        assert instance.superuser_url() != old_superuser
        assert _connect_ok(instance.superuser_url()) == ("postgres",)
        assert _connect_ok(instance.raw_url()) == ("admin",)
        assert _connect_ok(url) == ("admin",)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            _connect_ok(old_superuser)
    finally:
        instance.destroy()


def _job_result(conn: psycopg.Connection[Any], statement: str) -> tuple[str, str | None]:
    row = conn.execute(statement).fetchone()
    assert row is not None
    conn.execute("CALL sys.wait_for_job(%s)", (row[0],))
    found = conn.execute("SELECT status, details FROM sys.jobs WHERE job_id = %s",
                         (row[0],)).fetchone()
    assert found is not None
    return found[0], found[1]


def _admin_is_superuser(instance: LocalInstance) -> bool:
    with psycopg.connect(instance.superuser_url()) as conn:
        row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = 'admin'").fetchone()
    return bool(row and row[0])


@pytest.fixture
def target(open_dir: Path) -> Iterator[LocalInstance]:
    instance = LocalInstance(open_dir / "target")
    instance.start()
    yield instance
    instance.destroy()


def test_a_validation_job_cannot_become_the_superuser(target: LocalInstance) -> None:
    """The job runner validates a constraint as a role the submitter could be, not as the
    superuser that merely SET ROLE: a check function's RESET ROLE gains nothing."""
    with psycopg.connect(target.url(), autocommit=True) as conn:
        conn.execute("CREATE TABLE v (id int PRIMARY KEY)")
        conn.execute("INSERT INTO v VALUES (1)")
        conn.execute("CREATE FUNCTION v_ok(int) RETURNS boolean LANGUAGE sql AS "
                     "$$ RESET ROLE; ALTER ROLE admin SUPERUSER; SELECT true $$")
        conn.execute("ALTER TABLE v ADD CONSTRAINT v_c CHECK (v_ok(id)) NOT VALID")
        status, details = _job_result(conn, "ALTER TABLE ASYNC v VALIDATE CONSTRAINT v_c")
    assert not _admin_is_superuser(target)
    assert status == "failed" and details is not None and "permission denied" in details


def test_submitting_a_job_ignores_the_callers_search_path(target: LocalInstance) -> None:
    """``sys._submit_job`` runs with the superuser's rights: it must not call functions that
    the caller put first on the search path."""
    with psycopg.connect(target.url(), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA evil")
        conn.execute("CREATE TABLE public.w (id int PRIMARY KEY, v text)")
        for signature, returns, value in (("replace(text, text, text)", "text", "'x'"),
                                          ("format(text)", "text", "'x'"),
                                          ("gen_random_uuid()", "uuid",
                                           "pg_catalog.gen_random_uuid()")):
            conn.execute(f"CREATE FUNCTION evil.{signature} RETURNS {returns} LANGUAGE sql AS "
                         f"$$ ALTER ROLE admin SUPERUSER; SELECT {value} $$")
        conn.execute("SET search_path = evil, pg_catalog, public")
        status, _ = _job_result(conn, "CREATE INDEX ASYNC w_v ON w (v)")
    assert not _admin_is_superuser(target)
    assert status == "completed"
