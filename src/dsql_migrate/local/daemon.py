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
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from psycopg.conninfo import make_conninfo

from ..profiles import get_profile
from .iam import IamCredentials, ensure_certificate, server_tls_context
from .jobs import JobRunner
from .postgres import DATABASE, HOST, SUPERUSER, load_passwords, make_url
from .proxy import Proxy, ProxySettings
from .settings import (
    APPLIED_FILE,
    CDC_FILE,
    PID_FILE,
    EmulatorSettings,
    Faults,
    public_url,
    read_pid_file,
)

if TYPE_CHECKING:
    from .cdc.server import CdcProcess

log = logging.getLogger(__name__)

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

    superuser_url = make_url(settings.backend_port, SUPERUSER, password=superuser_password)
    jobs = JobRunner(superuser_url, role_conninfo=as_role)
    # CDC first: its slot must exist before a client can commit anything
    cdc = _start_cdc(state_dir, settings, superuser_url)

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
        if cdc is not None:
            cdc.stop()
        found = read_pid_file(state_dir)
        if found is not None and found[0] == os.getpid():
            (state_dir / PID_FILE).unlink(missing_ok=True)


def _start_cdc(state_dir: Path, settings: EmulatorSettings,
               superuser_url: str) -> CdcProcess | None:
    """The CDC stream when it is asked for; otherwise remove what a killed one left behind (a
    publication of all tables would make UPDATE of a table without a primary key fail)."""
    from .cdc import database

    (state_dir / CDC_FILE).unlink(missing_ok=True)
    if settings.cdc is None or not settings.cdc.enabled:
        try:
            with psycopg.connect(superuser_url, autocommit=True, connect_timeout=10) as conn:
                database.teardown(conn)
        except psycopg.Error as exc:
            log.warning("could not remove what a CDC stream left in the database: %s", exc)
        return None
    from .cdc.server import CdcProcess

    process = CdcProcess(state_dir)
    process.start()
    return process


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
