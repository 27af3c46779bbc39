"""IAM authentication for Aurora DSQL: endpoints, regions and auth tokens.

A DSQL password is an IAM auth token: a SigV4-presigned URL generated locally (no network call)
by botocore's ``dsql`` client from the standard credential chain (environment, profile, SSO,
container and instance roles). The ``admin`` role signs the ``DbConnectAdmin`` action, any other
role ``DbConnect``. A token is checked only when a connection opens, so every new connection gets
a fresh one. Tokens are secrets: they never appear in any output, log or error.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .errors import ConfigError

log = logging.getLogger(__name__)

ADMIN_ROLE = "admin"
DEFAULT_PORT = 5432
DEFAULT_TOKEN_SECONDS = 900
MAX_TOKEN_SECONDS = 604_800  # one week, the most DSQL accepts
#: recycle connections comfortably before DSQL closes them at 60 minutes
DEFAULT_MAX_CONNECTION_SECONDS = 3300
ENDPOINT_REGION = re.compile(r"^[a-z0-9]+\.dsql[a-z0-9-]*\.([a-z]{2}(?:-[a-z]+)+-\d+)\.on\.aws$")
KNOWN_PARAMS = {"region", "profile", "token_ttl", "sslrootcert", "max_connection_age"}


@dataclass(frozen=True)
class DsqlEndpoint:
    """Everything needed to connect to one cluster as one role (nothing secret)."""

    role: str
    host: str
    port: int = DEFAULT_PORT
    region: str | None = None
    aws_profile: str | None = None
    token_seconds: int = DEFAULT_TOKEN_SECONDS
    sslrootcert: str = "system"
    max_connection_seconds: int = DEFAULT_MAX_CONNECTION_SECONDS

    @property
    def action(self) -> str:
        return "DbConnectAdmin" if self.role == ADMIN_ROLE else "DbConnect"

    @property
    def url(self) -> str:
        return f"dsql://{self.role}@{self.host}:{self.port}"

    @classmethod
    def from_url(cls, url: str, source: str) -> DsqlEndpoint:
        """Parse ``dsql://<role>@<endpoint>[:port][?region=..&profile=..&token_ttl=..]``."""
        where = f"(from {source})"
        try:
            parts = urlsplit(url)
            port = parts.port or DEFAULT_PORT
        except ValueError as exc:
            raise ConfigError(f"invalid dsql:// URL {where}: {exc}") from None
        if parts.password:
            raise ConfigError(
                f"a dsql:// URL takes no password {where}: it is replaced by an IAM token",
                hint="remove the password from the URL",
            )
        if not parts.username or not parts.hostname:
            raise ConfigError(
                f"a dsql:// URL needs a role and an endpoint {where}",
                hint="write it as dsql://admin@<cluster-id>.dsql.<region>.on.aws",
            )
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        return cls.from_settings(
            {"role": unquote(parts.username), "endpoint": parts.hostname, "port": port, **query},
            source,
        )

    @classmethod
    def from_settings(cls, settings: dict[str, Any], source: str) -> DsqlEndpoint:
        """From URL query parameters or the ``[dsql]`` table of the configuration file."""
        where = f"(from {source})"
        unknown = sorted(set(settings) - KNOWN_PARAMS - {"role", "endpoint", "port"})
        if unknown:
            raise ConfigError(
                f"unknown dsql setting(s) {', '.join(unknown)} {where}",
                hint=f"known: role, endpoint, port, {', '.join(sorted(KNOWN_PARAMS))}",
            )
        host = str(settings.get("endpoint") or "").lower()
        if not host:
            raise ConfigError(f"no cluster endpoint given {where}")
        region = settings.get("region") or region_from_endpoint(host)
        return cls(
            role=str(settings.get("role") or ADMIN_ROLE),
            host=host,
            port=_int(settings.get("port", DEFAULT_PORT), "port", where, 1, 65535),
            region=str(region) if region else None,
            aws_profile=str(settings["profile"]) if settings.get("profile") else None,
            token_seconds=_int(settings.get("token_ttl", DEFAULT_TOKEN_SECONDS), "token_ttl",
                               where, 1, MAX_TOKEN_SECONDS),
            sslrootcert=str(settings.get("sslrootcert") or "system"),
            max_connection_seconds=_int(
                settings.get("max_connection_age", DEFAULT_MAX_CONNECTION_SECONDS),
                "max_connection_age", where, 1, 3600,
            ),
        )


def _int(value: Any, name: str, where: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a whole number, got {value!r} {where}") from None
    if not low <= number <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {number} {where}")
    return number


def region_from_endpoint(host: str) -> str | None:
    """``us-east-1`` from ``abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws``."""
    match = ENDPOINT_REGION.match(host)
    return match.group(1) if match else None


class TokenProvider:
    """Generates a fresh IAM auth token for every call (thread-safe; the client is reused)."""

    def __init__(self, endpoint: DsqlEndpoint) -> None:
        self.endpoint = endpoint
        self._client: Any = None
        self._lock = threading.Lock()

    def _dsql_client(self) -> Any:
        import boto3
        import botocore.exceptions

        with self._lock:
            if self._client is not None:
                return self._client
            try:
                session = boto3.session.Session(profile_name=self.endpoint.aws_profile)
            except botocore.exceptions.ProfileNotFound:
                raise ConfigError(
                    f"AWS profile {self.endpoint.aws_profile!r} is not configured",
                    hint="check the profile name in the URL or config (see 'aws configure list')",
                ) from None
            region = self.endpoint.region or session.region_name
            if not region:
                raise ConfigError(
                    f"no AWS region for {self.endpoint.host}",
                    hint="add ?region=<region> to the dsql:// URL, or set AWS_REGION",
                )
            try:
                credentials = session.get_credentials()
            except botocore.exceptions.BotoCoreError as exc:
                raise ConfigError(f"AWS credentials could not be loaded: {exc}") from None
            if credentials is None:
                raise ConfigError(
                    "no AWS credentials found",
                    hint="set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, 'aws sso login', choose a "
                    "profile with ?profile=NAME, or run with an instance or container role",
                )
            self._client = session.client("dsql", region_name=region)
            return self._client

    def token(self) -> str:
        import botocore.exceptions

        client = self._dsql_client()
        method = (client.generate_db_connect_admin_auth_token
                  if self.endpoint.role == ADMIN_ROLE else client.generate_db_connect_auth_token)
        try:
            token: str = method(self.endpoint.host, client.meta.region_name,
                                self.endpoint.token_seconds)
        except botocore.exceptions.NoCredentialsError:
            raise ConfigError("no AWS credentials found",
                              hint="configure AWS credentials (environment, profile, SSO, role)"
                              ) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise ConfigError(f"could not generate an IAM auth token: {exc}") from None
        log.debug("generated a %s token for %s (valid %s s)", self.endpoint.action,
                  self.endpoint.host, self.endpoint.token_seconds)
        return token
