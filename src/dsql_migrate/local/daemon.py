"""The emulator process: the proxy and the job runner, detached from the CLI.

``dsql-migrate local start`` runs ``python -m dsql_migrate.local.daemon <state dir>`` in a new
session; ``local serve`` calls :func:`serve` in the foreground. The settings (profile, limits,
fault injection) are read from ``<state dir>/emulator.json``, written by
:class:`~dsql_migrate.local.instance.LocalInstance`; the process records its pid and port in
``<state dir>/emulator.pid`` and re-reads the settings when they change, so fault injection can
be switched on and off while it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from psycopg.conninfo import make_conninfo

from ..profiles import get_profile
from .iam import CERT_FILE, IamCredentials, ensure_certificate, server_tls_context
from .jobs import JobRunner
from .postgres import DATABASE, HOST, SUPERUSER, load_passwords, make_url
from .proxy import Faults, Proxy, ProxySettings

log = logging.getLogger(__name__)

SETTINGS_FILE = "emulator.json"
PID_FILE = "emulator.pid"
LOG_FILE = "emulator.log"
APPLIED_FILE = "emulator.applied"


@dataclass
class EmulatorSettings:
    """What ``emulator.json`` holds."""

    profile: str = "current"
    port: int | None = None
    backend_port: int | None = None
    #: the server's Unix socket, in the instance's private socket directory
    backend_socket: str | None = None
    faults: Faults | None = None
    transaction_age: float | None = None
    #: overrides of the profile's limits (see ``Profile.with_limits``)
    limits: dict[str, int] | None = None
    #: TLS and IAM auth tokens, as a cluster endpoint (``local start --iam``)
    iam: bool = False
    generation: int = 0

    @classmethod
    def load(cls, state_dir: Path) -> EmulatorSettings:
        try:
            raw: dict[str, Any] = json.loads((state_dir / SETTINGS_FILE).read_text())
        except (OSError, ValueError):
            return cls()
        return cls(
            profile=str(raw.get("profile", "current")),
            port=raw.get("port"),
            backend_port=raw.get("backend_port"),
            backend_socket=raw.get("backend_socket"),
            faults=Faults.from_dict(raw.get("faults")),
            transaction_age=raw.get("transaction_age"),
            limits=raw.get("limits") or None,
            iam=bool(raw.get("iam", False)),
            generation=int(raw.get("generation", 0)),
        )

    def save(self, state_dir: Path) -> None:
        data = {
            "profile": self.profile,
            "port": self.port,
            "backend_port": self.backend_port,
            "backend_socket": self.backend_socket,
            "faults": (self.faults or Faults()).as_dict(),
            "transaction_age": self.transaction_age,
            "limits": self.limits,
            "iam": self.iam,
            "generation": self.generation,
        }
        tmp = state_dir / (SETTINGS_FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(state_dir / SETTINGS_FILE)


def public_url(state_dir: Path, port: int, settings: EmulatorSettings) -> str:
    """The URL clients use: postgresql://, or with ``--iam`` a dsql:// URL that trusts the
    emulator's own certificate and signs tokens for its region."""
    if not settings.iam:
        return make_url(port)
    region = IamCredentials.load(state_dir).region
    cert = quote(str((state_dir / CERT_FILE).absolute()), safe="/")
    return f"dsql://admin@{HOST}:{port}?region={region}&sslrootcert={cert}"


def read_pid_file(state_dir: Path) -> tuple[int, int] | None:
    try:
        pid, port = (state_dir / PID_FILE).read_text().split()
        return int(pid), int(port)
    except (OSError, ValueError):
        return None


async def run(state_dir: Path, stop: asyncio.Event,
              on_ready: Callable[[str], None] | None = None) -> None:
    settings = EmulatorSettings.load(state_dir)
    if settings.backend_port is None or settings.backend_socket is None:
        raise SystemExit("no backend recorded: start with 'dsql-migrate local start'")
    profile = get_profile(settings.profile)
    if settings.limits:
        profile = profile.with_limits(settings.limits)
    proxy_settings = ProxySettings(
        profile=profile, backend_host=HOST, backend_port=settings.backend_port,
        backend_socket=settings.backend_socket,
        faults=settings.faults or Faults(), transaction_age=settings.transaction_age,
        refused_roles=frozenset({SUPERUSER}),
    )
    if settings.iam:
        proxy_settings.iam = IamCredentials.load(state_dir)
        proxy_settings.tls = server_tls_context(
            *ensure_certificate(state_dir, proxy_settings.iam.region))
    # the job runner is the superuser (it builds indexes on any table), with its password
    superuser_password = load_passwords(state_dir).get(SUPERUSER)
    socket_dir = str(Path(settings.backend_socket).parent)
    backend_port = settings.backend_port

    def as_role(role: str) -> str:
        """A job's connection: its submitter, let in on the private socket by peer auth."""
        return make_conninfo(host=socket_dir, port=backend_port, user=role, dbname=DATABASE)

    jobs = JobRunner(make_url(settings.backend_port, SUPERUSER, password=superuser_password),
                     role_conninfo=as_role)

    # called from the client's proxy thread before its DROP INDEX is forwarded
    proxy = Proxy(proxy_settings, on_dropped_indexes=jobs.cancel_builds)
    port = proxy.start(HOST, settings.port or 0)
    jobs.start()
    (state_dir / PID_FILE).write_text(f"{os.getpid()} {port}\n")
    (state_dir / APPLIED_FILE).write_text(f"{settings.generation}\n")
    if on_ready is not None:
        on_ready(public_url(state_dir, port, settings))
    log.info("emulator (profile %s) listening on %s:%s", profile.name, HOST, port)
    generation = settings.generation
    try:
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)
            current = EmulatorSettings.load(state_dir)
            if current.generation != generation:
                generation = current.generation
                proxy.set_faults(current.faults or Faults())
                if current.transaction_age is not None:
                    proxy.settings.transaction_age = current.transaction_age
                (state_dir / APPLIED_FILE).write_text(f"{generation}\n")
    finally:
        proxy.close()
        await jobs.close()
        found = read_pid_file(state_dir)
        if found is not None and found[0] == os.getpid():
            (state_dir / PID_FILE).unlink(missing_ok=True)


def serve(state_dir: Path, on_ready: Callable[[str], None] | None = None) -> None:
    """Run the emulator in this process until SIGINT/SIGTERM; ``on_ready`` gets the URL once it
    accepts connections."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run(state_dir, stop, on_ready)

    asyncio.run(main())


if __name__ == "__main__":  # pragma: no cover - the detached process
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    serve(Path(sys.argv[1]))
