"""Shared fixtures. Unit tests need none of these; anything that uses the local target is marked
``integration`` automatically, and all of them share one embedded server per test session."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from dsql_migrate.local import LocalInstance
from dsql_migrate.local.proxy import Faults

# the test modules import their shared helpers as '_support' (tests/_support.py)
sys.path.insert(0, str(Path(__file__).parent))
import _support
from _support import PrivateTarget

DB_FIXTURES = {"local_instance", "dsql_url", "raw_url", "conn", "raw_conn", "classic_url",
               "emulator", "scratch_url", "superuser_url", "classic_instance", "private_target"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if DB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def private_target(tmp_path_factory: pytest.TempPathFactory) -> PrivateTarget:
    """Start a local target of a test module's own: ``with private_target("roles",
    profile="classic") as instance: ...`` (see :func:`_support.private_target`: destroyed
    afterwards, and reaped if pytest is killed)."""
    return partial(_support.private_target, tmp_path_factory)


@pytest.fixture(scope="session")
def local_instance(private_target: PrivateTarget) -> Iterator[LocalInstance]:
    """One local target for the whole test session, removed at the end."""
    with private_target("local") as instance:
        yield instance


@pytest.fixture(scope="session")
def classic_instance(private_target: PrivateTarget) -> Iterator[LocalInstance]:
    """A second local target, with the ``classic`` profile."""
    with private_target("classic", profile="classic") as instance:
        yield instance


@pytest.fixture(scope="session")
def classic_url(classic_instance: LocalInstance) -> str:
    """The emulator URL of the ``classic`` local target."""
    return classic_instance.url()


@pytest.fixture
def emulator(local_instance: LocalInstance) -> Iterator[LocalInstance]:
    """The session's local target, for tests that change fault injection or the transaction
    age limit with ``emulator.set_faults(...)``; both are reset afterwards."""
    yield local_instance
    local_instance.set_faults(Faults(), transaction_age=300)


@pytest.fixture(scope="session")
def dsql_url(local_instance: LocalInstance) -> str:
    """The URL users connect to (DSQL's rules apply: the emulator)."""
    return local_instance.url()


@pytest.fixture(scope="session")
def raw_url(local_instance: LocalInstance) -> str:
    """The embedded PostgreSQL, directly (no DSQL rules), as ``admin`` with its password (not a
    superuser, as on DSQL): for setting up and checking."""
    return local_instance.raw_url()


@pytest.fixture(scope="session")
def superuser_url(local_instance: LocalInstance) -> str:
    """The embedded PostgreSQL's bootstrap superuser ``postgres``, with its password: only for
    what admin may not do."""
    return local_instance.superuser_url()


@pytest.fixture
def conn(dsql_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(dsql_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def raw_conn(raw_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(raw_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def scratch_url(raw_url: str, superuser_url: str) -> Iterator[str]:
    """A fresh, empty database on the embedded server (direct, no DSQL rules), dropped after."""
    name = f"scratch_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(raw_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(raw_url)._replace(path=f"/{name}"))
    finally:
        # as the superuser: FORCE may have to end a backend of another role (autovacuum)
        with psycopg.connect(superuser_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh current directory with no configuration and no DSQL_MIGRATE_* variables; a
    local emulator a command started in it (the default target, or a scratch server for a
    desired .sql file) is destroyed afterwards."""
    monkeypatch.chdir(tmp_path)
    for name in ("DSQL_MIGRATE_URL", "DSQL_MIGRATE_LOCAL_DIR"):
        monkeypatch.delenv(name, raising=False)
    yield tmp_path
    default = tmp_path / ".dsql-migrate" / "local"
    if default.exists():
        LocalInstance(default).destroy()
