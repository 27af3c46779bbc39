"""The engine ``env.py`` connects with: ``sqlalchemy.url`` from ``alembic.ini`` when set, else the
dsql-migrate target (``--url``, ``$DSQL_MIGRATE_URL``, the config file, the local emulator)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.config import Config

from ..config import load_config
from ..connect import Connector, resolve_target

#: the key of the target's :class:`~dsql_migrate.connect.Connector` in ``config.attributes``
CONNECTOR = "dsql_migrate.connector"
#: the execution option that marks an engine made by :func:`engine_from` for the target
TARGET_OPTION = "dsql_migrate_target"


def target_connector(config: Config) -> Connector:
    """The connector of the target (the CLI puts it in ``config.attributes``)."""
    given = config.attributes.get(CONNECTOR)
    if isinstance(given, Connector):
        return given
    connector = Connector(resolve_target(None, load_config()))
    config.attributes[CONNECTOR] = connector
    return connector


def engine_from(config: Config) -> sa.Engine:
    """An engine for ``env.py``: ``sqlalchemy.url`` if the ini has one, else the target.

    Every connection of the target's engine comes from its connector: on ``dsql://`` targets
    each one with a fresh IAM token, so a long upgrade that reconnects never presents an
    expired one."""
    url = config.get_main_option("sqlalchemy.url")
    if url and CONNECTOR not in config.attributes:
        return sa.create_engine(url, poolclass=sa.pool.NullPool, **dsql_engine_options(url))
    connector = target_connector(config)

    def creator() -> Any:
        return connector.connect()

    return sa.create_engine("postgresql+psycopg://", creator=creator, poolclass=sa.pool.NullPool,
                            use_native_hstore=False, execution_options={TARGET_OPTION: True})


def is_target_connection(connection: sa.Connection) -> bool:
    """Whether ``connection`` comes from the target's engine (:func:`engine_from`)."""
    return bool(connection.get_execution_options().get(TARGET_OPTION))


def dsql_engine_options(url: str) -> dict[str, Any]:
    """Engine options DSQL needs: psycopg's dialect looks up the hstore type in a nested
    transaction (a SAVEPOINT, which DSQL rejects) unless native hstore is off."""
    return {"use_native_hstore": False} if "+psycopg" in url.split("://", 1)[0] else {}


def offline_url(config: Config) -> str:
    return config.get_main_option("sqlalchemy.url") or "postgresql+psycopg://"


__all__ = ["CONNECTOR", "TARGET_OPTION", "dsql_engine_options", "engine_from",
           "is_target_connection", "offline_url", "target_connector"]
