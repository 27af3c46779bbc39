"""The local Kinesis (and DSQL control plane): moto's server, in a child process of the emulator.

``python -m dsql_migrate.local.cdc.server HOST PORT PARENT_PID`` serves moto on HOST:PORT until
its parent (the emulator) is gone: a process of its own, so that its requests do not compete for
the emulator's interpreter lock, and one that ends with the emulator even when that is killed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..postgres import HOST, pick_free_port, process_alive

log = logging.getLogger(__name__)

#: moto accepts any credentials; boto3 needs some: these are the documented dummy ones
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"  # a dummy credential: moto ignores it, it is no secret
REGION = "us-east-1"
#: moto's account; the ARNs it makes carry it
ACCOUNT_ID = "123456789012"


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


class MotoProcess:
    """moto's server as a child process, on a free port of the loopback interface."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None

    @property
    def endpoint(self) -> str:
        assert self.port is not None
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 30.0) -> str:
        self.port = pick_free_port()
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dsql_migrate.local.cdc.server", HOST, str(self.port),
                 str(os.getpid())],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, close_fds=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _accepts(self.port):
                return self.endpoint
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the local Kinesis server did not start (see {self.log_path})")

    def stop(self, timeout: float = 5.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


def client(service: str, endpoint: str) -> Any:
    """A boto3 client of the local server: only ``endpoint_url`` differs from AWS."""
    import boto3  # only where CDC runs
    from botocore.config import Config

    factory: Any = boto3.client  # the stubs overload it per service name, a literal
    return factory(
        service, endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}),
    )


def main(argv: list[str]) -> None:  # pragma: no cover - the child process
    host, port, parent = argv[0], int(argv[1]), int(argv[2])
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    try:
        while process_alive(parent) and os.getppid() == parent:
            time.sleep(0.5)
    finally:
        with contextlib.suppress(Exception):
            server.stop()


if __name__ == "__main__":  # pragma: no cover - the child process
    logging.basicConfig(level=logging.WARNING)
    main(sys.argv[1:])
