"""The local target: what ``dsql-migrate local ...`` manages and what ``local`` URLs resolve to.

A :class:`LocalInstance` is the embedded PostgreSQL server (:mod:`.postgres`) and, in front of
it, the emulator (:mod:`.daemon`: the DSQL-rules proxy of :mod:`.proxy` and the job runner of
:mod:`.jobs`), a background process whose pid and port are kept in the state directory. The URL
that :meth:`LocalInstance.start` returns is the emulator's, the contract users connect to (as
``admin`` or a role made with ``CREATE ROLE ... LOGIN``, never as the server's superuser);
:meth:`LocalInstance.raw_url` is the direct PostgreSQL URL of ``admin`` with its password, for
tools that need plain PostgreSQL (``admin`` may create databases), and
:meth:`LocalInstance.superuser_url` the bootstrap superuser's, for what only a superuser may do.

The profile (``current`` or ``classic``) is stored with the instance; fault injection can be
changed while it runs (:meth:`LocalInstance.set_faults`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from ..errors import ConfigError, LocalServerError
from ..profiles import get_profile
from . import server_sql
from .iam import IamCredentials, ensure_certificate
from .postgres import (
    HOST,
    SUPERUSER,
    EmbeddedPostgres,
    ServerStatus,
    choose_port,
    process_alive,
)
from .settings import (
    APPLIED_FILE,
    CDC_FILE,
    LOG_FILE,
    PID_FILE,
    SETTINGS_FILE,
    CdcSettings,
    EmulatorSettings,
    Faults,
    public_url,
    read_cdc_info,
    read_pid_file,
)

DEFAULT_DIR = Path(".dsql-migrate") / "local"


@dataclass(frozen=True)
class InstanceStatus:
    running: bool
    url: str | None
    raw_url: str | None
    server: ServerStatus
    emulator_pid: int | None = None
    profile: str = "current"
    #: how to reach the CDC stream (the ``cdc_*`` keys of :mod:`.cdc`), None without CDC
    cdc: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.server.as_dict(),
            "running": self.running,
            "url": self.url,
            "raw_url": self.raw_url,
            "emulator_pid": self.emulator_pid,
            "profile": self.profile,
            "cdc": self.cdc is not None,
            **(self.cdc or {}),
        }


def _accepts(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


class LocalInstance:
    """The local DSQL target kept in ``directory``.

    ``profile``, ``faults``, ``transaction_age`` (seconds; DSQL's limit is 300) and ``limits``
    (overrides of the profile's :class:`~dsql_migrate.profiles.Limits`, e.g. from the
    ``[limits]`` configuration table) apply when this call starts the emulator; ``None`` keeps
    what is stored with the instance.
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        port: int | None = None,
        profile: str | None = None,
        faults: Faults | None = None,
        transaction_age: float | None = None,
        limits: Mapping[str, int] | None = None,
        iam: bool | None = None,
        allow_old_postgres: bool | None = None,
        cdc: CdcSettings | None = None,
    ) -> None:
        self.directory = Path(directory) if directory is not None else DEFAULT_DIR
        self.postgres = EmbeddedPostgres(self.directory, allow_old=allow_old_postgres)
        self.requested_port = port
        self.requested_profile = get_profile(profile).name if profile else None
        self.requested_faults = faults
        self.requested_transaction_age = transaction_age
        if limits:
            get_profile(self.requested_profile or "current").with_limits(limits)  # validate
        self.requested_limits = dict(limits) if limits else None
        self.requested_iam = iam
        self.requested_cdc = cdc

    @property
    def state_dir(self) -> Path:
        return self.postgres.state_dir

    # -- the emulator process -------------------------------------------------------------

    def _emulator(self) -> tuple[int, int] | None:
        """(pid, port) of the running emulator, or None."""
        found = read_pid_file(self.state_dir)
        if found is None or not process_alive(found[0]):
            return None
        return found

    def settings(self) -> EmulatorSettings:
        return EmulatorSettings.load(self.state_dir)

    def start(self, timeout: float = 60.0) -> str:
        """Start (or find running) and return the URL to connect to."""
        url = self._prepare(timeout)
        if url is None:
            self._spawn(timeout)
            url = self.url()
        return url

    def serve(self, timeout: float = 60.0,
              on_ready: Callable[[str], None] | None = None) -> None:
        """Run the emulator in this process until SIGINT/SIGTERM, then stop the server.

        ``on_ready`` gets the URL once it accepts connections.
        """
        if self._prepare(timeout) is not None:
            raise ConfigError(
                f"the local target in {self.directory} already runs in the background",
                hint="stop it first ('dsql-migrate local stop')",
            )
        from .daemon import serve  # the proxy and the job runner: only where they run

        try:
            serve(self.state_dir, on_ready)
        finally:
            self.postgres.stop()

    def _prepare(self, timeout: float) -> str | None:
        """Start the server and save the emulator settings; the URL if the emulator runs."""
        self.postgres.start(timeout=timeout)
        backend_port = self.postgres.status().port
        assert backend_port is not None
        self._install(backend_port)
        settings = self.settings()
        running = self._emulator()
        if running is not None:
            if self.requested_profile not in (None, settings.profile):
                raise ConfigError(
                    f"the local target already runs with profile {settings.profile!r}",
                    hint="stop it first ('dsql-migrate local stop') to change the profile",
                )
            if self.requested_port not in (None, running[1]):
                raise ConfigError(
                    f"the local target is already running on port {running[1]}, "
                    f"not {self.requested_port}",
                    hint="stop it first to change its port",
                )
            if self.requested_iam not in (None, settings.iam):
                raise ConfigError(
                    "the local target already runs "
                    + ("with" if settings.iam else "without") + " --iam",
                    hint="stop it first ('dsql-migrate local stop') to change that",
                )
            if self.requested_cdc not in (None, settings.cdc or CdcSettings()):
                raise ConfigError(
                    "the local target already runs with other CDC settings ("
                    + ("with" if settings.cdc and settings.cdc.enabled else "without")
                    + " --cdc)",
                    hint="stop it first ('dsql-migrate local stop') to change them",
                )
            if running[1] and _accepts(running[1]) and settings.backend_port == backend_port \
                    and settings.backend_socket == str(self.postgres.socket_path(backend_port)):
                # faults and the age limit change at run time: apply what was asked, rather
                # than return a target that silently runs without it
                if (self.requested_faults not in (None, settings.faults)
                        or self.requested_transaction_age not in (None,
                                                                  settings.transaction_age)):
                    self.set_faults(self.requested_faults or settings.faults,
                                    transaction_age=self.requested_transaction_age)
                return public_url(self.state_dir, running[1], settings)
            self._stop_emulator()
        settings.profile = self.requested_profile or settings.profile
        if self.requested_faults is not None:
            settings.faults = self.requested_faults
        if self.requested_transaction_age is not None:
            settings.transaction_age = self.requested_transaction_age
        if self.requested_limits is not None:
            settings.limits = self.requested_limits
        if self.requested_iam is not None:
            settings.iam = self.requested_iam
        if self.requested_cdc is not None:
            settings.cdc = self.requested_cdc
        if settings.cdc is not None and settings.cdc.enabled \
                and importlib.util.find_spec("moto") is None:
            raise ConfigError(
                "--cdc needs moto's server, the local Kinesis, which is not installed",
                hint="pip install 'dsql-migrate[cdc]'",
            )
        if settings.iam:
            # the credentials of this environment sign the tokens the emulator accepts
            credentials = IamCredentials.from_environment()
            credentials.save(self.state_dir)
            ensure_certificate(self.state_dir, credentials.region)
        settings.backend_port = backend_port
        settings.backend_socket = str(self.postgres.socket_path(backend_port))
        settings.port = choose_port(self.requested_port, settings.port)
        settings.save(self.state_dir)
        return None

    def _spawn(self, timeout: float) -> None:
        (self.state_dir / PID_FILE).unlink(missing_ok=True)
        log_path = self.state_dir / LOG_FILE
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "dsql_migrate.local.daemon", str(self.state_dir)],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                start_new_session=True, close_fds=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = read_pid_file(self.state_dir)
            if found is not None and found[0] == process.pid and _accepts(found[1]):
                return
            if process.poll() is not None:
                break
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
        raise LocalServerError(
            "the emulator did not start: " + (" | ".join(tail) or "no output"),
            hint=f"the full log is in {log_path}",
        )

    def _install(self, backend_port: int) -> None:
        """Install or upgrade the emulator's objects in the database (as the superuser)."""
        try:
            with psycopg.connect(self.postgres.url(SUPERUSER), autocommit=True,
                                 connect_timeout=10) as conn:
                row = conn.execute(
                    "SELECT to_regclass('sys._emulator') IS NOT NULL").fetchone()
                if row and row[0]:
                    found = conn.execute("SELECT max(version) FROM sys._emulator").fetchone()
                    if found and found[0] == server_sql.VERSION:
                        return
                with conn.transaction():
                    conn.execute(server_sql.INSTALL_SQL)
        except psycopg.Error as exc:
            raise LocalServerError(f"could not install the emulator objects: {exc}") from None

    def _stop_emulator(self, timeout: float = 10.0) -> bool:
        found = self._emulator()
        if found is None:
            (self.state_dir / PID_FILE).unlink(missing_ok=True)
            return False
        pid = found[0]
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        except PermissionError:
            raise LocalServerError(
                f"not allowed to stop the emulator (pid {pid}), which another user started",
                hint="run 'dsql-migrate local stop' as that user or as root",
            ) from None
        deadline = time.monotonic() + timeout
        while process_alive(pid) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)
        if process_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        (self.state_dir / PID_FILE).unlink(missing_ok=True)
        return True

    def set_faults(self, faults: Faults | None = None, *, transaction_age: float | None = None,
                   timeout: float = 10.0) -> None:
        """Change fault injection (and the transaction age limit) of the running emulator.

        Returns once the emulator applied the change; ``Faults()`` switches faults off.
        """
        settings = self.settings()
        settings.faults = faults or Faults()
        if transaction_age is not None:
            settings.transaction_age = transaction_age
        settings.generation += 1
        settings.save(self.state_dir)
        if self._emulator() is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                if int((self.state_dir / APPLIED_FILE).read_text()) == settings.generation:
                    return
            time.sleep(0.02)
        raise LocalServerError("the emulator did not apply the new fault settings")

    # -- the public verbs -----------------------------------------------------------------

    def stop(self) -> bool:
        emulator = self._stop_emulator()
        server = self.postgres.stop()
        return emulator or server

    def destroy(self) -> None:
        self._stop_emulator()
        for name in (SETTINGS_FILE, PID_FILE, LOG_FILE, APPLIED_FILE, SETTINGS_FILE + ".tmp",
                     CDC_FILE, "emulator.cdc.log"):
            (self.state_dir / name).unlink(missing_ok=True)
        self.postgres.destroy()

    def url(self) -> str:
        found = self._emulator()
        if found is None:
            raise LocalServerError(
                f"the local target in {self.directory} is not running",
                hint="start it with 'dsql-migrate local start'",
            )
        return public_url(self.state_dir, found[1], self.settings())

    def cdc_info(self) -> dict[str, Any]:
        """How to reach the running emulator's CDC stream: the ``cdc_*`` keys of
        :mod:`dsql_migrate.local.cdc` (endpoint, stream ARN, region, dummy credentials, ...)."""
        self.url()  # says so if the target is not running
        info = read_cdc_info(self.state_dir)
        if info is None:
            raise LocalServerError(
                f"the local target in {self.directory} runs without CDC",
                hint="stop it and start it with 'dsql-migrate local start --cdc'",
            )
        return info

    def raw_url(self) -> str:
        """The running server's own URL, no DSQL rules: ``admin`` with its password (a
        secret: do not log it). ``admin`` owns the database and may create databases."""
        return self.postgres.url()

    def superuser_url(self) -> str:
        """The running server's URL for its bootstrap superuser ``postgres``, with its password:
        for what only a superuser may do (the emulator's own objects, ``DROP DATABASE ... WITH
        (FORCE)`` of other roles' sessions). Never reachable through the emulator."""
        return self.postgres.url(SUPERUSER)

    def status(self) -> InstanceStatus:
        server = self.postgres.status()
        emulator = self._emulator()
        running = server.running and emulator is not None
        return InstanceStatus(
            running=running,
            url=public_url(self.state_dir, emulator[1], self.settings())
            if running and emulator else None,
            raw_url=server.url() if server.running else None,
            server=server,
            emulator_pid=emulator[0] if emulator else None,
            profile=self.settings().profile,
            cdc=read_cdc_info(self.state_dir) if running else None,
        )
