"""Alembic environment for Aurora DSQL (scaffolded by `dsql-migrate init`).

The one difference from a stock env.py is the import of `context` from dsql_migrate.alembic:
each revision is compiled to a DSQL-safe plan and run by dsql-migrate's resumable runner.
"""

from __future__ import annotations

from dsql_migrate.alembic import context
from dsql_migrate.alembic.engine import engine_from, offline_url

config = context.config

# Your models' MetaData, for `dsql-migrate revision --autogenerate` and `dsql-migrate check`:
# from myapp.models import Base
# target_metadata = Base.metadata
target_metadata = None


def run_migrations_offline() -> None:
    """`upgrade --sql`: the plans as an SQL script, without a database."""
    context.configure(url=offline_url(config), target_metadata=target_metadata,
                      literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = engine_from(config)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
