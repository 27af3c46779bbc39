"""Side (a)'s ``env.py``: Alembic's stock ``generic`` online ``env.py``, plus one hook.

The harness runs a whole history with *one* ``alembic upgrade heads`` on plain PostgreSQL, the
way projects run their histories (some depend on it: SQLAlchemy remembers within one run which
enum types it created, and optuna's history creates one type twice). The hook takes a schema
snapshot after each revision on the migration's own connection, inside the revision's
transaction (``transaction_per_migration``), so it sees exactly that revision's result.

A history whose project runs PostgreSQL on asyncpg (prefect) runs here as Alembic's ``async``
template does (``async_engine_from_config`` + ``run_sync``): some revisions depend on the
driver (asyncpg sends SQL without parameters as it is).
"""

import asyncio

from alembic import context
from sqlalchemy import engine_from_config, event, pool
from sqlalchemy.engine import Connection

config = context.config
hook = config.attributes.get("on_version_apply")
# when the plugin side is resynchronised: leaves out what DSQL cannot have (realworld.resync)
statement_filter = config.attributes.get("statement_filter")
# a project whose own env.py runs on an AUTOCOMMIT connection (dagster-postgres does) has
# revisions that need it (CREATE INDEX CONCURRENTLY); realworld.histories says which
options = {"isolation_level": "AUTOCOMMIT"} if config.attributes.get("autocommit") else {}


def do_run_migrations(connection: Connection) -> None:
    if statement_filter is not None:
        event.listen(connection, "before_cursor_execute", statement_filter, retval=True)
    context.configure(
        connection=connection, target_metadata=None, transaction_per_migration=True,
        on_version_apply=hook,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    # imported here: SQLAlchemy's asyncio needs greenlet, which only such histories bring
    from sqlalchemy.ext.asyncio import async_engine_from_config

    connectable = async_engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
        **options,
    )
    async with connectable.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await connectable.dispose()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url") or ""
    if "+asyncpg" in url:
        asyncio.run(run_async_migrations())
        return
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
        **options,
    )
    with connectable.connect() as connection:
        do_run_migrations(connection)


run_migrations_online()
