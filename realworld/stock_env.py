"""Side (a)'s ``env.py``: Alembic's stock ``generic`` online ``env.py``, plus one hook.

The harness runs a whole history with *one* ``alembic upgrade heads`` on plain PostgreSQL, the
way projects run their histories (some depend on it: SQLAlchemy remembers within one run which
enum types it created, and optuna's history creates one type twice). The hook takes a schema
snapshot after each revision on the migration's own connection, inside the revision's
transaction (``transaction_per_migration``), so it sees exactly that revision's result.
"""

from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config
hook = config.attributes.get("on_version_apply")
# a project whose own env.py runs on an AUTOCOMMIT connection (dagster-postgres does) has
# revisions that need it (CREATE INDEX CONCURRENTLY); realworld.histories says which
options = {"isolation_level": "AUTOCOMMIT"} if config.attributes.get("autocommit") else {}


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
        **options,
    )
    with connectable.connect() as connection:
        context.configure(
            connection=connection, target_metadata=None, transaction_per_migration=True,
            on_version_apply=hook,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
