"""Side (a)'s PostgreSQL server: plain PostgreSQL with the extensions a history may need.

Stock Alembic must run every history on plain PostgreSQL; some histories create extensions
(prefect: ``CREATE EXTENSION pg_trgm``), which a server without its ``contrib`` modules cannot
make (the ``embedded-pg`` build the emulator prefers has none). So side (a) runs on a server of
its own, started from the PostgreSQL installation on this machine that offers the *most*
extensions (newest first among equals): every place the emulator's binary search knows
(``$DSQL_MIGRATE_PG_BIN``, ``pg_config``, ``/usr/lib/postgresql/<n>``, ``/usr/pgsql-<n>``,
Homebrew, ``PATH``, the ``embedded-pg`` build). ``$DSQL_MIGRATE_REALWORLD_STOCK_PG_BIN`` names
one explicitly. The server is started like the emulator's (as an unprivileged account when we
are root, see :mod:`dsql_migrate.local.accounts`), and side (a) connects as its superuser, as a
project's own deployment may (an extension that is not *trusted* needs one).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ENV_BIN = "DSQL_MIGRATE_REALWORLD_STOCK_PG_BIN"


@dataclass(frozen=True)
class Candidate:
    bin_dir: Path
    major: int
    extensions: int  # ``*.control`` files in its extension folder

    def __str__(self) -> str:
        return f"PostgreSQL {self.major} in {self.bin_dir} ({self.extensions} extensions)"


def _share_dirs(bin_dir: Path) -> Iterator[Path]:
    """Where an installation keeps ``extension/``: what its own ``pg_config`` says, else the
    usual layouts beside ``bin``."""
    pg_config = bin_dir / "pg_config"
    if os.access(pg_config, os.X_OK):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([str(pg_config), "--sharedir"], capture_output=True,
                                 text=True, timeout=10, check=True).stdout.strip()
            if out:
                yield Path(out)
    yield bin_dir.parent / "share" / "postgresql"
    yield bin_dir.parent / "share"


def extension_count(bin_dir: Path) -> int:
    for share in _share_dirs(bin_dir):
        folder = share / "extension"
        if folder.is_dir():
            return len(list(folder.glob("*.control")))
    return 0


def candidates() -> list[Candidate]:
    """Every PostgreSQL installation found, best for side (a) first."""
    from dsql_migrate.local.binaries import (
        REQUIRED,
        candidate_dirs,
        server_major_version,
    )

    explicit = os.environ.get(ENV_BIN)
    dirs = [Path(explicit)] if explicit else list(candidate_dirs())
    found: dict[Path, Candidate] = {}
    for directory in dirs:
        if not all(os.access(directory / n, os.X_OK) for n in REQUIRED):
            continue
        real = (directory / "postgres").resolve().parent
        if real in found:
            continue
        found[real] = Candidate(real, server_major_version(real), extension_count(real))
    return sorted(found.values(), key=lambda c: (c.extensions, c.major), reverse=True)


@contextlib.contextmanager
def stock_server(directory: Path) -> Iterator[tuple[str, str]]:
    """(superuser URL, one line saying which server) of a plain PostgreSQL server for side
    (a), started in ``directory`` and destroyed afterwards."""
    from dsql_migrate.local.binaries import PgBinaries
    from dsql_migrate.local.postgres import SUPERUSER, EmbeddedPostgres

    found = candidates()
    if not found:
        raise RuntimeError("no PostgreSQL server installation found for stock Alembic "
                           f"(set {ENV_BIN} to the bin directory of one)")
    best = found[0]
    server = EmbeddedPostgres(directory, binaries=PgBinaries(best.bin_dir, best.major),
                              allow_old=True)
    server.start()
    try:
        yield server.url(SUPERUSER), str(best)
    finally:
        server.destroy()
