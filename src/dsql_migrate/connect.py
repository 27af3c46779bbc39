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
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .config import Config
from .errors import ConfigError, ConnectError
from .iam import DsqlEndpoint, TokenProvider
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
    dsql: DsqlEndpoint | None = None

    @property
    def display(self) -> str:
        if self.kind == LOCAL:
            return f"local ({self.local_dir})"
        return redact_url(self.url)


#: ``password=...`` in libpq's key=value form: a bare word or a single-quoted value (with \'
#: and \\ escapes), spaces allowed around '='
_KEYWORD_SECRET = re.compile(
    r"(?i)\b(password|token)\s*=\s*(?:'(?:[^'\\]|\\.)*'?|\S*)")


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (in the userinfo and in the query; in a
    libpq ``key=value`` string, its ``password`` value)."""
    if "://" not in url and "=" in url:
        return _KEYWORD_SECRET.sub(r"\1=***", url)
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
    ):
        if value:
            return _parse_target(value.strip(), source, local_dir or DEFAULT_DIR)
    dsql_settings = config.section("dsql")
    if dsql_settings:
        endpoint = DsqlEndpoint.from_settings(dict(dsql_settings), f"[dsql] in {config.path}")
        return Target("dsql", endpoint.url, f"[dsql] in {config.path}", dsql=endpoint)
    return _parse_target(LOCAL, "default", local_dir or DEFAULT_DIR)


def _parse_target(value: str, source: str, local_dir: Path) -> Target:
    if value == LOCAL:
        return Target(LOCAL, LOCAL, source, local_dir)
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    if scheme in ("postgresql", "postgres"):
        return Target("postgresql", value, source)
    if scheme == "dsql":
        return Target("dsql", value, source, dsql=DsqlEndpoint.from_url(value, source))
    raise ConfigError(
        f"unrecognised target {redact_url(value)!r} (from {source})",
        hint="use 'local', a postgresql://user@host:port/db URL, or dsql://role@endpoint",
    )


class Connector:
    """Opens connections to one target.

    For ``dsql://`` targets every connection gets a fresh IAM token and TLS ``verify-full``;
    :attr:`max_connection_seconds` says when a long-running caller should recycle a connection
    (before DSQL cuts it at 60 minutes). The local emulator is started on first use.
    """

    def __init__(
        self, target: Target, *, on_start: Callable[[str], None] | None = None
    ) -> None:
        self.target = target
        self._on_start = on_start
        self._tokens = TokenProvider(target.dsql) if target.dsql is not None else None
        self._local_url: str | None = None

    @property
    def max_connection_seconds(self) -> float | None:
        return float(self.target.dsql.max_connection_seconds) if self.target.dsql else None

    def _params(self) -> tuple[str, dict[str, Any], str | None]:
        """(conninfo, extra keyword parameters, the secret to keep out of messages)."""
        if self.target.kind == LOCAL:
            if self._local_url is None:
                instance = LocalInstance(self.target.local_dir)
                if not instance.status().running and self._on_start is not None:
                    self._on_start(f"starting the local emulator in {self.target.local_dir}")
                self._local_url = instance.start()
            return self._local_url, {}, None
        if self.target.dsql is None or self._tokens is None:
            return self.target.url, {}, None
        endpoint = self.target.dsql
        token = self._tokens.token()
        params: dict[str, Any] = {
            "host": endpoint.host,
            "port": endpoint.port,
            "dbname": "postgres",
            "user": endpoint.role,
            "password": token,
            "sslmode": "verify-full",
            "sslrootcert": endpoint.sslrootcert,
            "application_name": "dsql-migrate",
        }
        if psycopg.pq.version() >= 170000:
            params["sslnegotiation"] = "direct"  # TLS at once: one round trip fewer
        return "", params, token

    def connect(self, *, autocommit: bool = False, **kwargs: Any) -> psycopg.Connection[Any]:
        """Open a connection, turning failures into one-line errors without secrets."""
        conninfo, params, secret = self._params()
        params.update(kwargs)
        params.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
        started = time.monotonic()
        try:
            conn = psycopg.connect(conninfo, autocommit=autocommit, **params)
        except psycopg.OperationalError as exc:
            raise ConnectError(
                _scrub(_describe_connect_failure(conninfo, params, exc), secret),
                hint=_hint(exc, self.target),
            ) from None
        except psycopg.ProgrammingError as exc:
            raise ConfigError(
                _scrub(f"invalid connection settings for {self.target.display}: {exc}", secret)
            ) from None
        log.debug("connected to %s in %.0f ms", self.target.display,
                  (time.monotonic() - started) * 1000)
        return conn


def connect(
    target: Target,
    *,
    autocommit: bool = False,
    on_start: Callable[[str], None] | None = None,
    **kwargs: Any,
) -> psycopg.Connection[Any]:
    """Open one connection to ``target`` (see :class:`Connector`)."""
    return Connector(target, on_start=on_start).connect(autocommit=autocommit, **kwargs)


def conninfo_for(target: Target, *, on_start: Callable[[str], None] | None = None) -> str:
    """A libpq connection string for one connection to ``target`` (starting the emulator).

    For ``dsql://`` targets it embeds a freshly generated token, valid for ``token_ttl``: use
    it at once and never show it. Long runs that reconnect use :class:`Connector` instead.
    """
    conninfo, params, _secret = Connector(target, on_start=on_start)._params()
    return make_conninfo(conninfo, **params) if params else conninfo


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def _describe_connect_failure(
    conninfo: str, extra: dict[str, Any], exc: psycopg.Error
) -> str:
    try:
        params: dict[str, Any] = {**conninfo_to_dict(conninfo), **extra}
    except psycopg.Error:
        params = dict(extra)
    host = params.get("host") or "localhost"
    port = params.get("port") or "5432"
    return f"could not connect to {host}:{port}: {_reason(exc)}"


def _reason(exc: psycopg.Error) -> str:
    text = str(exc).strip()
    # libpq: 'connection failed: connection to server at "h" (ip), port p failed: REASON\n...'
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else text
    reason = first.rsplit("failed:", 1)[-1].strip() if "failed:" in first else first
    if not reason:
        return "unknown error"
    if reason[1:2].isupper():  # an acronym such as "SSL error": keep it
        return reason
    return reason[:1].lower() + reason[1:]


def _hint(exc: psycopg.Error, target: Target) -> str | None:
    text = str(exc).lower()
    endpoint = target.dsql
    if endpoint is not None:
        if "iam authentication failed" in text or "authentication failed" in text or (
            "access denied" in text
        ):
            grant = (
                "" if endpoint.role == "admin" else
                f"; the role must be mapped: AWS IAM GRANT {endpoint.role} TO '<your IAM role ARN>'"
            )
            return (f"the cluster rejected the IAM token for role {endpoint.role!r}: check that "
                    f"your identity may dsql:{endpoint.action} on this cluster{grant}")
        if "ssl" in text or "certificate" in text or "tls" in text:
            return ("the TLS handshake failed: DSQL needs TLS with a certificate that verifies "
                    "against the system trust store; check the endpoint and port, update the CA "
                    "certificates, or set sslrootcert=PATH in the URL")
    if "connection refused" in text:
        return "is the server running and listening on that port?"
    if "timeout" in text or "timed out" in text:
        return "check the host name, the port and any firewall in between"
    if "could not translate host name" in text or "name or service not known" in text:
        return "check the host name in the URL"
    if "password authentication failed" in text or "authentication" in text:
        return "check the user name and the credentials"
    return None
