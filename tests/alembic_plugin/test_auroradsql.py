"""The same Alembic project through AWS's real ``auroradsql`` dialect (aurora-dsql-sqlalchemy):
with an ``auroradsql+psycopg://`` URL on the emulator, and through AWS's ``create_dsql_engine``
(IAM token per connection, TLS verify-full) on the emulator's ``--iam`` endpoint; the
dialect's known gaps covered (issue 7, point 1)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
from alembic_project import make_project, sa_url

from _support import PrivateTarget, isolate_aws
from dsql_migrate.alembic.impl import AuroraDsqlImpl, DialectGap
from dsql_migrate.local.iam import endpoint_name

pytest.importorskip("aurora_dsql_sqlalchemy")

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "AKIDLOCALDIALECTTEST",
    "AWS_SECRET_ACCESS_KEY": "fake-secret-for-the-dialect-test",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}

CREATE_DSQL_ENGINE = '''\
    from aurora_dsql_sqlalchemy import create_dsql_engine

    # AWS's connector: an IAM token for every new connection, TLS verify-full
    connectable = create_dsql_engine(
        host=config.get_main_option("dsql.host"),
        user="admin",
        sslrootcert=config.get_main_option("dsql.sslrootcert"),
        connect_args={"hostaddr": "127.0.0.1", "port": int(config.get_main_option("dsql.port"))},
    )
'''


def scalar(url: str, query: str) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    return None if row is None else row[0]


def check_common_ops(url: str) -> None:
    """What r1..r4 leave behind (test_project.py checks the same in detail)."""
    assert scalar(url, "SELECT version_num FROM alembic_version") == "r4"
    assert scalar(url, "SELECT count(*) FROM t7_users WHERE status = 'active'") == 20
    assert scalar(url, "SELECT pg_typeof(min(amount))::text FROM t7_purchases") == "bigint"
    assert scalar(url, "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                       "WHERE c.relname = 'ix_t7_users_email' AND i.indisvalid") == 1


def index_definitions(url: str) -> dict[str, str]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisvalid FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = 'dg_events'::regclass AND NOT i.indisprimary").fetchall()
    assert all(valid for _, _, valid in rows), rows
    return {name: definition for name, definition, _ in rows}


def check_gaps_covered(url: str, output: str) -> None:
    """g1's revision, as it must be on DSQL: what the dialect alone would drop or break."""
    cache = scalar(url, "SELECT seqcache FROM pg_sequence WHERE seqrelid = "
                        "pg_get_serial_sequence('dg_events', 'id')::regclass")
    assert cache == 1 or cache >= 65536  # an explicit CACHE DSQL accepts (it rejects others)
    assert scalar(url, "SELECT count(*) FROM dg_events") == 30
    defs = index_definitions(url)
    assert defs["ix_dg_open_pg"].endswith("(kind) WHERE ((status)::text = 'open'::text)")
    assert defs["ix_dg_open_aws"].endswith("(status) WHERE ((status)::text <> 'done'::text)")
    assert defs["ix_dg_cover_pg"].endswith("(kind) INCLUDE (payload)")
    assert defs["ix_dg_cover_aws"].endswith("(status) INCLUDE (payload, kind)")
    assert defs["ux_dg_kind_status"].endswith("(kind, status) NULLS NOT DISTINCT")
    # USING btree is what DSQL builds anyway (another method is refused: test_faithful.py)
    assert defs["ix_dg_hash_pg"].endswith("USING btree (payload)")
    assert "planned as btree" not in output


def test_real_dialect_gets_the_impl_and_reflects(dsql_url: str, raw_url: str) -> None:
    import dsql_migrate.alembic.context  # noqa: F401 - the env.py import

    with psycopg.connect(raw_url, autocommit=True) as raw:
        raw.execute("CREATE TABLE IF NOT EXISTS t7_reflect (id bigint PRIMARY KEY, "
                    "note varchar(20) NOT NULL)")
    engine = sa.create_engine(sa_url(dsql_url, "auroradsql+psycopg"), poolclass=sa.pool.NullPool)
    try:
        assert type(engine.dialect).__module__ == "aurora_dsql_sqlalchemy.psycopg"
        with engine.connect() as conn:
            mc = MigrationContext.configure(connection=conn)
            assert isinstance(mc.impl, AuroraDsqlImpl)
            assert mc.impl.transactional_ddl is False
            # aurora-dsql-sqlalchemy 1.3.0's column query lacks what SQLAlchemy 2.1 reads
            columns = sa.inspect(conn).get_columns("t7_reflect")
            assert [(c["name"], c["nullable"]) for c in columns] == [("id", False),
                                                                     ("note", False)]
    finally:
        engine.dispose()
        with psycopg.connect(raw_url, autocommit=True) as raw:
            raw.execute("DROP TABLE t7_reflect")


def test_without_the_env_py_change_index_options_are_not_dropped(dsql_url: str,
                                                                 raw_url: str) -> None:
    """Stock Alembic with only the entry point: Alembic runs ops itself through the dialect's
    DDL compiler, which drops WHERE, USING and the postgresql_* options without a word; those
    are refused, and auroradsql_include works instead of crashing."""
    with psycopg.connect(raw_url, autocommit=True) as raw:
        raw.execute("CREATE TABLE t7_direct (id bigint PRIMARY KEY, a int, b text)")
    engine = sa.create_engine(sa_url(dsql_url, "auroradsql+psycopg"), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            mc = MigrationContext.configure(connection=conn.execution_options(
                isolation_level="AUTOCOMMIT"))
            direct = Operations(mc)
            for options in ({"postgresql_where": sa.text("a > 0")},
                            {"auroradsql_where": sa.text("a > 0")},
                            {"postgresql_using": "hash"}, {"postgresql_include": ["b"]}):
                with pytest.raises(DialectGap, match="would drop"):
                    direct.create_index("ix_t7_direct_x", "t7_direct", ["a"], **options)
            direct.create_index("ix_t7_direct_a", "t7_direct", ["a"], auroradsql_include=["b"])
        with psycopg.connect(dsql_url, autocommit=True) as check:
            job = check.execute("SELECT job_id FROM sys.jobs WHERE object_name = "
                                "'ix_t7_direct_a'").fetchone()
            assert job is not None
            check.execute("CALL sys.wait_for_job(%s)", (job[0],))
        assert scalar(raw_url, "SELECT pg_get_indexdef('ix_t7_direct_a'::regclass)").endswith(
            "(a) INCLUDE (b)")
    finally:
        engine.dispose()
        with psycopg.connect(raw_url, autocommit=True) as raw:
            raw.execute("DROP TABLE t7_direct")


@pytest.mark.parametrize("profile", ["current", "classic"])
def test_project_through_auroradsql_url(profile: str, tmp_path: Path,
                                        request: pytest.FixtureRequest) -> None:
    """Alembic's stock env.py with the one-line change, ``auroradsql+psycopg://`` in alembic.ini:
    the dialect is PostgreSQL's over psycopg, so the emulator takes it as it is."""
    url = request.getfixturevalue("dsql_url" if profile == "current" else "classic_url")
    cfg = Config(str(make_project(tmp_path, url, profile=profile, driver="auroradsql+psycopg")))
    if profile == "classic":  # r4's foreign key is refused: classic has none
        with pytest.raises(CommandError, match="classic profile has no foreign keys"):
            command.upgrade(cfg, "head")
        assert scalar(url, "SELECT version_num FROM alembic_version") == "r3"
        command.downgrade(cfg, "base")
        return
    command.upgrade(cfg, "head")
    try:
        check_common_ops(url)
    finally:
        command.downgrade(cfg, "base")
    assert scalar(url, "SELECT count(*) FROM alembic_version") == 0


def test_dialect_gaps_through_auroradsql_url(tmp_path: Path, dsql_url: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    cfg = Config(str(make_project(tmp_path, dsql_url, revisions=("g1",),
                                  driver="auroradsql+psycopg")))
    command.upgrade(cfg, "head")
    try:
        check_gaps_covered(dsql_url, capsys.readouterr().err)
    finally:
        command.downgrade(cfg, "base")
    assert scalar(dsql_url, "SELECT to_regclass('dg_events')") is None


@pytest.fixture(scope="module")
def iam_endpoint(tmp_path_factory: pytest.TempPathFactory,
                 private_target: PrivateTarget) -> Iterator[tuple[str, str]]:
    """An ``--iam`` emulator: (its dsql:// URL, a plain URL of its server for checking)."""
    with pytest.MonkeyPatch.context() as mp:
        isolate_aws(mp, AWS_ENV, tmp_path_factory.mktemp("iam-dialect-aws") / "none")
        with private_target("iam-dialect", iam=True) as instance:
            yield instance.url(), instance.raw_url()


def iam_project(root: Path, url: str, revisions: tuple[str, ...]) -> Config:
    """The project with an env.py that connects as AWS documents: ``create_dsql_engine``."""
    parts = urlsplit(url)
    ini = make_project(root, "postgresql://unused", revisions=revisions)
    env = ini.parent / "migrations" / "env.py"
    text = env.read_text()
    start = text.index("    connectable = engine_from_config(")
    end = text.index("    with connectable.connect() as connection:")
    env.write_text(text[:start] + CREATE_DSQL_ENGINE + "\n" + text[end:])
    cfg = Config(str(ini))
    cfg.set_main_option("dsql.host", endpoint_name(parse_qs(parts.query)["region"][0]))
    cfg.set_main_option("dsql.port", str(parts.port))
    cfg.set_main_option("dsql.sslrootcert", parse_qs(parts.query)["sslrootcert"][0])
    return cfg


def test_project_through_create_dsql_engine_with_iam(iam_endpoint: tuple[str, str],
                                                     tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """AWS's connector generates the tokens (for the emulator's cluster-shaped name), the
    emulator verifies them and the TLS name; the runner's own connections come from the same
    engine, each with a fresh token."""
    url, raw = iam_endpoint
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    common = iam_project(tmp_path / "common", url, ("r1", "r2", "r3", "r4"))
    command.upgrade(common, "head")
    try:
        check_common_ops(raw)
    finally:
        command.downgrade(common, "base")

    gaps = iam_project(tmp_path / "gaps", url, ("g1",))
    capsys.readouterr()
    command.upgrade(gaps, "head")
    try:
        check_gaps_covered(raw, capsys.readouterr().err)
    finally:
        command.downgrade(gaps, "base")
    assert scalar(raw, "SELECT to_regclass('dg_events')") is None
