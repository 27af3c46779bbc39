"""Connection targets (DESIGN.md §3.1) and opening connections to them.

Resolution order: ``--url``, then ``$DSQL_MIGRATE_URL``, then ``url`` in the configuration file,
then the local emulator (started on demand). A target is one of:

- ``local`` (or nothing configured): the embedded emulator in ``.dsql-migrate/local/``;
- ``postgresql://...`` / ``postgres://...``: any PostgreSQL-protocol endpoint, taken as it is;
- ``dsql://<role>@<cluster-endpoint>``: a real Aurora DSQL cluster with IAM tokens.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from .config import Config
from .errors import ConfigError, ConnectError
from .local import DEFAULT_DIR, LocalInstance

log = logging.getLogger(__name__)

ENV_URL = "DSQL_MIGRATE_URL"
LOCAL = "local"
CONNECT_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class Target:
    """Where to connect. ``url`` may carry a password: show :attr:`display` instead."""

    kind: str  # "local" | "postgresql" | "dsql"
    url: str
    source: str  # which setting chose it: "--url", "$DSQL_MIGRATE_URL", a config path, "default"
    local_dir: Path | None = None

    @property
    def display(self) -> str:
        return redact_url(self.url) if self.kind != LOCAL else f"local ({self.local_dir})"


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (in the userinfo and in the query)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{hostport}"
    query = re.sub(r"(?i)(password|token)=[^&]*", r"\1=***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def resolve_target(
    url: str | None,
    config: Config,
    *,
    env: dict[str, str] | None = None,
    local_dir: Path | None = None,
) -> Target:
    """Pick the target per DESIGN.md §3.1."""
    environ = os.environ if env is None else env
    for value, source in (
        (url, "--url"),
        (environ.get(ENV_URL) or None, f"${ENV_URL}"),
        (config.url, str(config.path)),
        (LOCAL, "default"),
    ):
        if value:
            return _parse_target(value.strip(), source, local_dir or DEFAULT_DIR)
    raise AssertionError("unreachable")  # pragma: no cover


def _parse_target(value: str, source: str, local_dir: Path) -> Target:
    if value == LOCAL:
        return Target(LOCAL, LOCAL, source, local_dir)
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    if scheme in ("postgresql", "postgres"):
        return Target("postgresql", value, source)
    if scheme == "dsql":
        raise ConfigError(
            f"{redact_url(value)} (from {source}): dsql:// targets are not supported by this "
            "version yet",
            hint="connect with a postgresql:// URL and an IAM token as password meanwhile",
        )
    raise ConfigError(
        f"unrecognised target {redact_url(value)!r} (from {source})",
        hint="use 'local', a postgresql://user@host:port/db URL, or dsql://role@endpoint",
    )


def conninfo_for(target: Target, *, on_start: Callable[[str], None] | None = None) -> str:
    """The libpq connection string for ``target``, starting the local emulator if needed."""
    if target.kind == LOCAL:
        instance = LocalInstance(target.local_dir)
        if not instance.status().running and on_start is not None:
            on_start(f"starting the local emulator in {target.local_dir}")
        return instance.start()
    return target.url


def connect(
    target: Target,
    *,
    autocommit: bool = False,
    on_start: Callable[[str], None] | None = None,
    **kwargs: Any,
) -> psycopg.Connection[Any]:
    """Open a psycopg connection, turning connection failures into one-line errors."""
    conninfo = conninfo_for(target, on_start=on_start)
    kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
    try:
        return psycopg.connect(conninfo, autocommit=autocommit, **kwargs)
    except psycopg.OperationalError as exc:
        raise ConnectError(_describe_connect_failure(conninfo, exc), hint=_hint(exc)) from None
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"invalid connection URL {redact_url(conninfo)}: {exc}") from None


def _describe_connect_failure(conninfo: str, exc: psycopg.Error) -> str:
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error:
        params = {}
    host = params.get("host") or "localhost"
    port = params.get("port") or "5432"
    return f"could not connect to {host}:{port}: {_reason(exc)}"


def _reason(exc: psycopg.Error) -> str:
    text = str(exc).strip()
    # libpq: 'connection failed: connection to server at "h" (ip), port p failed: REASON\n...'
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else text
    reason = first.rsplit("failed:", 1)[-1].strip() if "failed:" in first else first
    return reason[:1].lower() + reason[1:] if reason else "unknown error"


def _hint(exc: psycopg.Error) -> str | None:
    text = str(exc).lower()
    if "connection refused" in text:
        return "is the server running and listening on that port?"
    if "timeout" in text or "timed out" in text:
        return "check the host name, the port and any firewall in between"
    if "could not translate host name" in text or "name or service not known" in text:
        return "check the host name in the URL"
    if "password authentication failed" in text or "authentication" in text:
        return "check the user name and the credentials"
    return None
