"""Project configuration: ``dsql-migrate.toml`` or ``[tool.dsql-migrate]`` in ``pyproject.toml``.

The file is looked for in the current directory and its parents; the first directory that has
either file wins (``dsql-migrate.toml`` before ``pyproject.toml``). Every section is optional.
Parts of the tool read their own tables (``[lint]``, ``[runner]``, ...) from :attr:`Config.data`.

Example ``dsql-migrate.toml``::

    url = "postgresql://admin@127.0.0.1:5433/postgres"
    profile = "current"

    [limits]
    rows_per_transaction = 3000
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import ConfigError
from .profiles import DEFAULT_PROFILE, Profile, get_profile

if TYPE_CHECKING:
    from pathlib import Path

# Without a configuration file (the common case of ``lint`` in a commit hook or an editor),
# nothing here imports pathlib, tomllib, difflib or dataclasses: together they cost more than
# linting a small file (issue 18: start-up). They are imported where a file is read.

CONFIG_FILE = "dsql-migrate.toml"
#: the top-level keys, each with what it holds; a key not here is refused (a misspelt ``urll``
#: must not quietly leave the target to the default local emulator)
KEYS: dict[str, type] = {"url": str, "profile": str, "limits": dict, "dsql": dict,
                         "runner": dict, "lint": dict}
PYPROJECT_FILE = "pyproject.toml"
PYPROJECT_TABLE = "dsql-migrate"


class Config(NamedTuple):
    """The loaded configuration. ``path`` is None when no file was found."""

    path: Path | None = None
    data: Mapping[str, Any] = MappingProxyType({})

    @property
    def url(self) -> str | None:
        value = self.data.get("url")
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{self.path}: 'url' must be a string")
        return value

    @property
    def profile_name(self) -> str:
        value = self.data.get("profile", DEFAULT_PROFILE)
        if not isinstance(value, str):
            raise ConfigError(f"{self.path}: 'profile' must be a string")
        return value

    def profile(self, override: str | None = None) -> Profile:
        """The profile named on the command line, else in the file, with limit overrides."""
        profile = get_profile(override or self.profile_name)
        limits = self.section("limits")
        return profile.with_limits(limits) if limits else profile

    def section(self, name: str) -> Mapping[str, Any]:
        value = self.data.get(name, {})
        if not isinstance(value, Mapping):
            raise ConfigError(f"{self.path}: [{name}] must be a table")
        return value


def _read_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib
    try:
        with path.open("rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
            return data
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already carries "(at line L, column C)"
        raise ConfigError(
            f"{path}: invalid TOML: {exc}", hint="fix the file or remove it"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def find_config_file(start: Path | None = None) -> Path | None:
    """The configuration file that applies in ``start`` (default: the current directory)."""
    # os.path, not pathlib, for the walk: a Path is made only for a file found
    directory = os.path.realpath(start if start is not None else os.getcwd())
    while True:
        candidate = os.path.join(directory, CONFIG_FILE)
        if os.path.isfile(candidate):
            return _as_path(candidate)
        pyproject = os.path.join(directory, PYPROJECT_FILE)
        if os.path.isfile(pyproject) and PYPROJECT_TABLE in _read_toml(
                _as_path(pyproject)).get("tool", {}):
            return _as_path(pyproject)
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def _as_path(name: str) -> Path:
    from pathlib import Path

    return Path(name)


def load_config(path: Path | None = None, *, start: Path | None = None) -> Config:
    """Load ``path``, or the file found from ``start`` upwards, or an empty configuration."""
    if path is None:
        path = find_config_file(start)
        if path is None:
            return Config()
    elif not path.is_file():
        raise ConfigError(f"configuration file {path} does not exist")
    data = _read_toml(path)
    if path.name == PYPROJECT_FILE:
        data = data.get("tool", {}).get(PYPROJECT_TABLE, {})
    _check_keys(path, data)
    return Config(path=path, data=data)


def _check_keys(path: Path, data: Mapping[str, Any]) -> None:
    where = f"[tool.{PYPROJECT_TABLE}] in {path}" if path.name == PYPROJECT_FILE else str(path)
    for key in data:
        if key not in KEYS:
            import difflib

            close = difflib.get_close_matches(key, list(KEYS), n=1)
            known = ", ".join(k if KEYS[k] is str else f"[{k}]" for k in KEYS)
            raise ConfigError(
                f"{where}: unknown key {key!r}",
                hint=(f"did you mean {close[0]!r}? " if close else "") + f"known: {known}")
