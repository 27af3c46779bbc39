"""Names of constraints and indexes exactly as stock Alembic sends them to PostgreSQL.

SQLAlchemy names a constraint or an index when it compiles it (``IdentifierPreparer.
format_constraint``): a name the naming convention makes, or one marked ``op.f()`` / ``conv``,
is a *truncatable* label, and one longer than the dialect's ``max_identifier_length`` (63 on
PostgreSQL, in characters) becomes its first 55 characters, ``_`` and the last 4 hex digits of
its md5 (``_truncate_and_render_maxlen_name``). PostgreSQL never sees the long name. The plugin
builds its own SQL, so without this it would send the long name and PostgreSQL would cut it at
63 bytes: another name than stock Alembic's (prefect's foreign keys).

So every name is settled when the op is recorded, by SQLAlchemy's own compiler for PostgreSQL,
on the object Alembic itself would build (in the metadata of the migration context, with the
project's naming convention): the model, the planner and the plan's promise all carry the name
the database gets.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.operations import ops
from alembic.operations.schemaobj import SchemaObjects
from alembic.runtime.migration import MigrationContext
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.base import _NONE_NAME

from ..errors import DsqlMigrateError, ExitCode

_PREPARER = postgresql.dialect().identifier_preparer  # type: ignore[no-untyped-call]


class NameRefused(DsqlMigrateError):
    """A name stock Alembic on PostgreSQL refuses too (a plain name over 63 characters)."""

    exit_code = ExitCode.USAGE


def stock_name(item: sa.Constraint | sa.Index) -> str | None:
    """The name SQLAlchemy renders for ``item`` on PostgreSQL (None: unnamed, PostgreSQL
    chooses one)."""
    if item.name is None:
        return None
    try:
        name = _PREPARER.format_constraint(item, _alembic_quote=False)
    except sa.exc.SQLAlchemyError as exc:
        raise NameRefused(f"{item.name}: {exc}",
                         hint="shorten the name to 63 characters, or mark it op.f() to have "
                         "SQLAlchemy shorten it as stock Alembic does") from None
    return None if name is None else str(name)


def settle_table(table: sa.Table) -> sa.Table:
    """``table`` with each constraint and index named as PostgreSQL will have it."""
    items: list[sa.Constraint | sa.Index] = [*table.constraints, *table.indexes]
    for item in items:
        _settle(item)
    return table


def _settle(item: sa.Constraint | sa.Index) -> None:
    if item.name is _NONE_NAME and _type_bound_unnamed(item):
        return  # an unnamed Enum/Boolean CHECK: named when (if) PostgreSQL gets it (model.py)
    name = stock_name(item)
    if name != item.name:
        item.name = name


def _type_bound_unnamed(item: sa.Constraint | sa.Index) -> bool:
    """An Enum / Boolean type's CHECK without a name: the naming convention may need a name
    SQLAlchemy only asks for when it renders the CHECK, which it does not on every dialect."""
    try:
        stock_name(item)
    except NameRefused:
        return bool(getattr(item, "_type_bound", False))
    return False


def _schema_objects(mc: MigrationContext | None) -> SchemaObjects:
    return SchemaObjects(mc)


def settle_op(operation: ops.MigrateOperation, mc: MigrationContext | None) -> None:
    """The name a standalone op gives (or takes) settled as in :func:`settle_table`: the
    object Alembic's own implementation builds for the op (``toimpl``) is asked its name."""
    settle = _SETTLE.get(type(operation)) or next(
        (fn for base, fn in _SETTLE.items() if isinstance(operation, base)), None)
    if settle is not None:
        settle(operation, mc)


def _index_name(operation: Any, mc: MigrationContext | None) -> None:
    index = operation.to_index(mc)
    operation.index_name = stock_name(index)


def _constraint_name(operation: Any, mc: MigrationContext | None) -> None:
    # an unnamed one stays unnamed (PostgreSQL's name) unless the convention names it
    operation.constraint_name = stock_name(operation.to_constraint(mc))


def _dropped_constraint_name(operation: Any, mc: MigrationContext | None) -> None:
    constraint = _schema_objects(mc).generic_constraint(
        operation.constraint_name, operation.table_name, operation.constraint_type,
        schema=operation.schema)
    operation.constraint_name = stock_name(constraint)


def _added_column_names(operation: Any, mc: MigrationContext | None) -> None:
    """The naming convention of the context, for the constraints and index a column brings
    (``sa.ForeignKey``, ``unique=True``, ``index=True``), named when the op is expanded."""
    target = mc.opts.get("target_metadata") if mc is not None else None
    convention = getattr(target, "naming_convention", None)
    if convention:
        setattr(operation, NAMING, dict(convention))


#: the attribute an ``AddColumnOp`` / ``AlterColumnOp`` carries the naming convention in
NAMING = "dsql_migrate_naming"

_SETTLE: dict[type[Any], Any] = {
    ops.CreateIndexOp: _index_name,
    ops.DropIndexOp: _index_name,
    ops.CreateForeignKeyOp: _constraint_name,
    ops.CreateUniqueConstraintOp: _constraint_name,
    ops.CreateCheckConstraintOp: _constraint_name,
    ops.CreatePrimaryKeyOp: _constraint_name,
    ops.DropConstraintOp: _dropped_constraint_name,
    ops.AddColumnOp: _added_column_names,
    ops.AlterColumnOp: _added_column_names,  # the CHECKs of an Enum / Boolean type
}

__all__ = ["NAMING", "settle_op", "settle_table", "stock_name"]
