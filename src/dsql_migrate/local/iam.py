"""IAM authentication for the local target (``local start --iam``): TLS and DSQL auth tokens.

With ``--iam`` the emulator behaves like a cluster endpoint: it speaks TLS only (with a
certificate it generates for 127.0.0.1, localhost and :func:`endpoint_name`), and accepts as
password only a valid, unexpired SigV4-presigned ``DbConnectAdmin`` token (for ``admin``) or
``DbConnect`` token (any other role) for one of those host names, signed with the AWS
credentials that were in the environment of ``local start --iam``. Anything else is refused
as DSQL refuses it.

The credentials are kept in ``<state dir>/iam.json`` (mode 0600) so the emulator can check
signatures; use fake ones locally (any key id and secret work). Tokens are never logged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

from ..errors import ConfigError, LocalServerError

CREDENTIALS_FILE = "iam.json"
CERT_FILE = "server.crt"
KEY_FILE = "server.key"
NAMES_FILE = "server.names"  # the names in the certificate, to notice a change of region
ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "dsql"
#: how far in the future a token's signing time may be (clock skew)
MAX_SKEW = dt.timedelta(minutes=5)
MAX_EXPIRES = 604_800
ACCEPTED_HOSTS = ("127.0.0.1", "localhost")
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class IamCredentials:
    access_key_id: str
    secret_access_key: str
    region: str

    @classmethod
    def from_environment(cls) -> IamCredentials:
        """The credentials and region the standard AWS chain gives in this environment."""
        import boto3

        session = boto3.session.Session()
        credentials = session.get_credentials()
        if credentials is None:
            raise ConfigError(
                "local start --iam needs AWS credentials in the environment, to verify tokens",
                hint="fake ones work: AWS_ACCESS_KEY_ID=AKIDLOCAL "
                "AWS_SECRET_ACCESS_KEY=local-secret dsql-migrate local start --iam",
            )
        frozen = credentials.get_frozen_credentials()
        if not frozen.access_key or not frozen.secret_key:
            raise ConfigError("the AWS credentials in the environment are incomplete")
        return cls(frozen.access_key, frozen.secret_key, session.region_name or "us-east-1")

    def save(self, state_dir: Path) -> None:
        path = state_dir / CREDENTIALS_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"access_key_id": self.access_key_id,
                       "secret_access_key": self.secret_access_key,
                       "region": self.region}, fh)

    @classmethod
    def load(cls, state_dir: Path) -> IamCredentials:
        data = json.loads((state_dir / CREDENTIALS_FILE).read_text())
        return cls(str(data["access_key_id"]), str(data["secret_access_key"]),
                   str(data["region"]))


def endpoint_name(region: str) -> str:
    """The local target's cluster-shaped host name, ``local.dsql.<region>.on.aws``.

    AWS's connectors (``aurora-dsql-python-connector``, used by ``create_dsql_engine``) take any
    host without ``.dsql`` for a cluster id and expand it to ``<id>.dsql.<region>.on.aws``, so
    they cannot be pointed at ``127.0.0.1``. They can be given this name, with libpq's
    ``hostaddr=127.0.0.1`` saying where to connect (no DNS lookup): the emulator accepts tokens
    signed for it, and its certificate names it, so ``verify-full`` holds.
    """
    return f"local.dsql.{region}.on.aws"


def accepted_hosts(region: str) -> tuple[str, ...]:
    return (*ACCEPTED_HOSTS, endpoint_name(region))


def ensure_certificate(state_dir: Path, region: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, localhost and :func:`endpoint_name` (made with
    ``openssl``, again when the region changed)."""
    cert, key, names = state_dir / CERT_FILE, state_dir / KEY_FILE, state_dir / NAMES_FILE
    san = "IP:127.0.0.1," + ",".join(f"DNS:{h}" for h in accepted_hosts(region)[1:])
    if cert.exists() and key.exists() and names.exists() and names.read_text() == san:
        return cert, key
    try:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-days", "3650", "-subj", "/CN=dsql-migrate local target",
             "-addext", f"subjectAltName={san}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True, timeout=60)
    except FileNotFoundError:
        raise LocalServerError(
            "local start --iam needs the openssl command to make its TLS certificate",
            hint="install OpenSSL (apt-get install openssl, brew install openssl)") from None
    except subprocess.CalledProcessError as exc:
        raise LocalServerError(
            f"openssl could not make a certificate: {exc.stderr.decode(errors='replace')}"
        ) from None
    key.chmod(0o600)
    names.write_text(san)
    return cert, key


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    # libpq's direct TLS negotiation (sslnegotiation=direct) insists on this ALPN protocol
    context.set_alpn_protocols(["postgresql"])
    return context


def _sign(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")


def verify_token(token: str, *, user: str, credentials: IamCredentials,
                 now: dt.datetime | None = None) -> str | None:
    """None when ``token`` lets ``user`` connect; otherwise why not (never the token itself)."""
    parts = urlsplit("https://" + token)
    host = (parts.hostname or "").lower()
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    if host not in accepted_hosts(credentials.region) or parts.path not in ("", "/"):
        return f"the token is for another host ({host or 'none'})"
    expected_action = "DbConnectAdmin" if user == "admin" else "DbConnect"
    if params.get("Action") != expected_action:
        return f"role {user!r} needs a {expected_action} token, not {params.get('Action')!r}"
    if params.get("X-Amz-Algorithm") != ALGORITHM:
        return "not a SigV4 token"
    scope = params.get("X-Amz-Credential", "").split("/")
    if len(scope) != 5 or scope[2:] != [credentials.region, SERVICE, "aws4_request"]:
        return "the token's credential scope does not match this endpoint"
    if scope[0] != credentials.access_key_id:
        return "the token is signed with another access key"
    try:
        signed_at = dt.datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
            tzinfo=dt.timezone.utc)
        expires = int(params["X-Amz-Expires"])
    except (KeyError, ValueError):
        return "the token has no valid date or expiry"
    now = now or dt.datetime.now(dt.timezone.utc)
    if not 0 < expires <= MAX_EXPIRES or signed_at - now > MAX_SKEW:
        return "the token's validity period is invalid"
    if now > signed_at + dt.timedelta(seconds=expires):
        return "the token has expired"
    if params.get("X-Amz-SignedHeaders") != "host" or scope[1] != params["X-Amz-Date"][:8]:
        return "the token is malformed"
    query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(params.items())
                     if k != "X-Amz-Signature")
    # botocore presigns DSQL tokens over an empty body (not UNSIGNED-PAYLOAD)
    canonical = "\n".join(["GET", "/", query, f"host:{host}", "", "host", EMPTY_SHA256])
    string_to_sign = "\n".join([ALGORITHM, params["X-Amz-Date"], "/".join(scope[1:]),
                                hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + credentials.secret_access_key).encode()
    for part in (scope[1], credentials.region, SERVICE, "aws4_request"):
        key = _sign(key, part)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature, params.get("X-Amz-Signature", "")):
        return "the token's signature does not match"
    return None
