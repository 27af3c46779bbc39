"""``local start --iam``: the emulator as a cluster endpoint (TLS, IAM auth tokens), and
dsql:// targets against it end to end: tokens per connection, expiry, role mapping, recycling
through a long batched run, and no secret anywhere afterwards (issue 8)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from click.testing import CliRunner

from _support import PrivateTarget, isolate_aws
from dsql_migrate.cli import main
from dsql_migrate.config import Config
from dsql_migrate.connect import Connector, resolve_target
from dsql_migrate.errors import ConnectError
from dsql_migrate.iam import DsqlEndpoint, TokenProvider
from dsql_migrate.local import LocalInstance
from dsql_migrate.local.iam import endpoint_name, ensure_certificate
from dsql_migrate.local.proxy import Faults
from dsql_migrate.plan import Batch, Plan, Step, StepKind
from dsql_migrate.runner import RunOptions
from dsql_migrate.runner.api import apply_plan
from dsql_migrate.runner.events import Event

pytestmark = pytest.mark.integration

FAKE_KEY = "AKIDLOCALIAMTEST0001"
FAKE_SECRET = "fake/secret+KEY-never-to-be-printed-42"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": FAKE_KEY,
    "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
SECRETS = (FAKE_SECRET, "X-Amz-Signature", "X-Amz-Credential")


@pytest.fixture(scope="module")
def iam_target(tmp_path_factory: pytest.TempPathFactory,
               private_target: PrivateTarget) -> Iterator[tuple[LocalInstance, str]]:
    with pytest.MonkeyPatch.context() as mp:
        isolate_aws(mp, AWS_ENV, tmp_path_factory.mktemp("iam-aws") / "none")
        with private_target("iam", iam=True) as instance:
            yield instance, instance.url()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_aws(monkeypatch, AWS_ENV, tmp_path / "none")


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def _connect_with(url: str, user: str, token: str, **extra: Any) -> psycopg.Connection[Any]:
    parts = urlsplit(url)
    return psycopg.connect(host=parts.hostname, port=parts.port, dbname="postgres", user=user,
                           password=token, sslmode="verify-full",
                           sslrootcert=_query(url)["sslrootcert"][0], connect_timeout=5,
                           **extra)


def test_start_prints_a_dsql_url_that_works_as_it_is(iam_target: tuple[LocalInstance, str],
                                                      aws_env: None) -> None:
    instance, url = iam_target
    assert url.startswith("dsql://admin@127.0.0.1:")
    assert Path(_query(url)["sslrootcert"][0]).is_file()
    assert instance.start() == url  # a second start: the same URL
    code = CliRunner().invoke(main, ["sql", "--url", url, "--format", "json",
                                     "select current_user as u"])
    assert code.exit_code == 0, code.output
    assert '"admin"' in code.stdout
    with Connector(resolve_target(url, Config(), env={})).connect() as conn:
        assert conn.pgconn.ssl_in_use  # TLS between the client and the endpoint
        assert conn.execute("select current_user").fetchone() == ("admin",)


def test_tokens_are_checked(iam_target: tuple[LocalInstance, str], aws_env: None) -> None:
    _, url = iam_target
    port = urlsplit(url).port
    admin = TokenProvider(DsqlEndpoint.from_url(url, "test"))
    reader_endpoint = DsqlEndpoint.from_url(url.replace("admin@", "reader@"), "test")
    reader = TokenProvider(reader_endpoint)
    with _connect_with(url, "admin", admin.token(), autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS reader")
        conn.execute("CREATE ROLE reader WITH LOGIN")
    # a DbConnect token lets the mapped role in; an admin token does not, nor the reverse
    with _connect_with(url, "reader", reader.token()) as conn:
        assert conn.execute("select current_user").fetchone() == ("reader",)
    for user, token in (("reader", admin.token()), ("admin", reader.token())):
        with pytest.raises(psycopg.OperationalError, match="IAM authentication failed"):
            _connect_with(url, user, token)
    # a password is not a token; a token for another host or signed with another key is not
    forged = admin.token().replace("X-Amz-Expires=900", "X-Amz-Expires=901")
    other_host = TokenProvider(DsqlEndpoint.from_url(
        "dsql://admin@x.dsql.us-east-1.on.aws", "test")).token()
    for token in ("hunter2", forged, other_host):
        with pytest.raises(psycopg.OperationalError, match="IAM authentication failed"):
            _connect_with(url, "admin", token)
    # expired: a one-second token used two seconds later
    short = TokenProvider(DsqlEndpoint.from_url(url + "&token_ttl=1", "test")).token()
    time.sleep(2.1)
    with pytest.raises(psycopg.OperationalError, match="IAM authentication failed"):
        _connect_with(url, "admin", short)
    # no TLS, no connection
    with pytest.raises(psycopg.OperationalError, match="SSL is required"):
        psycopg.connect(host="127.0.0.1", port=port, user="admin", dbname="postgres",
                        password=admin.token(), sslmode="disable", connect_timeout=5)


def test_no_login_without_a_token_or_a_password(iam_target: tuple[LocalInstance, str],
                                                aws_env: None) -> None:
    """Issue 15: the raw server port let anyone in with no token (it trusted every login); now
    it asks every role for its password, and the emulator asks every role for a token."""
    instance, url = iam_target
    raw_port = instance.status().server.port
    for user in ("admin", "postgres", "reader"):
        with pytest.raises(psycopg.OperationalError, match="no password supplied"):
            psycopg.connect(host="127.0.0.1", port=raw_port, user=user, dbname="postgres",
                            sslmode="disable", connect_timeout=5)
    with psycopg.connect(instance.raw_url()) as conn:  # with the password, as documented
        assert conn.execute("select current_user").fetchone() == ("admin",)
    for password in (None, ""):
        with pytest.raises(psycopg.OperationalError,
                           match=r"no password supplied|IAM authentication failed"):
            _connect_with(url, "admin", password)  # type: ignore[arg-type]
    # the bootstrap superuser is refused even with a valid token
    token = TokenProvider(DsqlEndpoint.from_url(url.replace("admin@", "postgres@"),
                                                "test")).token()
    with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
        _connect_with(url, "postgres", token)


def test_the_cluster_shaped_name_for_aws_connectors(iam_target: tuple[LocalInstance, str],
                                                    aws_env: None) -> None:
    """``local.dsql.<region>.on.aws`` with ``hostaddr``: what AWS's connectors can be given."""
    _, url = iam_target
    name = endpoint_name("us-east-1")
    token = TokenProvider(DsqlEndpoint.from_url(f"dsql://admin@{name}", "test")).token()
    parts = urlsplit(url)
    with psycopg.connect(host=name, hostaddr="127.0.0.1", port=parts.port, dbname="postgres",
                         user="admin", password=token, sslmode="verify-full",
                         sslrootcert=_query(url)["sslrootcert"][0], connect_timeout=5) as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("select current_user").fetchone() == ("admin",)
    other_region = TokenProvider(DsqlEndpoint.from_url(
        f"dsql://admin@{endpoint_name('eu-west-1')}?region=us-east-1", "test")).token()
    with pytest.raises(psycopg.OperationalError, match="IAM authentication failed"):
        _connect_with(url, "admin", other_region)


def test_the_certificate_follows_the_region(tmp_path: Path) -> None:
    cert, _ = ensure_certificate(tmp_path, "us-east-1")
    first = cert.read_bytes()
    assert ensure_certificate(tmp_path, "us-east-1")[0].read_bytes() == first  # made once
    assert ensure_certificate(tmp_path, "eu-west-1")[0].read_bytes() != first
    assert "DNS:local.dsql.eu-west-1.on.aws" in (tmp_path / "server.names").read_text()


def test_wrong_credentials_give_the_grant_hint(iam_target: tuple[LocalInstance, str],
                                               aws_env: None,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _, url = iam_target
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "another-secret")
    with pytest.raises(ConnectError) as info:
        Connector(resolve_target(url.replace("admin@", "app@"), Config(), env={})).connect()
    assert "IAM authentication failed" in str(info.value)
    assert info.value.hint is not None and "AWS IAM GRANT app" in info.value.hint
    assert "another-secret" not in f"{info.value}{info.value.hint}"


def copy_plan(rows: int) -> Plan:
    bounds = ("SELECT id FROM (SELECT id FROM iam_src WHERE %(after_1)s::bigint IS NULL OR "
              "id > %(after_1)s::bigint ORDER BY id LIMIT %(size)s) AS page "
              "ORDER BY id DESC LIMIT 1")
    return Plan(profile="current", steps=(
        Step(1, StepKind.DDL, "create the copy", (
            "CREATE TABLE iam_dst (id bigint PRIMARY KEY, v text)",)),
        Step(2, StepKind.COPY, "copy in batches", (
            "INSERT INTO iam_dst SELECT id, v FROM iam_src WHERE (%(after_1)s::bigint IS NULL "
            "OR id > %(after_1)s::bigint) AND id <= %(upto_1)s::bigint",),
            batch=Batch("iam_src", ("id",), ("bigint",), 50, bounds)),
    ))


def test_a_long_run_outlives_tokens_and_connections(iam_target: tuple[LocalInstance, str],
                                                    aws_env: None) -> None:
    """Point 2: each new connection gets a new token; connections are recycled (by the runner
    at max_connection_age, and cut by the emulator); no batch repeated or lost."""
    instance, url = iam_target
    with psycopg.connect(instance.raw_url(), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS iam_src, iam_dst")
        conn.execute("CREATE TABLE iam_src (id bigint PRIMARY KEY, v text)")
        conn.execute("INSERT INTO iam_src SELECT g, md5(g::text) FROM generate_series(1, 1500) g")
    instance.set_faults(Faults(max_connection_age=1.5))
    try:
        target = resolve_target(url + "&token_ttl=1&max_connection_age=1", Config(), env={})
        connector = Connector(target)
        opened: list[float] = []

        def factory() -> psycopg.Connection[Any]:
            opened.append(time.monotonic())
            return connector.connect(autocommit=True)

        def slow(event: Event) -> None:
            if event.kind == "batch":
                time.sleep(0.1)  # let tokens expire and connections age between batches

        result = apply_plan(copy_plan(1500), factory, on_event=slow,
                            max_connection_seconds=connector.max_connection_seconds,
                            options=RunOptions(async_poll_seconds=0.05))
    finally:
        instance.set_faults()
    assert result.status == "done"
    assert opened[-1] - opened[0] > 2  # later connections came after the first tokens expired
    assert len(opened) >= 3
    with psycopg.connect(instance.raw_url()) as conn:
        same = conn.execute(
            "SELECT (SELECT md5(string_agg(id || v, ',' ORDER BY id)) FROM iam_src) = "
            "(SELECT md5(string_agg(id || v, ',' ORDER BY id)) FROM iam_dst)").fetchone()
        assert same == (True,)
        batches = conn.execute(
            "SELECT batch, count(*) FROM dsql_migrate.batches WHERE plan_hash = %s "
            "GROUP BY batch ORDER BY batch", (copy_plan(1500).hash,)).fetchall()
    assert [b for b, _ in batches] == list(range(1, len(batches) + 1))  # none lost
    assert all(n == 1 for _, n in batches)  # none twice


def test_no_secret_anywhere_after_a_run(iam_target: tuple[LocalInstance, str], aws_env: None,
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point 3: plan and apply through the CLI, then grep every output, log, plan and state
    row for the secret key and for any token."""
    instance, url = iam_target
    monkeypatch.chdir(tmp_path)
    (tmp_path / "desired.sql").write_text(
        "CREATE TABLE grep_me (id bigint PRIMARY KEY, v varchar(20));\n")
    runner = CliRunner()
    outputs = []
    for args in (["plan", "--url", url, "--target", "desired.sql", "--format", "json",
                  "-o", "plan.json", "--scratch-url", instance.raw_url()],
                 ["apply", "plan.json", "--url", url, "--allow-destructive"],
                 ["status", "--url", url, "--format", "json"],
                 ["-vv", "sql", "--url", url, "select 1"],
                 ["sql", "--url", url.replace("admin@", "nobody@"), "select 1"]):
        result = runner.invoke(main, args)
        outputs.append(result.output)
    texts = [*outputs, (tmp_path / "plan.json").read_text()]
    state_dir = instance.state_dir
    for log in (state_dir / "emulator.log", instance.postgres.log_file):
        texts.append(log.read_text(errors="replace"))
    with psycopg.connect(instance.raw_url()) as conn:
        for table in ("plans", "steps", "batches", "locks"):
            rows = conn.execute(f"SELECT * FROM dsql_migrate.{table}").fetchall()
            texts.append(repr(rows))
    everything = "\n".join(texts)
    assert "grep_me" in everything  # the run happened and was recorded
    for secret in SECRETS:
        assert secret not in everything, secret
    assert os.stat(state_dir / "iam.json").st_mode & 0o077 == 0  # the emulator's copy: private


def test_an_alembic_upgrade_outlives_its_first_token(iam_target: tuple[LocalInstance, str],
                                                     aws_env: None, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """``dsql-migrate upgrade`` on a dsql:// target: every connection of the engine and of the
    runner gets its own token, so connections opened after the first token expired work."""
    instance, url = iam_target
    with psycopg.connect(instance.raw_url(), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS iam_alembic, alembic_version")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(main, ["init", "migrations"]).exit_code == 0
    versions = tmp_path / "migrations" / "versions"
    (versions / "0001_table.py").write_text(
        'revision = "i1"\ndown_revision = None\nimport sqlalchemy as sa\n'
        "from alembic import op\n\n"
        "def upgrade():\n"
        '    op.create_table("iam_alembic", sa.Column("id", sa.BigInteger, primary_key=True))\n\n'
        "def downgrade():\n    pass\n")
    (versions / "0002_column.py").write_text(
        'revision = "i2"\ndown_revision = "i1"\nimport time\nimport sqlalchemy as sa\n'
        "from alembic import op\n\n"
        "def upgrade():\n"
        "    time.sleep(4.5)  # recorded, not run: the runner connects after the first token\n"
        '    op.add_column("iam_alembic", sa.Column("note", sa.Text))\n\n'
        "def downgrade():\n    pass\n")
    # 3 s: a token is signed to the second, so a shorter one may be stale on arrival under load
    result = runner.invoke(main, ["upgrade", "--url", url + "&token_ttl=3"])
    assert result.exit_code == 0, result.output
    with psycopg.connect(instance.raw_url()) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("i2",)
        assert conn.execute("SELECT count(*) FROM information_schema.columns WHERE "
                            "table_name = 'iam_alembic' AND column_name = 'note'"
                            ).fetchone() == (1,)
