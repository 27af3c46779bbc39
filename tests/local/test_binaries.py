from __future__ import annotations

from pathlib import Path

import pytest

from dsql_migrate.errors import ConfigError, ExitCode
from dsql_migrate.local import binaries
from dsql_migrate.local.binaries import ENV_BIN, find_binaries


def test_env_var_pointing_at_an_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        find_binaries({ENV_BIN: str(tmp_path)})
    assert "initdb" in str(info.value) and "postgres" in str(info.value)
    assert info.value.exit_code == ExitCode.USAGE


def test_nothing_found_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(binaries, "candidate_dirs", lambda: iter(()))
    with pytest.raises(ConfigError) as info:
        find_binaries({})
    assert info.value.hint is not None
    assert "apt-get install postgresql" in info.value.hint
    assert "brew install" in info.value.hint
    assert ENV_BIN in info.value.hint


def test_directories_without_all_programs_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "initdb").write_text("#!/bin/sh\n")
    (partial / "initdb").chmod(0o755)
    real = find_binaries({})
    monkeypatch.setattr(binaries, "candidate_dirs", lambda: iter((partial, real.bin_dir)))
    assert find_binaries({}).bin_dir == real.bin_dir


def test_newest_version_first(tmp_path: Path) -> None:
    for version in ("9.6", "15", "16", "13"):
        (tmp_path / version / "bin").mkdir(parents=True)
    found = binaries._newest_first(tmp_path, "*")
    assert [p.parent.name for p in found] == ["16", "15", "13", "9.6"]


def test_real_binaries_are_found_with_their_version() -> None:
    found = find_binaries({})
    assert (found.bin_dir / "initdb").exists()
    assert found.major >= 12


def test_bundled_pgserver_binaries_are_the_last_resort(monkeypatch: pytest.MonkeyPatch) -> None:
    bundled = binaries._pgserver_bindir()
    if bundled is None:
        pytest.skip("the optional pgserver package is not installed (Python >= 3.13)")
    assert list(binaries.candidate_dirs())[-1] == bundled
    monkeypatch.setattr(binaries, "_pg_config_bindir", lambda: None)
    monkeypatch.setattr(binaries, "_newest_first", lambda *a, **k: [])
    monkeypatch.setattr(binaries.shutil, "which", lambda name: None)
    monkeypatch.setattr(binaries.Path, "is_dir", lambda self: False)
    found = find_binaries({})
    assert found.bin_dir == bundled
    assert found.major >= 16


def _fake_server(directory: Path, version: str) -> Path:
    """A directory with initdb, pg_ctl and a postgres that says it is ``version``."""
    directory.mkdir(parents=True)
    for name in binaries.REQUIRED:
        script = directory / name
        script.write_text(f"#!/bin/sh\necho '{name} (PostgreSQL) {version}'\n")
        script.chmod(0o755)
    return directory


def test_postgresql_16_is_preferred_over_an_older_server_found_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = _fake_server(tmp_path / "15" / "bin", "15.8")
    new = _fake_server(tmp_path / "bundled" / "bin", "16.2")
    monkeypatch.setattr(binaries, "candidate_dirs", lambda: iter((old, new)))
    found = find_binaries({})
    assert (found.bin_dir, found.major) == (new, 16)


def test_only_an_older_server_is_refused_unless_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = _fake_server(tmp_path / "15" / "bin", "15.8")
    monkeypatch.setattr(binaries, "candidate_dirs", lambda: iter((old,)))
    with pytest.raises(ConfigError) as info:
        find_binaries({})
    assert info.value.exit_code == ExitCode.USAGE
    assert "PostgreSQL 16 or newer" in str(info.value) and f"PostgreSQL 15 in {old}" in str(
        info.value)
    assert info.value.hint is not None
    assert "--allow-old-postgres" in info.value.hint and "embedded-pg" in info.value.hint
    assert find_binaries({}, allow_old=True).bin_dir == old
    assert find_binaries({binaries.ENV_ALLOW_OLD: "1"}).major == 15


def test_an_explicit_older_server_is_refused_unless_allowed(tmp_path: Path) -> None:
    old = _fake_server(tmp_path / "15" / "bin", "15.8")
    with pytest.raises(ConfigError, match="is PostgreSQL 15") as info:
        find_binaries({ENV_BIN: str(old)})
    assert info.value.exit_code == ExitCode.USAGE
    assert find_binaries({ENV_BIN: str(old), binaries.ENV_ALLOW_OLD: "yes"}).major == 15
