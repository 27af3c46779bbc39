"""The embedded PostgreSQL server behind the local target.

:class:`EmbeddedPostgres` owns one data directory: it runs ``initdb`` the first time (UTF8, C
collation, as DSQL has), starts the server on 127.0.0.1 on a free or given port, waits until it
accepts connections, and stops it. It reuses an existing data directory, recovers from the stale
``postmaster.pid`` a crash leaves behind, and when run as root starts the server as an
unprivileged account (see :mod:`.accounts`).

Every instance has a database ``postgres`` and a login role ``admin`` (DSQL's admin role name,
not a PostgreSQL superuser) that owns it, so local URLs look like DSQL's. The bootstrap superuser
``postgres`` is kept for the emulator's own objects; users connect as ``admin``.

Nothing is trusted (see docs/local.md, "Security model"): ``initdb`` gives the superuser a random
password, kept with admin's in ``<state dir>/passwords.json`` (mode 0600); over TCP every role
needs its password; the Unix socket lives in a private 0700 directory of the instance (a short
one under the temporary directory, recorded in the state, when the instance's path is too long
for a socket address), where the superuser needs its password too and every other role is let
in by ``peer`` authentication for the OS user that runs the emulator only (pg_ident.conf): that
is how the emulator connects users who have no password, such as roles made with
``CREATE ROLE ... LOGIN``.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import hmac
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from ..errors import ConfigError, LocalServerError
from .accounts import Account, server_account
from .binaries import (
    MIN_MAJOR,
    PgBinaries,
    _pgserver_bindir,
    allow_old_from_env,
    find_binaries,
    too_old_error,
)

log = logging.getLogger(__name__)

STATE_FILE = "instance.json"
DATA_SUBDIR = "pgdata"
LOG_FILE = "server.log"
CONF_FILE = "dsql_migrate.conf"
PASSWORDS_FILE = "passwords.json"
SOCKET_SUBDIR = "run"
IDENT_MAP = "dsql_emulator"
HOST = "127.0.0.1"
DATABASE = "postgres"
ADMIN_ROLE = "admin"
SUPERUSER = "postgres"
#: the longest Unix socket directory that leaves room for ``/.s.PGSQL.65535`` in a socket
#: address (107 bytes on Linux, 103 on macOS)
MAX_SOCKET_DIR = 103 - len("/.s.PGSQL.65535")
SHORT_SOCKET_PREFIX = "dsql-migrate-"

#: settings written on every start; ``port`` and ``unix_socket_directories`` are added there
SERVER_SETTINGS: dict[str, str] = {
    "listen_addresses": f"'{HOST}'",
    "unix_socket_permissions": "0700",
    "password_encryption": "'scram-sha-256'",
    "max_connections": "200",
    "synchronous_commit": "off",  # a local development target: speed over durability
    "timezone": "'UTC'",
    "log_timezone": "'UTC'",
    "lc_messages": "'C'",
    # change data capture (``local start --cdc``, :mod:`.cdc`) decodes the WAL with pgoutput;
    # set always, because wal_level only changes with a restart of the server
    "wal_level": "logical",
    # logical decoding reads only flushed WAL: with synchronous_commit off, a commit reaches the
    # CDC stream after the WAL writer's next flush, so flush often
    "wal_writer_delay": "'20ms'",
}


def is_port_free(port: int, host: str = HOST) -> bool:
    """Whether a server could listen on ``port``. With ``SO_REUSEADDR``, as the emulator's proxy
    and PostgreSQL listen: a port whose last connections are in TIME_WAIT (a target that was
    just stopped) is free to them, so a restart keeps its URL."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def pick_free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def choose_port(requested: int | None, stored: int | None) -> int:
    """The port to listen on: the one asked for (it must be free), else the one used last time
    if it is still free (so URLs stay stable across restarts), else any free one."""
    if requested is not None:
        if not is_port_free(requested):
            raise ConfigError(
                f"port {requested} on {HOST} is already in use",
                hint="choose another with --port, or leave --port out to pick a free one",
            )
        return requested
    if stored is not None and is_port_free(stored):
        return stored
    return pick_free_port()


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
    bin_dir: str | None = None

    def url(self, role: str = ADMIN_ROLE) -> str | None:
        """The raw URL without its password (for display; the password is in the state
        directory's ``passwords.json``)."""
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
            "postgres_bin_dir": self.bin_dir,
        }


def make_url(port: int, role: str = ADMIN_ROLE, host: str = HOST,
             password: str | None = None) -> str:
    secret = f":{quote(password, safe='')}" if password else ""
    return f"postgresql://{role}{secret}@{host}:{port}/{DATABASE}"


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802/7677), so that
    the password itself never appears in a statement or a server log."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def write_private(path: Path, text: str) -> None:
    """Write ``path`` readable by its owner only (created 0600, never wider for a moment)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    tmp.replace(path)


def load_passwords(state_dir: Path) -> dict[str, str]:
    """The roles' passwords kept in ``<state dir>/passwords.json`` ({} when there is none)."""
    try:
        raw = json.loads((state_dir / PASSWORDS_FILE).read_text())
    except FileNotFoundError:
        return {}
    except PermissionError:
        raise LocalServerError(
            f"cannot read {state_dir / PASSWORDS_FILE}: permission denied",
            hint="run as the user that started the local target (or as root)",
        ) from None
    except (OSError, ValueError) as exc:
        raise LocalServerError(
            f"{state_dir / PASSWORDS_FILE}: unreadable ({exc})",
            hint="remove it: the next 'dsql-migrate local start' sets new passwords",
        ) from None
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


@dataclass
class _State:
    """The launcher's memory, kept in ``<state dir>/instance.json``."""

    data_dir: str | None = None
    port: int | None = None
    bin_dir: str | None = None
    account: str | None = None
    bootstrapped: bool = False
    #: the private directory of the server's Unix socket, when it is not ``<state dir>/run``
    socket_dir: str | None = None
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
        known = {k: raw.pop(k) for k in ("data_dir", "port", "bin_dir", "account", "bootstrapped",
                                         "socket_dir") if k in raw}
        return cls(**known, extra=raw)

    def save(self, path: Path) -> None:
        data = {
            "data_dir": self.data_dir,
            "port": self.port,
            "bin_dir": self.bin_dir,
            "account": self.account,
            "bootstrapped": self.bootstrapped,
            "socket_dir": self.socket_dir,
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
        allow_old: bool | None = None,
    ) -> None:
        self.state_dir = Path(state_dir).absolute()
        self.requested_port = port
        self._binaries = binaries
        self._account = account
        #: run a server older than PostgreSQL 16 (None: ``$DSQL_MIGRATE_ALLOW_OLD_POSTGRES``)
        self.allow_old = allow_old_from_env() if allow_old is None else allow_old

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

    @property
    def passwords_file(self) -> Path:
        return self.state_dir / PASSWORDS_FILE

    def passwords(self) -> dict[str, str]:
        return load_passwords(self.state_dir)

    def _default_socket_dir(self, data_dir: Path) -> Path:
        """Inside the instance: ``<state dir>/run``, or beside a data directory kept elsewhere."""
        if data_dir.parent == self.state_dir:
            return self.state_dir / SOCKET_SUBDIR
        return data_dir.with_name(data_dir.name + "." + SOCKET_SUBDIR)

    @property
    def socket_dir(self) -> Path:
        """The private directory of the server's Unix socket."""
        state = self._state()
        if state.socket_dir:
            return Path(state.socket_dir)
        return self._default_socket_dir(self.data_dir)

    def socket_path(self, port: int) -> Path:
        return self.socket_dir / f".s.PGSQL.{port}"

    def _choose_data_dir(self) -> Path:
        """Inside the state directory, unless the server account cannot reach it (root only)."""
        inside = self.state_dir / DATA_SUBDIR
        if not self.account.is_switch or self.account.can_reach(self.state_dir):
            return inside
        digest = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:16]
        home = self._account_home()
        log.info(
            "%s cannot reach %s; keeping the data directory in %s",
            self.account.name, self.state_dir, home / digest,
        )
        return home / digest

    def _account_home(self) -> Path:
        """A private directory of the server account (root only), for what it cannot reach."""
        home = Path("/var/tmp") / f"dsql-migrate-{self.account.name}"
        if not home.exists():
            home.mkdir(mode=0o700)
            self.account.give(home)
        return home

    def _reachable_bundled_copy(self, binaries: PgBinaries) -> PgBinaries | None:
        """When root runs us from a virtual environment the server account cannot reach (a
        clone under ``/root``), a copy of the ``embedded-pg`` build (``pgserver``) where it can:
        its programs find their libraries relative to themselves, so the copy keeps the layout.
        None when the binaries are not that build."""
        bundled = _pgserver_bindir()
        if bundled is None or binaries.bin_dir.resolve() != bundled.resolve():
            return None
        package = bundled.parent.parent  # .../site-packages/pgserver
        libs = package.parent / "pgserver.libs"
        stamp = hashlib.sha256(
            f"{package.resolve()}:{(bundled / 'postgres').stat().st_mtime_ns}".encode()
        ).hexdigest()[:12]
        home = self._account_home()
        copy = home / f"pgserver-{binaries.major}-{stamp}"
        copy_bin = copy / "pgserver" / "pginstall" / "bin"
        if not (copy_bin / "postgres").exists():
            log.info("%s cannot reach %s; copying the server programs to %s",
                     self.account.name, bundled, copy)
            scratch = home / f".{copy.name}.copying"
            shutil.rmtree(scratch, ignore_errors=True)
            shutil.copytree(package / "pginstall", scratch / "pgserver" / "pginstall",
                            symlinks=True)
            if libs.is_dir():
                shutil.copytree(libs, scratch / "pgserver.libs", symlinks=True)
            for directory, _, files in os.walk(scratch):
                self.account.give(Path(directory))
                for name in files:
                    if not (Path(directory) / name).is_symlink():
                        self.account.give(Path(directory) / name)
            shutil.rmtree(copy, ignore_errors=True)
            scratch.rename(copy)
        return PgBinaries(copy_bin, binaries.major)

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
            log_file=self.log_file, major=self._major(), bin_dir=state.bin_dir,
        )

    def url(self, role: str = ADMIN_ROLE) -> str:
        """The URL of the running server with the role's password (``admin``, or ``postgres``,
        the bootstrap superuser), or an error saying how to start it."""
        status = self.status()
        if not status.running or status.port is None:
            raise LocalServerError(
                f"the local server in {self.state_dir} is not running",
                hint="start it with 'dsql-migrate local start'",
            )
        password = self.passwords().get(role)
        if password is None:
            raise LocalServerError(
                f"no password is recorded for role {role!r} in {self.passwords_file}",
                hint="restart the local target ('dsql-migrate local stop', then 'start') to set "
                "new passwords",
            )
        return make_url(status.port, role, password=password)

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
        self._remove_stale_pid(data_dir, state)
        binaries = self._resolve_binaries(state, data_dir)
        passwords = self.passwords()
        new_passwords = not {SUPERUSER, ADMIN_ROLE} <= passwords.keys()
        if new_passwords:
            passwords = {SUPERUSER: secrets.token_hex(24), ADMIN_ROLE: secrets.token_hex(24)}
        if not (data_dir / "PG_VERSION").exists():
            self._save_passwords(passwords)
            self._initdb(binaries, data_dir, passwords[SUPERUSER])
            state.bootstrapped = False
        elif new_passwords:
            # an instance made before passwords (or whose file was lost): set new ones
            self._set_superuser_password(binaries, data_dir, passwords[SUPERUSER])
            self._save_passwords(passwords)
        state.socket_dir = self._prepare_socket_dir(data_dir, state.socket_dir)
        port = choose_port(self.requested_port, state.port)
        self._write_conf(data_dir, port, Path(state.socket_dir or
                                              self._default_socket_dir(data_dir)))
        self._write_auth(data_dir, binaries.major)
        state.port, state.bin_dir, state.account = port, str(binaries.bin_dir), self.account.name
        state.save(self.state_file)
        self._pg_ctl_start(binaries, data_dir, timeout)
        if not state.bootstrapped or new_passwords:
            self._bootstrap(port, passwords)
            state.bootstrapped = True
            state.save(self.state_file)
        return self.status()

    def _save_passwords(self, passwords: dict[str, str]) -> None:
        write_private(self.passwords_file, json.dumps(passwords, indent=2) + "\n")

    def _prepare_socket_dir(self, data_dir: Path, recorded: str | None) -> str | None:
        """Make the socket's private directory (0700, the server account's); returns the
        directory to record in the state, None for the default one.

        The default ``<state dir>/run`` when the socket address fits in it; otherwise a
        short one made with :func:`tempfile.mkdtemp` (unguessable, 0700) under the temporary
        directory and recorded, reused while it is still ours.
        """
        default = self._default_socket_dir(data_dir)
        if len(str(default)) <= MAX_SOCKET_DIR:
            self._own_private_dir(default)
            return None
        if recorded and self._is_private_dir(Path(recorded)):
            return recorded
        base = Path(tempfile.gettempdir())
        if len(str(base)) > MAX_SOCKET_DIR - len(SHORT_SOCKET_PREFIX) - 10:
            base = Path("/tmp")
        short = Path(tempfile.mkdtemp(prefix=SHORT_SOCKET_PREFIX, dir=base))
        self._own_private_dir(short)
        log.info("the instance path is too long for a socket address: the server's socket is "
                 "in %s", short)
        return str(short)

    def _own_private_dir(self, path: Path) -> None:
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            path.unlink()
        path.mkdir(mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)
        self.account.give(path)

    def _is_private_dir(self, path: Path) -> bool:
        """Whether ``path`` is still the directory we made (after a reboot anybody could have
        made one of that name in the temporary directory)."""
        try:
            info = path.lstat()
        except OSError:
            return False
        return (stat.S_ISDIR(info.st_mode) and info.st_uid == self.account.uid
                and info.st_mode & 0o077 == 0)

    def _resolve_binaries(self, state: _State, data_dir: Path) -> PgBinaries:
        wanted = self._major_of(data_dir)
        if wanted is not None and wanted < MIN_MAJOR and not self.allow_old:
            raise too_old_error(
                f"the data directory {data_dir} was made by PostgreSQL {wanted}; "
                "'dsql-migrate local destroy' and start again to make it anew (its data is lost)")
        if self._binaries is not None:
            binaries = self._binaries
        else:
            binaries = find_binaries(allow_old=self.allow_old or wanted is not None)
            if wanted is not None and binaries.major != wanted and state.bin_dir:
                recorded = Path(state.bin_dir)
                if (recorded / "postgres").exists():
                    binaries = PgBinaries(recorded, wanted)
        if self.account.is_switch and not self.account.can_reach(binaries.bin_dir / "postgres"):
            binaries = self._reachable_bundled_copy(binaries) or binaries
        if self.account.is_switch and not self.account.can_reach(binaries.bin_dir / "postgres"):
            raise LocalServerError(
                f"the account {self.account.name!r} that runs the server (as root cannot) may "
                f"not execute {binaries.bin_dir / 'postgres'}",
                hint="install PostgreSQL system-wide, or point DSQL_MIGRATE_PG_BIN at binaries "
                "that account can read",
            )
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

    def _remove_stale_pid(self, data_dir: Path, state: _State) -> None:
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
        if found[1] is not None:
            socket_dir = Path(state.socket_dir) if state.socket_dir else \
                self._default_socket_dir(data_dir)
            _remove_stale_socket_lock(socket_dir, found[1], pid)

    def _run_as_server(self, args: list[str], timeout: float,
                       stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        if self.account.is_switch:
            env["HOME"] = "/"
        try:
            return subprocess.run(  # type: ignore[call-overload, no-any-return]
                args, capture_output=True, text=True, timeout=timeout, cwd="/",
                env=env, check=False, input=stdin, **self.account.popen_kwargs(),
            )
        except subprocess.TimeoutExpired:
            raise LocalServerError(
                f"{Path(args[0]).name} did not finish within {timeout:.0f} s",
                hint=f"see {self.log_file}",
            ) from None

    def _initdb(self, binaries: PgBinaries, data_dir: Path, password: str) -> None:
        # initdb into a scratch directory and rename it, so a crash never leaves half a cluster
        scratch = data_dir.with_name(data_dir.name + ".initdb")
        if scratch.exists():
            shutil.rmtree(scratch)
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        scratch.mkdir(mode=0o700)
        self.account.give(scratch)
        log.info("initialising a PostgreSQL %s data directory in %s", binaries.major, data_dir)
        # the superuser's password, for initdb (running as the server account) to read
        fd, pwfile = tempfile.mkstemp(prefix=".pw-", dir=data_dir.parent)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(password + "\n")
            self.account.give(Path(pwfile))
            result = self._run_as_server(
                [
                    binaries.path("initdb"), "-D", str(scratch), "-U", SUPERUSER,
                    "--encoding=UTF8", "--locale=C", "--auth=scram-sha-256",
                    f"--pwfile={pwfile}", "--no-instructions",
                ],
                timeout=300,
            )
        finally:
            Path(pwfile).unlink(missing_ok=True)
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

    def _write_conf(self, data_dir: Path, port: int, socket_dir: Path) -> None:
        settings = {**SERVER_SETTINGS, "port": str(port),
                    "unix_socket_directories": f"'{socket_dir}'"}
        text = "".join(f"{key} = {value}\n" for key, value in settings.items())
        path = data_dir / CONF_FILE
        path.write_text(text)
        self.account.give(path)

    def _write_auth(self, data_dir: Path, major: int) -> None:
        """pg_hba.conf and pg_ident.conf, rewritten on every start (there is no ``trust``).

        The superuser needs its password everywhere; over TCP every role needs its password;
        on the private Unix socket the OS user that runs the emulator (us) may connect as any
        other role, which is how the emulator lets in users who have no password.
        """
        me = _current_os_user()
        hba = (
            "# managed by dsql-migrate, rewritten at every start (see docs/local.md)\n"
            f"local all {SUPERUSER} scram-sha-256\n"
            f"local all all peer map={IDENT_MAP}\n"
            f"host all all {HOST}/32 scram-sha-256\n"
        )
        # PostgreSQL 16 maps to every role with "all"; 15 only to the roles named
        roles = "all" if major >= MIN_MAJOR else ADMIN_ROLE
        ident = (
            "# managed by dsql-migrate, rewritten at every start (see docs/local.md)\n"
            f"{IDENT_MAP} {me} {roles}\n"
        )
        for name, text in (("pg_hba.conf", hba), ("pg_ident.conf", ident)):
            path = data_dir / name
            path.write_text(text)
            os.chmod(path, 0o600)
            self.account.give(path)

    def _set_superuser_password(self, binaries: PgBinaries, data_dir: Path,
                                password: str) -> None:
        """Set the superuser's password in single-user mode (the server is stopped)."""
        statement = f"ALTER ROLE {SUPERUSER} PASSWORD '{scram_verifier(password)}'\n"
        result = self._run_as_server(
            [binaries.path("postgres"), "--single", "-D", str(data_dir), DATABASE],
            timeout=120, stdin=statement,
        )
        if result.returncode != 0 or "ERROR" in result.stdout + result.stderr:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise LocalServerError(
                "could not set the superuser's password: "
                + (detail[-1] if detail else f"exit {result.returncode}"),
                hint=f"see {data_dir / LOG_FILE}",
            )

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

    def _bootstrap(self, port: int, passwords: dict[str, str]) -> None:
        """Create the ``admin`` role (not a superuser, as on DSQL), set its password and give it
        the ``postgres`` database."""
        conninfo = make_url(port, SUPERUSER, password=passwords[SUPERUSER])
        try:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
                conn.execute(
                    "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'admin') "
                    "THEN CREATE ROLE admin LOGIN CREATEDB CREATEROLE; END IF; END $$"
                )
                conn.execute(sql.SQL(
                    "ALTER ROLE admin NOSUPERUSER NOREPLICATION NOBYPASSRLS LOGIN CREATEDB "
                    "CREATEROLE PASSWORD {}").format(
                        sql.Literal(scram_verifier(passwords[ADMIN_ROLE]))))
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
        socket_dir = self.socket_dir
        if data_dir.exists():
            shutil.rmtree(data_dir)
        if socket_dir.is_dir() and not socket_dir.is_symlink():
            shutil.rmtree(socket_dir)
        for leftover in (self.state_file, self.state_dir / DATA_SUBDIR, self.passwords_file,
                         self.state_dir / SOCKET_SUBDIR):
            if leftover.is_dir():
                shutil.rmtree(leftover)
            elif leftover.exists():
                leftover.unlink()
        with contextlib.suppress(OSError):
            self.state_dir.rmdir()


def _current_os_user() -> str:
    return Account.current().name


def _remove_stale_socket_lock(socket_dir: Path, port: int, dead_pid: int) -> None:
    """Remove the Unix-socket lock a killed server left in its socket directory.

    PostgreSQL judges the lock by ``kill(pid, 0)``, which a dead server's zombie still passes,
    so it would refuse to start; we know better (:func:`process_alive`) and only remove a lock
    that names the dead server.
    """
    lock = socket_dir / f".s.PGSQL.{port}.lock"
    try:
        owner = int(lock.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return
    if owner == dead_pid and not process_alive(owner):
        log.warning("removing the stale socket lock %s (pid %s)", lock, owner)
        lock.unlink(missing_ok=True)
        (socket_dir / f".s.PGSQL.{port}").unlink(missing_ok=True)


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
