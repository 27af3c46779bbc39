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

import sqlalchemy as sa
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
from sqlalchemy.sql import sqltypes

from ..errors import DsqlMigrateError, ExitCode
from ..planner.indexes import OPTION_DIALECTS

log = logging.getLogger(__name__)

DIALECT = "auroradsql"


class AuroraDsqlImpl(PostgresqlImpl):
    """PostgreSQL's Alembic impl for the ``auroradsql`` dialect: no transactional DDL."""

    __dialect__ = DIALECT
    transactional_ddl = False

    def __init__(self, dialect: Any, *args: Any, **kw: Any) -> None:
        super().__init__(dialect, *args, **kw)
        use_current_column_reflection(dialect)

    def create_index(self, index: Any, **kw: Any) -> None:
        """Only reached when Alembic runs an op itself: a stock env.py, with nothing but the
        entry point (with the env.py change, ops are planned, and this is never called).

        aurora-dsql-sqlalchemy's compiler emits ``auroradsql_include`` and
        ``auroradsql_nulls_not_distinct`` and nothing else: ``where`` and ``using`` (either
        spelling) and the ``postgresql_*`` ones are dropped silently, which would build another
        index than the revision asks for, so they are refused. The columns of
        ``auroradsql_include`` are added to Alembic's stub table, as Alembic does for
        ``postgresql_include`` (else ``KeyError``)."""
        dropped = sorted(f"{dialect}_{option}" for dialect in OPTION_DIALECTS
                         for option in ("where", "using", "include", "nulls_not_distinct")
                         if dialect in index.dialect_options
                         and index.dialect_options[dialect].get(option) not in (None, False)
                         and (dialect, option) not in _EMITTED_BY_THE_DIALECT)
        if dropped:
            raise DialectGap(
                f"create_index({index.name!r}): aurora-dsql-sqlalchemy would drop "
                f"{', '.join(dropped)} without a word",
                hint="let dsql-migrate plan the revision: in env.py, replace 'from alembic import "
                "context' with 'from dsql_migrate.alembic import context'")
        included = index.dialect_options[DIALECT].get("include") if (
            DIALECT in index.dialect_options) else None
        for column in included or ():
            if isinstance(column, str) and column not in index.table.c:
                index.table.append_column(sa.Column(column, sqltypes.NullType))
        super().create_index(index, **kw)


_EMITTED_BY_THE_DIALECT = {(DIALECT, "include"), (DIALECT, "nulls_not_distinct")}


class DialectGap(DsqlMigrateError):
    """An op the auroradsql dialect would carry out differently from what it says."""

    exit_code = ExitCode.FAILED


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


__all__ = ["DIALECT", "AuroraDsqlImpl", "DialectGap", "impl_for",
           "use_current_column_reflection"]
