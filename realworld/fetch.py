"""Download (once, cached) and extract the pinned wheels a history needs.

Wheels come from the package registry through pip (``pip download --no-deps``) and are kept in
the cache directory; each history gets a *site* folder in the cache with its wheels extracted,
which :mod:`realworld.loader` puts on the import path. Nothing downloaded enters the
repository.

The cache may be shared by several runs at once (two terminals, CI jobs on one runner): each
history's downloads and extraction happen under an exclusive lock on ``<cache>/.lock``
(``fcntl.flock``), so a run never reads a site another run is still extracting, nor two runs
extract into one folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from .histories import History

DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) \
    / "dsql-migrate-realworld"


class FetchError(Exception):
    """A wheel could not be downloaded or extracted."""


def cache_dir() -> Path:
    """``$DSQL_MIGRATE_REALWORLD_CACHE``, else ``~/.cache/dsql-migrate-realworld``."""
    found = os.environ.get("DSQL_MIGRATE_REALWORLD_CACHE")
    return Path(found) if found else DEFAULT_CACHE


def wheel(requirement: str, cache: Path) -> Path:
    """The wheel of ``name==version``, downloaded into the cache unless it is there."""
    folder = cache / "wheels" / requirement.replace("==", "-")
    found = sorted(folder.glob("*.whl")) if folder.is_dir() else []
    if found:
        return found[0]
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                   "--only-binary=:all:", "--disable-pip-version-check", "-d", tmp, requirement]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise FetchError(f"pip download {requirement} failed: "
                             + (done.stderr.strip().splitlines() or ["no wheel"])[-1])
        try:
            Path(tmp).rename(folder)
        except OSError:
            if not sorted(folder.glob("*.whl")):  # not another run that got there first
                raise
    return sorted(folder.glob("*.whl"))[0]


@contextlib.contextmanager
def locked(cache: Path) -> Iterator[None]:
    """The cache to ourselves for the block (an exclusive ``flock`` on ``<cache>/.lock``,
    released when the block ends or the process dies)."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def site(history: History, cache: Path | None = None) -> Path:
    """The history's extracted wheels (its project and its extra wheels), made once."""
    cache = cache or cache_dir()
    with locked(cache):
        return _site(history, cache)


def _site(history: History, cache: Path) -> Path:
    target = cache / "site" / f"{history.name}-{history.version}"
    requirements = (history.requirement, *history.wheels)
    stamp = target / ".complete"
    if stamp.is_file() and stamp.read_text() == "\n".join(requirements):
        return target
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for requirement in requirements:
        with zipfile.ZipFile(wheel(requirement, cache)) as archive:
            archive.extractall(target)
    stamp.write_text("\n".join(requirements))
    return target


def versions_path(history: History, cache: Path | None = None) -> Path:
    path = site(history, cache) / history.versions_dir
    if not path.is_dir():
        raise FetchError(f"{history.requirement} has no folder {history.versions_dir}")
    return path
