"""Find PostgreSQL server binaries (``initdb``, ``pg_ctl``, ``postgres``) on this machine.

Search order: ``$DSQL_MIGRATE_PG_BIN``, ``pg_config --bindir``, ``/usr/lib/postgresql/<newest>/bin``
(Debian, Ubuntu), ``/usr/pgsql-<newest>/bin`` (RHEL, Fedora), Homebrew and Postgres.app
locations, ``PATH``, and last the PostgreSQL build that the optional ``pgserver`` package ships
in its wheel (``pip install 'dsql-migrate[embedded-pg]'``). The first directory that holds all
three programs of PostgreSQL 16 or newer (DSQL is PostgreSQL 16) wins, so the bundled build is
preferred over an older system server. An older server is used only when asked for explicitly
(``allow_old``: ``local start --allow-old-postgres`` or ``$DSQL_MIGRATE_ALLOW_OLD_POSTGRES=1``),
and :data:`OLD_SERVER_DIFFERENCES` says what then differs from DSQL.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

log = logging.getLogger(__name__)

ENV_BIN = "DSQL_MIGRATE_PG_BIN"
ENV_ALLOW_OLD = "DSQL_MIGRATE_ALLOW_OLD_POSTGRES"
REQUIRED = ("initdb", "pg_ctl", "postgres")
#: DSQL is PostgreSQL 16: older servers lack its syntax and functions
MIN_MAJOR = 16

#: what differs from DSQL when the emulator runs on a server older than :data:`MIN_MAJOR`
OLD_SERVER_DIFFERENCES = (
    "PostgreSQL 16 syntax that DSQL accepts is rejected (e.g. a column's STORAGE clause in "
    "CREATE TABLE), and PostgreSQL 16 functions are missing (e.g. pg_input_is_valid, which the "
    "planner's checks use)",
    "only admin can connect through the emulator: roles made with CREATE ROLE ... LOGIN cannot "
    "(PostgreSQL 15's pg_ident.conf cannot map to every role)",
    "admin's CREATEROLE lets it grant itself any non-superuser role, such as "
    "pg_execute_server_program (PostgreSQL 16 requires ADMIN OPTION)",
)

INSTALL_HINT = (
    "install the PostgreSQL server (Debian/Ubuntu: 'apt-get install postgresql'; "
    "Fedora/RHEL: 'dnf install postgresql-server'; macOS: 'brew install postgresql@16'), "
    "or 'pip install dsql-migrate[embedded-pg]' (Python 3.10 to 3.12), "
    f"or point {ENV_BIN} at the directory that holds initdb, pg_ctl and postgres"
)


def allow_old_from_env(env: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if env is None else env
    return environ.get(ENV_ALLOW_OLD, "").strip().lower() in ("1", "true", "yes", "on")


def too_old_error(found: str) -> ConfigError:
    return ConfigError(
        f"the local target needs PostgreSQL {MIN_MAJOR} or newer (DSQL is PostgreSQL "
        f"{MIN_MAJOR}); {found}",
        hint=f"'pip install dsql-migrate[embedded-pg]' (ships PostgreSQL {MIN_MAJOR}), install "
        f"PostgreSQL {MIN_MAJOR} (e.g. 'apt-get install postgresql-{MIN_MAJOR}') or point "
        f"{ENV_BIN} at one; or run the older server anyway with 'local start "
        "--allow-old-postgres', which lists what then differs from DSQL",
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


def find_binaries(env: dict[str, str] | None = None, *, allow_old: bool | None = None
                  ) -> PgBinaries:
    """The PostgreSQL server binaries to use, or a :class:`ConfigError` saying how to get some.

    The first candidate of PostgreSQL :data:`MIN_MAJOR` or newer; with ``allow_old`` (default:
    ``$DSQL_MIGRATE_ALLOW_OLD_POSTGRES``) the first candidate of any version when none is.
    """
    environ = os.environ if env is None else env
    if allow_old is None:
        allow_old = allow_old_from_env(environ)
    explicit = environ.get(ENV_BIN)
    if explicit:
        directory = Path(explicit).expanduser()
        if not _has_all(directory):
            missing = [n for n in REQUIRED if not os.access(directory / n, os.X_OK)]
            raise ConfigError(
                f"{ENV_BIN}={explicit} does not hold {', '.join(missing)}",
                hint="set it to the bin directory of a PostgreSQL server installation",
            )
        chosen = PgBinaries(directory, server_major_version(directory))
        if chosen.major < MIN_MAJOR and not allow_old:
            raise too_old_error(f"{ENV_BIN}={explicit} is PostgreSQL {chosen.major}")
        return chosen
    seen: set[Path] = set()
    older: list[PgBinaries] = []
    for directory in candidate_dirs():
        if directory in seen:
            continue
        seen.add(directory)
        if _has_all(directory):
            found = PgBinaries(directory, server_major_version(directory))
            if found.major >= MIN_MAJOR:
                log.debug("using PostgreSQL %s binaries in %s", found.major, directory)
                return found
            older.append(found)
    if older and allow_old:
        log.debug("using the older PostgreSQL %s binaries in %s", older[0].major,
                  older[0].bin_dir)
        return older[0]
    if older:
        listed = ", ".join(f"PostgreSQL {b.major} in {b.bin_dir}" for b in older)
        raise too_old_error(f"found only {listed}")
    raise ConfigError("no PostgreSQL server binaries found on this machine", hint=INSTALL_HINT)
