"""Find PostgreSQL server binaries (``initdb``, ``pg_ctl``, ``postgres``) on this machine.

Search order: ``$DSQL_MIGRATE_PG_BIN``, ``pg_config --bindir``, ``/usr/lib/postgresql/<newest>/bin``
(Debian, Ubuntu), ``/usr/pgsql-<newest>/bin`` (RHEL, Fedora), Homebrew and Postgres.app
locations, ``PATH``, and last the PostgreSQL build that the optional ``pgserver`` package ships
in its wheel (``pip install 'dsql-migrate[embedded-pg]'``). The first directory that holds all
three programs wins.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

log = logging.getLogger(__name__)

ENV_BIN = "DSQL_MIGRATE_PG_BIN"
REQUIRED = ("initdb", "pg_ctl", "postgres")

INSTALL_HINT = (
    "install the PostgreSQL server (Debian/Ubuntu: 'apt-get install postgresql'; "
    "Fedora/RHEL: 'dnf install postgresql-server'; macOS: 'brew install postgresql@16'), "
    "or 'pip install dsql-migrate[embedded-pg]' (Python 3.10 to 3.12), "
    f"or point {ENV_BIN} at the directory that holds initdb, pg_ctl and postgres"
)


@dataclass(frozen=True)
class PgBinaries:
    """A directory of PostgreSQL server programs and their major version."""

    bin_dir: Path
    major: int

    def path(self, program: str) -> str:
        return str(self.bin_dir / program)


def _version_key(path: Path) -> tuple[int, ...]:
    numbers = re.findall(r"\d+", path.name)
    return tuple(int(n) for n in numbers) or (-1,)


def _newest_first(pattern_parent: Path, glob: str, suffix: str = "bin") -> list[Path]:
    if not pattern_parent.is_dir():
        return []
    found = [p / suffix for p in pattern_parent.glob(glob)]
    return sorted(found, key=lambda p: _version_key(p.parent), reverse=True)


def _pg_config_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if not pg_config:
        return None
    try:
        out = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out) if out else None


def candidate_dirs() -> Iterator[Path]:
    """Directories to try, in order (after ``$DSQL_MIGRATE_PG_BIN``)."""
    bindir = _pg_config_bindir()
    if bindir:
        yield bindir
    yield from _newest_first(Path("/usr/lib/postgresql"), "*")
    yield from _newest_first(Path("/usr"), "pgsql-*")
    for prefix in (Path("/opt/homebrew"), Path("/usr/local")):
        yield from _newest_first(prefix / "opt", "postgresql@*")
        yield prefix / "opt" / "postgresql" / "bin"
    yield Path("/Applications/Postgres.app/Contents/Versions/latest/bin")
    initdb = shutil.which("initdb")
    if initdb:
        yield Path(initdb).resolve().parent
    bundled = _pgserver_bindir()
    if bundled:
        yield bundled


def _pgserver_bindir() -> Path | None:
    """The binaries inside the optional ``pgserver`` wheel, found without importing it."""
    try:
        spec = importlib.util.find_spec("pgserver")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _has_all(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in REQUIRED)


def server_major_version(bin_dir: Path) -> int:
    """The major version printed by ``postgres --version`` (e.g. 15 for 15.18)."""
    try:
        out = subprocess.run(
            [str(bin_dir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(
            f"{bin_dir / 'postgres'} does not run: {exc}", hint=INSTALL_HINT
        ) from None
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    if not match:
        raise ConfigError(f"cannot read the PostgreSQL version from {out.strip()!r}")
    return int(match.group(1))


def find_binaries(env: dict[str, str] | None = None) -> PgBinaries:
    """The PostgreSQL server binaries to use, or a :class:`ConfigError` saying how to get some."""
    environ = os.environ if env is None else env
    explicit = environ.get(ENV_BIN)
    if explicit:
        directory = Path(explicit).expanduser()
        if not _has_all(directory):
            missing = [n for n in REQUIRED if not os.access(directory / n, os.X_OK)]
            raise ConfigError(
                f"{ENV_BIN}={explicit} does not hold {', '.join(missing)}",
                hint="set it to the bin directory of a PostgreSQL server installation",
            )
        return PgBinaries(directory, server_major_version(directory))
    seen: set[Path] = set()
    for directory in candidate_dirs():
        if directory in seen:
            continue
        seen.add(directory)
        if _has_all(directory):
            log.debug("using PostgreSQL binaries in %s", directory)
            return PgBinaries(directory, server_major_version(directory))
    raise ConfigError("no PostgreSQL server binaries found on this machine", hint=INSTALL_HINT)
