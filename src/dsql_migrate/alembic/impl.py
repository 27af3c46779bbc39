"""Alembic impls for Aurora DSQL.

- ``auroradsql`` (AWS's ``aurora-dsql-sqlalchemy`` dialect): without an impl registered under
  that name Alembic fails with ``KeyError: 'auroradsql'``. :class:`AuroraDsqlImpl` is
  PostgreSQL's impl with ``transactional_ddl`` off, and Alembic's PostgreSQL-only DDL
  constructs (``RENAME``, column comments, ``ALTER COLUMN TYPE ... USING``) are compiled for
  ``auroradsql`` exactly as for ``postgresql``.
- ``postgresql`` (the emulator, plain URLs) keeps Alembic's impl; DSQL mode is the
  ``transactional_ddl=False`` that :func:`dsql_migrate.alembic.context.configure` passes.

Defining the class registers it (Alembic's impls register by their ``__dialect__``).
"""

from __future__ import annotations

from typing import Any

from alembic.ddl import postgresql as alembic_pg
from alembic.ddl.base import (
    AddColumn,
    ColumnComment,
    ColumnDefault,
    ColumnName,
    ColumnNullable,
    ColumnType,
    DropColumn,
    RenameTable,
)
from alembic.ddl.impl import _impls
from alembic.ddl.postgresql import PostgresqlImpl
from sqlalchemy.ext.compiler import compiles

DIALECT = "auroradsql"


class AuroraDsqlImpl(PostgresqlImpl):
    """PostgreSQL's Alembic impl for the ``auroradsql`` dialect: no transactional DDL."""

    __dialect__ = DIALECT
    transactional_ddl = False


def _register_pg_constructs() -> None:
    """Alembic compiles these constructs specially for ``postgresql``; do the same for DSQL."""
    for construct in (RenameTable, ColumnComment, ColumnType, ColumnNullable, ColumnDefault,
                      ColumnName, AddColumn, DropColumn, alembic_pg.PostgresqlColumnType):
        visitor = _pg_visitor(construct)
        if visitor is not None:
            compiles(construct, DIALECT)(visitor)


def _pg_visitor(construct: type[Any]) -> Any:
    dispatcher = getattr(construct, "_compiler_dispatcher", None)
    specs = getattr(dispatcher, "specs", {}) if dispatcher is not None else {}
    return specs.get("postgresql")


_register_pg_constructs()


def impl_for(dialect_name: str) -> type[Any] | None:
    """The Alembic impl class registered for ``dialect_name`` (None: Alembic has none)."""
    return _impls.get(dialect_name)


__all__ = ["DIALECT", "AuroraDsqlImpl", "impl_for"]
