"""The embedded PostgreSQL server behind the local target.

:class:`EmbeddedPostgres` owns one data directory: it runs ``initdb`` the first time (UTF8, C
collation, as DSQL has), starts the server on 127.0.0.1 on a free or given port, waits until it
accepts connections, and stops it. It reuses an existing data directory, recovers from the stale
``postmaster.pid`` a crash leaves behind, and when run as root starts the server as an
unprivileged account (see :mod:`.accounts`).

Every instance has a database ``postgres`` and a login role ``admin`` (DSQL's admin role name)
that owns it, so local URLs look like DSQL's. The bootstrap superuser ``postgres`` is kept for the
emulator's own objects; users connect as ``admin``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from ..errors import ConfigError, LocalServerError
from .accounts import Account, server_account
from .binaries import PgBinaries, find_binaries

log = logging.getLogger(__name__)

STATE_FILE = "instance.json"
DATA_SUBDIR = "pgdata"
LOG_FILE = "server.log"
CONF_FILE = "dsql_migrate.conf"
HOST = "127.0.0.1"
DATABASE = "postgres"
ADMIN_ROLE = "admin"
SUPERUSER = "postgres"
#: where the server also listens on a Unix-domain socket, for the emulator's hop to it (short,
#: world-writable, and the same for every account, so it works when root runs the server as an
#: unprivileged account); users connect over TCP
SOCKET_DIR = "/tmp"

#: settings written on every start; ``port`` is added there
SERVER_SETTINGS: dict[str, str] = {
    "listen_addresses": f"'{HOST}'",
    "unix_socket_directories": f"'{SOCKET_DIR}'",
    "max_connections": "200",
    "synchronous_commit": "off",  # a local development target: speed over durability
    "timezone": "'UTC'",
    "log_timezone": "'UTC'",
    "lc_messages": "'C'",
}


def is_port_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def pick_free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): trust kill()
    # the state letter follows the parenthesised command name
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _looks_like_postgres(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # cannot tell: assume it is
    return b"postgres" in cmdline or b"postmaster" in cmdline


@dataclass(frozen=True)
class ServerStatus:
    """What ``local status`` reports."""

    running: bool
    pid: int | None
    port: int | None
    data_dir: Path
    log_file: Path
    major: int | None

    def url(self, role: str = ADMIN_ROLE) -> str | None:
        if self.port is None:
            return None
        return make_url(self.port, role)

    def as_dict(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "pid": self.pid,
            "port": self.port,
            "url": self.url() if self.running else None,
            "data_dir": str(self.data_dir),
            "log_file": str(self.log_file),
            "postgres_version": self.major,
        }


def make_url(port: int, role: str = ADMIN_ROLE, host: str = HOST) -> str:
    return f"postgresql://{role}@{host}:{port}/{DATABASE}"


@dataclass
class _State:
    """The launcher's memory, kept in ``<state dir>/instance.json``."""

    data_dir: str | None = None
    port: int | None = None
    bin_dir: str | None = None
    account: str | None = None
    bootstrapped: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> _State:
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            raise LocalServerError(
                f"{path}: unreadable launcher state ({exc})",
                hint="remove the file; the data directory is kept and reused",
            ) from None
        known = {k: raw.pop(k) for k in ("data_dir", "port", "bin_dir", "account", "bootstrapped")
                 if k in raw}
        return cls(**known, extra=raw)

    def save(self, path: Path) -> None:
        data = {
            "data_dir": self.data_dir,
            "port": self.port,
            "bin_dir": self.bin_dir,
            "account": self.account,
            "bootstrapped": self.bootstrapped,
            **self.extra,
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(path)


class EmbeddedPostgres:
    """One embedded PostgreSQL server, its state in ``state_dir``."""

    def __init__(
        self,
        state_dir: Path,
        *,
        port: int | None = None,
        binaries: PgBinaries | None = None,
        account: Account | None = None,
    ) -> None:
        self.state_dir = Path(state_dir).absolute()
        self.requested_port = port
        self._binaries = binaries
        self._account = account

    # -- where things are -------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.state_dir / STATE_FILE

    @property
    def account(self) -> Account:
        if self._account is None:
            self._account = server_account()
        return self._account

    def _state(self) -> _State:
        return _State.load(self.state_file)

    @property
    def data_dir(self) -> Path:
        recorded = self._state().data_dir
        return Path(recorded) if recorded else self.state_dir / DATA_SUBDIR

    @property
    def log_file(self) -> Path:
        return self.data_dir / LOG_FILE

    def _choose_data_dir(self) -> Path:
        """Inside the state directory, unless the server account cannot reach it (root only)."""
        inside = self.state_dir / DATA_SUBDIR
        if not self.account.is_switch or self.account.can_reach(self.state_dir):
            return inside
        digest = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:16]
        home = Path("/var/tmp") / f"dsql-migrate-{self.account.name}"
        if not home.exists():
            home.mkdir(mode=0o700)
            self.account.give(home)
        log.info(
            "%s cannot reach %s; keeping the data directory in %s",
            self.account.name, self.state_dir, home / digest,
        )
        return home / digest

    # -- status ---------------------------------------------------------------------------

    def _postmaster_pid(self) -> tuple[int, int | None] | None:
        """(pid, port) from ``postmaster.pid``, or None when there is no such file."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return None
        except PermissionError:
            raise LocalServerError(
                f"cannot read {self.data_dir}: permission denied",
                hint="run as the user that started the server (or as root)",
            ) from None
        try:
            pid = int(lines[0])
        except (IndexError, ValueError):
            return (0, None)  # half-written: treat as stale
        port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
        return (pid, port)

    def _major(self) -> int | None:
        try:
            return int((self.data_dir / "PG_VERSION").read_text().strip())
        except (OSError, ValueError):
            return None

    def status(self) -> ServerStatus:
        state = self._state()
        found = self._postmaster_pid() if self.state_file.exists() else None
        running = bool(found and found[0] > 0 and process_alive(found[0])
                       and _looks_like_postgres(found[0]))
        pid = found[0] if running and found else None
        port = (found[1] if running and found else None) or state.port
        return ServerStatus(
            running=running, pid=pid, port=port, data_dir=self.data_dir,
            log_file=self.log_file, major=self._major(),
        )

    def url(self, role: str = ADMIN_ROLE) -> str:
        """The URL of the running server, or an error saying how to start it."""
        status = self.status()
        if not status.running or status.port is None:
            raise LocalServerError(
                f"the local server in {self.state_dir} is not running",
                hint="start it with 'dsql-migrate local start'",
            )
        return make_url(status.port, role)

    # -- start ----------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> ServerStatus:
        """Start the server (initialising it the first time); a running one is left as is."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        status = self.status()
        if status.running:
            if self.requested_port not in (None, status.port):
                raise ConfigError(
                    f"the local server is already running on port {status.port}, "
                    f"not {self.requested_port}",
                    hint="stop it first to change its port",
                )
            return status
        state = self._state()
        if state.data_dir is None:
            state.data_dir = str(self._choose_data_dir())
            state.save(self.state_file)
        data_dir = Path(state.data_dir)
        self._remove_stale_pid(data_dir)
        binaries = self._resolve_binaries(state, data_dir)
        if not (data_dir / "PG_VERSION").exists():
            self._initdb(binaries, data_dir)
            state.bootstrapped = False
        port = self._choose_port(state)
        self._write_conf(data_dir, port)
        state.port, state.bin_dir, state.account = port, str(binaries.bin_dir), self.account.name
        state.save(self.state_file)
        self._pg_ctl_start(binaries, data_dir, timeout)
        if not state.bootstrapped:
            self._bootstrap(port)
            state.bootstrapped = True
            state.save(self.state_file)
        return self.status()

    def _resolve_binaries(self, state: _State, data_dir: Path) -> PgBinaries:
        wanted = self._major_of(data_dir)
        if self._binaries is not None:
            binaries = self._binaries
        else:
            binaries = find_binaries()
            if wanted is not None and binaries.major != wanted and state.bin_dir:
                recorded = Path(state.bin_dir)
                if (recorded / "postgres").exists():
                    binaries = PgBinaries(recorded, wanted)
        if wanted is not None and binaries.major != wanted:
            raise LocalServerError(
                f"the data directory {data_dir} was made by PostgreSQL {wanted}, "
                f"but the server binaries found are PostgreSQL {binaries.major}",
                hint="point DSQL_MIGRATE_PG_BIN at PostgreSQL "
                f"{wanted}, or 'dsql-migrate local destroy' to start afresh",
            )
        return binaries

    @staticmethod
    def _major_of(data_dir: Path) -> int | None:
        try:
            return int((data_dir / "PG_VERSION").read_text().strip())
        except (OSError, ValueError):
            return None

    def _remove_stale_pid(self, data_dir: Path) -> None:
        pid_file = data_dir / "postmaster.pid"
        found = self._postmaster_pid()
        if found is None:
            return
        pid = found[0]
        if pid > 0 and process_alive(pid) and _looks_like_postgres(pid):
            raise LocalServerError(
                f"a PostgreSQL process (pid {pid}) still holds {data_dir} but is not serving",
                hint=f"stop it ('kill {pid}') and try again",
            )
        log.warning("removing the stale %s left by a server that died (pid %s)", pid_file, pid)
        pid_file.unlink(missing_ok=True)

    def _choose_port(self, state: _State) -> int:
        if self.requested_port is not None:
            if not is_port_free(self.requested_port):
                raise ConfigError(
                    f"port {self.requested_port} on {HOST} is already in use",
                    hint="choose another with --port, or leave --port out to pick a free one",
                )
            return self.requested_port
        if state.port is not None and is_port_free(state.port):
            return state.port
        return pick_free_port()

    def _run_as_server(self, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        if self.account.is_switch:
            env["HOME"] = "/"
        try:
            return subprocess.run(  # type: ignore[call-overload, no-any-return]
                args, capture_output=True, text=True, timeout=timeout, cwd="/",
                env=env, check=False, **self.account.popen_kwargs(),
            )
        except subprocess.TimeoutExpired:
            raise LocalServerError(
                f"{Path(args[0]).name} did not finish within {timeout:.0f} s",
                hint=f"see {self.log_file}",
            ) from None

    def _initdb(self, binaries: PgBinaries, data_dir: Path) -> None:
        # initdb into a scratch directory and rename it, so a crash never leaves half a cluster
        scratch = data_dir.with_name(data_dir.name + ".initdb")
        if scratch.exists():
            shutil.rmtree(scratch)
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        scratch.mkdir(mode=0o700)
        self.account.give(scratch)
        log.info("initialising a PostgreSQL %s data directory in %s", binaries.major, data_dir)
        result = self._run_as_server(
            [
                binaries.path("initdb"), "-D", str(scratch), "-U", SUPERUSER,
                "--encoding=UTF8", "--locale=C", "--auth=trust", "--no-instructions",
            ],
            timeout=300,
        )
        if result.returncode != 0:
            shutil.rmtree(scratch, ignore_errors=True)
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise LocalServerError(
                f"initdb failed: {detail[-1] if detail else 'exit ' + str(result.returncode)}"
            )
        conf = scratch / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write(f"\n# settings managed by dsql-migrate\ninclude_if_exists = '{CONF_FILE}'\n")
        if data_dir.exists():
            data_dir.rmdir()  # an empty directory only: never remove anything with data
        scratch.rename(data_dir)

    def _write_conf(self, data_dir: Path, port: int) -> None:
        settings = {**SERVER_SETTINGS, "port": str(port)}
        text = "".join(f"{key} = {value}\n" for key, value in settings.items())
        path = data_dir / CONF_FILE
        path.write_text(text)
        self.account.give(path)

    def _pg_ctl_start(self, binaries: PgBinaries, data_dir: Path, timeout: float) -> None:
        log_file = data_dir / LOG_FILE
        deadline = time.monotonic() + timeout
        while True:
            result = self._run_as_server(
                [
                    binaries.path("pg_ctl"), "start", "-w", "-s",
                    "-t", str(max(1, int(deadline - time.monotonic()))),
                    "-D", str(data_dir), "-l", str(log_file),
                ],
                timeout=timeout + 10,
            )
            if result.returncode == 0:
                return
            tail = _tail(log_file)
            # children of a server killed with SIGKILL may hold shared memory for a moment
            if "pre-existing shared memory block" in tail and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            if "could not bind" in tail or "Address already in use" in tail:
                raise ConfigError(
                    f"the server could not listen on {HOST}: the port is in use",
                    hint="choose another with --port",
                )
            last = tail.strip().splitlines()[-3:] or [result.stderr.strip()]
            raise LocalServerError(
                "PostgreSQL did not start: " + " | ".join(last),
                hint=f"the full server log is in {log_file}",
            )

    def _bootstrap(self, port: int) -> None:
        """Create the ``admin`` role and give it the ``postgres`` database."""
        conninfo = make_url(port, SUPERUSER)
        try:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
                conn.execute(
                    "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'admin') "
                    "THEN CREATE ROLE admin LOGIN CREATEDB CREATEROLE; END IF; END $$"
                )
                conn.execute("ALTER DATABASE postgres OWNER TO admin")
                conn.execute("ALTER SCHEMA public OWNER TO admin")
        except psycopg.Error as exc:
            raise LocalServerError(f"could not prepare the local database: {exc}") from None

    # -- stop -----------------------------------------------------------------------------

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the server; False if it was not running."""
        status = self.status()
        if not status.running or status.pid is None:
            return False
        pid = status.pid
        try:
            os.kill(pid, signal.SIGINT)  # "fast" shutdown: roll back sessions, checkpoint
        except PermissionError:
            raise LocalServerError(
                f"not allowed to stop the server (pid {pid}), which another user started",
                hint="run 'dsql-migrate local stop' as that user or as root",
            ) from None
        except ProcessLookupError:
            return True
        if not _wait_gone(pid, timeout):
            log.warning("server pid %s ignored a fast shutdown; stopping it immediately", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)
            if not _wait_gone(pid, 10):
                raise LocalServerError(f"the server (pid {pid}) does not stop")
        return True

    def destroy(self) -> None:
        """Stop the server and remove its data directory and the state directory's contents."""
        self.stop()
        data_dir = self.data_dir
        if data_dir.exists():
            shutil.rmtree(data_dir)
        for leftover in (self.state_file, self.state_dir / DATA_SUBDIR):
            if leftover.is_dir():
                shutil.rmtree(leftover)
            elif leftover.exists():
                leftover.unlink()
        with contextlib.suppress(OSError):
            self.state_dir.rmdir()


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(pid):
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
            return True
        time.sleep(0.05)
    return not process_alive(pid)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 8192))
            return "\n".join(fh.read().decode("utf-8", "replace").splitlines()[-lines:])
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return ""
        return f"(cannot read {path}: {exc.strerror})"
