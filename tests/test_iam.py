"""dsql:// targets: URL parsing, regions, IAM tokens, and errors that never leak a secret."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from dsql_migrate.cli import main
from dsql_migrate.config import Config
from dsql_migrate.connect import Connector, resolve_target
from dsql_migrate.errors import ConfigError, ConnectError
from dsql_migrate.iam import DsqlEndpoint, TokenProvider, region_from_endpoint

ENDPOINT = "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws"
FAKE_KEY = "AKIAFAKEFAKEFAKE1234"
FAKE_SECRET = "fake/secret/KEY+do-not-leak-0123456789"


@pytest.fixture
def fake_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Known fake credentials, and nothing from this machine's AWS configuration."""
    _isolate_aws(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)


def _isolate_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_region_comes_from_the_endpoint() -> None:
    assert region_from_endpoint(ENDPOINT) == "us-east-1"
    assert region_from_endpoint("xyz.dsql.ap-southeast-2.on.aws") == "ap-southeast-2"
    assert region_from_endpoint("db.example.com") is None


def test_url_parsing_with_parameters() -> None:
    endpoint = DsqlEndpoint.from_url(
        f"dsql://app_migrator@{ENDPOINT}:6543?region=eu-west-1&profile=ci&token_ttl=300", "--url"
    )
    assert endpoint.role == "app_migrator"
    assert endpoint.host == ENDPOINT and endpoint.port == 6543
    assert endpoint.region == "eu-west-1"  # given wins over the endpoint's
    assert endpoint.aws_profile == "ci"
    assert endpoint.token_seconds == 300
    assert endpoint.action == "DbConnect"
    assert DsqlEndpoint.from_url(f"dsql://admin@{ENDPOINT}", "x").action == "DbConnectAdmin"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"dsql://admin:pw@{ENDPOINT}", "takes no password"),
        (f"dsql://{ENDPOINT}", "needs a role"),
        (f"dsql://admin@{ENDPOINT}?regoin=us-east-1", "unknown dsql setting"),
        (f"dsql://admin@{ENDPOINT}?token_ttl=9999999", "token_ttl must be between"),
        (f"dsql://admin@{ENDPOINT}?token_ttl=soon", "whole number"),
    ],
)
def test_bad_urls_are_usage_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        DsqlEndpoint.from_url(url, "--url")
    assert ":pw@" not in str(info.value)


def test_config_file_dsql_table(tmp_path: Path) -> None:
    config = Config(path=tmp_path / "dsql-migrate.toml",
                    data={"dsql": {"endpoint": ENDPOINT, "role": "migrator", "token_ttl": 600}})
    target = resolve_target(None, config, env={})
    assert target.kind == "dsql" and target.dsql is not None
    assert target.dsql.role == "migrator" and target.dsql.region == "us-east-1"
    assert target.dsql.token_seconds == 600


def _token_query(token: str) -> dict[str, list[str]]:
    parts = urlsplit("https://" + token)
    assert parts.hostname == ENDPOINT
    return parse_qs(parts.query)


@pytest.mark.usefixtures("fake_aws")
def test_admin_and_other_roles_sign_different_actions() -> None:
    admin = TokenProvider(DsqlEndpoint.from_url(f"dsql://admin@{ENDPOINT}?token_ttl=120", "t"))
    query = _token_query(admin.token())
    assert query["Action"] == ["DbConnectAdmin"]
    assert query["X-Amz-Expires"] == ["120"]
    assert query["X-Amz-Credential"][0].startswith(f"{FAKE_KEY}/")
    assert "/us-east-1/dsql/aws4_request" in query["X-Amz-Credential"][0]
    other = TokenProvider(DsqlEndpoint.from_url(f"dsql://reader@{ENDPOINT}", "t"))
    assert _token_query(other.token())["Action"] == ["DbConnect"]


def test_no_credentials_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _isolate_aws(monkeypatch, tmp_path)
    provider = TokenProvider(DsqlEndpoint.from_url(f"dsql://admin@{ENDPOINT}", "t"))
    with pytest.raises(ConfigError, match="no AWS credentials found"):
        provider.token()


@pytest.mark.usefixtures("fake_aws")
def test_no_region_is_a_clear_error() -> None:
    provider = TokenProvider(DsqlEndpoint.from_url("dsql://admin@db.example.com", "t"))
    with pytest.raises(ConfigError, match="no AWS region") as info:
        provider.token()
    assert info.value.hint is not None and "region=" in info.value.hint


@pytest.mark.usefixtures("fake_aws")
def test_unknown_profile_is_a_clear_error() -> None:
    provider = TokenProvider(DsqlEndpoint.from_url(f"dsql://admin@{ENDPOINT}?profile=nope", "t"))
    with pytest.raises(ConfigError, match="AWS profile 'nope' is not configured"):
        provider.token()


@pytest.mark.usefixtures("fake_aws")
def test_tls_is_required_and_failures_leak_nothing(raw_url: str) -> None:
    """The embedded server has no TLS: a dsql:// connection must refuse to go on without it."""
    port = urlsplit(raw_url).port
    target = resolve_target(f"dsql://admin@127.0.0.1:{port}?region=us-east-1", Config(), env={})
    with pytest.raises(ConnectError) as info:
        Connector(target).connect(connect_timeout=5)
    text = f"{info.value}\n{info.value.hint}"
    assert f"127.0.0.1:{port}" in text
    assert "TLS" in text or "SSL" in text
    assert FAKE_SECRET not in text and "X-Amz-Signature" not in text


@pytest.mark.usefixtures("fake_aws")
def test_cli_error_for_dsql_target_has_no_secret(raw_url: str) -> None:
    port = urlsplit(raw_url).port
    result = CliRunner().invoke(
        main, ["sql", "--url", f"dsql://admin@127.0.0.1:{port}?region=us-east-1", "select 1"]
    )
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    for secret in (FAKE_SECRET, "X-Amz-Signature", "X-Amz-Credential"):
        assert secret not in result.output
