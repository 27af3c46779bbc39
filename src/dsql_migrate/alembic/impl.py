"""Alembic impls for Aurora DSQL.

- ``auroradsql`` (AWS's ``aurora-dsql-sqlalchemy`` dialect): without an impl registered under
  that name Alembic fails with ``KeyError: 'auroradsql'``. :class:`AuroraDsqlImpl` is
  PostgreSQL's impl with ``transactional_ddl`` off, and Alembic's PostgreSQL-only DDL
  constructs (``RENAME``, column comments, ``ALTER COLUMN TYPE ... USING``) are compiled for
  ``auroradsql`` exactly as for ``postgresql``; and the dialect's column reflection is made to
  work with SQLAlchemy 2.1 (:func:`use_current_column_reflection`).
- ``postgresql`` (the emulator, plain URLs) keeps Alembic's impl; DSQL mode is the
  ``transactional_ddl=False`` that :func:`dsql_migrate.alembic.context.configure` passes.

Defining the class registers it (Alembic's impls register by their ``__dialect__``).
"""

from __future__ import annotations

import logging
import types
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
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.engine.reflection import ObjectKind, ObjectScope
from sqlalchemy.ext.compiler import compiles

log = logging.getLogger(__name__)

DIALECT = "auroradsql"


class AuroraDsqlImpl(PostgresqlImpl):
    """PostgreSQL's Alembic impl for the ``auroradsql`` dialect: no transactional DDL."""

    __dialect__ = DIALECT
    transactional_ddl = False

    def __init__(self, dialect: Any, *args: Any, **kw: Any) -> None:
        super().__init__(dialect, *args, **kw)
        use_current_column_reflection(dialect)


_REFLECTION_ARGS = (None, False, ObjectScope.DEFAULT, ObjectKind.TABLE)


def use_current_column_reflection(dialect: Any) -> bool:
    """Make ``dialect`` (an instance) reflect columns with SQLAlchemy's own query when its own
    query lacks columns SQLAlchemy's reflection reads; True if it did.

    aurora-dsql-sqlalchemy 1.3.0 overrides ``PGDialect._columns_query`` with a copy of
    SQLAlchemy 2.0.41's (the copy only adds a guard for an unknown server version, which
    SQLAlchemy's own ``initialize`` does not allow anyway). SQLAlchemy 2.1 also selects the
    column collation, so reflecting any table through that copy fails with
    ``NoSuchColumnError: ... 'collation'``: autogenerate, ``check`` and the plugin's own
    reflection. Only the instance an Alembic context uses is changed, not AWS's class.
    """
    if getattr(dialect, "name", None) != DIALECT or dialect.server_version_info is None:
        return False
    theirs = getattr(type(dialect), "_columns_query", None)
    ours = getattr(PGDialect, "_columns_query", None)
    if theirs is None or ours is None or theirs is ours:
        return False
    try:
        expected = set(ours(dialect, *_REFLECTION_ARGS).selected_columns.keys())
        given = set(theirs(dialect, *_REFLECTION_ARGS).selected_columns.keys())
    except Exception:  # another dialect version, another shape: leave it alone
        log.debug("could not compare the column reflection queries", exc_info=True)
        return False
    if expected <= given:
        return False
    dialect._columns_query = types.MethodType(ours, dialect)
    return True


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


__all__ = ["DIALECT", "AuroraDsqlImpl", "impl_for", "use_current_column_reflection"]
