from __future__ import annotations

from pathlib import Path

import pytest

from dsql_migrate.config import find_config_file, load_config
from dsql_migrate.errors import ConfigError, ExitCode


def test_no_file_gives_defaults(workdir: Path) -> None:
    config = load_config()
    assert config.path is None
    assert config.url is None
    assert config.profile().name == "current"


def test_dsql_migrate_toml_is_found_from_a_subdirectory(workdir: Path) -> None:
    (workdir / "dsql-migrate.toml").write_text('url = "postgresql://a@h/db"\nprofile = "classic"\n')
    sub = workdir / "a" / "b"
    sub.mkdir(parents=True)
    config = load_config(start=sub)
    assert config.path == workdir / "dsql-migrate.toml"
    assert config.url == "postgresql://a@h/db"
    assert config.profile().name == "classic"


def test_pyproject_table_is_used_only_when_present(workdir: Path) -> None:
    (workdir / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert find_config_file(workdir) is None
    (workdir / "pyproject.toml").write_text('[tool.dsql-migrate]\nprofile = "classic"\n')
    assert load_config(start=workdir).profile().name == "classic"


def test_dsql_migrate_toml_wins_over_pyproject(workdir: Path) -> None:
    (workdir / "pyproject.toml").write_text('[tool.dsql-migrate]\nprofile = "classic"\n')
    (workdir / "dsql-migrate.toml").write_text('profile = "current"\n')
    assert load_config(start=workdir).profile().name == "current"


def test_invalid_toml_names_file_and_line(workdir: Path) -> None:
    (workdir / "dsql-migrate.toml").write_text('url = "x"\nprofile = \n')
    with pytest.raises(ConfigError) as info:
        load_config(start=workdir)
    assert "dsql-migrate.toml" in str(info.value)
    assert "line 2" in str(info.value)
    assert info.value.exit_code == ExitCode.USAGE


def test_explicit_missing_file_is_a_usage_error(workdir: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(workdir / "nope.toml")


def test_limits_are_overridable(workdir: Path) -> None:
    (workdir / "dsql-migrate.toml").write_text("[limits]\nrows_per_transaction = 500\n")
    profile = load_config(start=workdir).profile()
    assert profile.limits.rows_per_transaction == 500
    assert profile.limits.indexes_per_table == 24


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[limits]\nrows_per_txn = 5\n", "unknown limit"),
        ("[limits]\nrows_per_transaction = -1\n", "positive integer"),
        ('profile = "nightly"\n', "unknown profile"),
        ("url = 5\n", "'url' must be a string"),
    ],
)
def test_bad_values_are_reported(workdir: Path, body: str, message: str) -> None:
    (workdir / "dsql-migrate.toml").write_text(body)
    config = load_config(start=workdir)
    with pytest.raises(ConfigError, match=message):
        _ = config.url
        config.profile()


@pytest.mark.parametrize("file, text", [
    ("dsql-migrate.toml", 'urll = "postgresql://a@h/db"\n'),
    ("pyproject.toml", '[tool.dsql-migrate]\nurll = "postgresql://a@h/db"\n'),
])
def test_unknown_key_is_refused_naming_key_and_file(workdir: Path, file: str, text: str) -> None:
    """A misspelt key must not silently fall back (``urll`` would target a new local emulator)."""
    (workdir / file).write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(start=workdir)
    assert "'urll'" in info.value.message and file in info.value.message
    assert info.value.hint is not None and "did you mean 'url'" in info.value.hint
    assert info.value.exit_code == ExitCode.USAGE


def test_unknown_table_is_refused(workdir: Path) -> None:
    (workdir / "dsql-migrate.toml").write_text("[runnr]\nparallel = 2\n")
    with pytest.raises(ConfigError) as info:
        load_config(start=workdir)
    assert "dsql-migrate.toml: unknown key 'runnr'" in info.value.message
