"""The local target: what ``dsql-migrate local ...`` manages and what ``local`` URLs resolve to.

A :class:`LocalInstance` is the embedded PostgreSQL server (:mod:`.postgres`) and, in front of
it, the layer that enforces DSQL's rules. The URL that :meth:`LocalInstance.start` returns is the
contract users connect to; :meth:`LocalInstance.raw_url` is the direct PostgreSQL URL, for
debugging.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .postgres import EmbeddedPostgres, ServerStatus

DEFAULT_DIR = Path(".dsql-migrate") / "local"


@dataclass(frozen=True)
class InstanceStatus:
    running: bool
    url: str | None
    raw_url: str | None
    server: ServerStatus

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.server.as_dict(),
            "running": self.running,
            "url": self.url,
            "raw_url": self.raw_url,
        }


class LocalInstance:
    """The local DSQL target kept in ``directory``."""

    def __init__(self, directory: Path | None = None, *, port: int | None = None) -> None:
        self.directory = Path(directory) if directory is not None else DEFAULT_DIR
        self.postgres = EmbeddedPostgres(self.directory, port=port)

    def start(self, timeout: float = 60.0) -> str:
        """Start (or find running) and return the URL to connect to."""
        self.postgres.start(timeout=timeout)
        return self.url()

    def stop(self) -> bool:
        return self.postgres.stop()

    def destroy(self) -> None:
        self.postgres.destroy()

    def url(self) -> str:
        return self.postgres.url()

    def raw_url(self) -> str:
        return self.postgres.url()

    def status(self) -> InstanceStatus:
        server = self.postgres.status()
        url = server.url() if server.running else None
        return InstanceStatus(running=server.running, url=url, raw_url=url, server=server)
