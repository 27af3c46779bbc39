from __future__ import annotations

from pathlib import Path

import pytest

from dsql_migrate.config import Config
from dsql_migrate.connect import redact_url, resolve_target
from dsql_migrate.errors import ConfigError


def test_resolution_order() -> None:
    config = Config(path=Path("cfg.toml"), data={"url": "postgresql://c@cfg/db"})
    env = {"DSQL_MIGRATE_URL": "postgresql://e@env/db"}
    assert resolve_target("postgresql://u@flag/db", config, env=env).source == "--url"
    assert resolve_target(None, config, env=env).url == "postgresql://e@env/db"
    assert resolve_target(None, config, env={}).source == "cfg.toml"
    default = resolve_target(None, Config(), env={})
    assert default.kind == "local"
    assert default.source == "default"


def test_local_keyword_and_directory() -> None:
    target = resolve_target("local", Config(), env={}, local_dir=Path("/tmp/x"))
    assert target.kind == "local"
    assert target.local_dir == Path("/tmp/x")
    assert "local" in target.display


def test_unknown_scheme_is_a_usage_error() -> None:
    with pytest.raises(ConfigError, match="unrecognised target"):
        resolve_target("mysql://root:hunter2@db/x", Config(), env={})


def test_errors_never_show_the_password() -> None:
    for given in ("mysql://root:hunter2@db/x", "host=127.0.0.1 user=admin password=hunter2"):
        with pytest.raises(ConfigError) as info:
            resolve_target(given, Config(), env={})
        assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://admin:s3cret@h:5432/postgres", "postgresql://admin:***@h:5432/postgres"),
        ("postgresql://admin@h/postgres", "postgresql://admin@h/postgres"),
        ("postgresql://h/db?password=s3cret&sslmode=require",
         "postgresql://h/db?password=***&sslmode=require"),
        ("dsql://admin@x.dsql.us-east-1.on.aws?token=abc", "dsql://admin@x.dsql.us-east-1.on.aws?token=***"),
        # libpq's key=value form, with spaces around '=' and a quoted value holding a space
        ("host=h user=admin password=s3cret dbname=x", "host=h user=admin password=*** dbname=x"),
        ("host=h password = 's3 cret' port=5432", "host=h password=*** port=5432"),
        ("host=h PASSWORD='it\\'s' sslmode=require", "host=h PASSWORD=*** sslmode=require"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected
