"""The engine ``env.py`` connects with: ``sqlalchemy.url`` from ``alembic.ini`` when set, else the
dsql-migrate target (``--url``, ``$DSQL_MIGRATE_URL``, the config file, the local emulator)."""

from __future__ import annotations

from typing import Any

import psycopg
import sqlalchemy as sa
from alembic.config import Config

from ..config import load_config
from ..connect import CONNECT_TIMEOUT_SECONDS, conninfo_for, resolve_target

CONNINFO = "dsql_migrate.conninfo"


def target_conninfo(config: Config) -> str:
    """The libpq connection string of the target (the CLI puts it in ``config.attributes``)."""
    given = config.attributes.get(CONNINFO)
    if isinstance(given, str):
        return given
    conninfo = conninfo_for(resolve_target(None, load_config()))
    config.attributes[CONNINFO] = conninfo
    return conninfo


def engine_from(config: Config) -> sa.Engine:
    """An engine for ``env.py``: ``sqlalchemy.url`` if the ini has one, else the target."""
    url = config.get_main_option("sqlalchemy.url")
    if url and CONNINFO not in config.attributes:
        return sa.create_engine(url, poolclass=sa.pool.NullPool, **dsql_engine_options(url))
    conninfo = target_conninfo(config)

    def creator() -> Any:
        return psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT_SECONDS)

    return sa.create_engine("postgresql+psycopg://", creator=creator, poolclass=sa.pool.NullPool,
                            use_native_hstore=False)


def dsql_engine_options(url: str) -> dict[str, Any]:
    """Engine options DSQL needs: psycopg's dialect looks up the hstore type in a nested
    transaction (a SAVEPOINT, which DSQL rejects) unless native hstore is off."""
    return {"use_native_hstore": False} if "+psycopg" in url.split("://", 1)[0] else {}


def offline_url(config: Config) -> str:
    return config.get_main_option("sqlalchemy.url") or "postgresql+psycopg://"


__all__ = ["dsql_engine_options", "engine_from", "offline_url", "target_conninfo"]
