"""The schema a revision leads to: the live schema (reflected) with the revision's ops applied.

The planner needs the full target definition of a table it recreates (a type change, SET NOT
NULL, ...) and of the tables a revision creates; a revision only says what changes. So the live
tables are reflected into a ``MetaData`` and every recorded op is applied to it, in order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops
from sqlalchemy.dialects import postgresql

from ..errors import DsqlMigrateError, ExitCode
from ..ops import ChangePrimaryKeyOp
from .names import settle_table
from .ops import UniqueUsingIndexOp

_KEEP: Any = object()
_PG = postgresql.dialect()  # type: ignore[no-untyped-call]


class SchemaConflict(DsqlMigrateError):
    """A revision's op contradicts the live schema (the column it adds is already there)."""

    exit_code = ExitCode.FAILED


class BuiltCreateTableOp(ops.CreateTableOp):
    """An ``op.create_table`` whose table is built once, when the revision calls it: the
    revision gets that table back (for ``op.bulk_insert``), and the desired schema and the
    planner use the same object. Building it a second time from the op's items would try to
    attach the revision's ``sa.Index`` objects to another table (SQLAlchemy refuses)."""

    table: sa.Table

    @classmethod
    def of(cls, op: ops.CreateTableOp, mc: Any = None) -> BuiltCreateTableOp:
        built = cls.__new__(cls)
        built.__dict__.update(op.__dict__)
        # its constraints and indexes named as PostgreSQL gets them from stock Alembic
        built.table = settle_table(op.to_table(mc))
        return built

    def to_table(self, migration_context: Any = None) -> sa.Table:
        return self.table


def table_key(name: str, schema: str | None) -> str:
    return f"{schema}.{name}" if schema and schema != "public" else name


def desired_metadata(live: sa.MetaData, recorded: Iterable[ops.MigrateOperation]) -> sa.MetaData:
    """A copy of ``live`` with ``recorded`` applied (ops it does not model are ignored)."""
    md = sa.MetaData()
    for table in live.sorted_tables:
        table.to_metadata(md)
    for op in recorded:
        handler = next((_APPLY[t] for t in type(op).__mro__ if t in _APPLY), None)
        if handler is not None:
            handler(md, op)
    return md


def _table(md: sa.MetaData, name: str, schema: str | None) -> sa.Table | None:
    return md.tables.get(table_key(name, schema))


def _copy_column(column: sa.Column[Any], *, name: str | None = None, type_: Any = None,
                 nullable: Any = _KEEP, server_default: Any = _KEEP) -> sa.Column[Any]:
    args: list[Any] = []
    identity = column.identity
    if identity is not None:
        args.append(sa.Identity(always=identity.always, start=identity.start,
                                increment=identity.increment, cache=identity.cache))
    default = column.server_default if server_default is _KEEP else server_default
    if identity is None and default is not None:
        arg = default.arg if isinstance(default, sa.DefaultClause) else default
        args.append(sa.DefaultClause(arg))  # type: ignore[arg-type]
    return sa.Column(
        name or column.name, type_ if type_ is not None else column.type, *args,
        nullable=column.nullable if nullable is _KEEP else bool(nullable),
        primary_key=column.primary_key,
        autoincrement=column.autoincrement if column.autoincrement is not True else "auto",
        comment=column.comment,
    )


def _rebuild(md: sa.MetaData, table: sa.Table, *, name: str | None = None,
             drop: frozenset[str] = frozenset(),
             change: Callable[[sa.Column[Any]], sa.Column[Any]] | None = None,
             renamed: dict[str, str] | None = None, keep_pk_name: bool = True,
             retarget: tuple[str, str] | None = None) -> sa.Table:
    """``table`` built again (dropping, changing or renaming columns), in place of the old;
    ``retarget`` (old, new table key): its foreign keys to a renamed table follow it."""
    renamed = renamed or {}

    def target(fullname: str) -> str:
        referent, _, column = fullname.rpartition(".")
        return f"{retarget[1]}.{column}" if retarget and referent == retarget[0] else fullname

    def new_name(col: str) -> str:
        return renamed.get(col, col)

    columns = [change(c) if change else _copy_column(c)
               for c in table.columns if c.name not in drop]
    pk_cols = [c.name for c in table.primary_key.columns]
    if drop & set(pk_cols):
        for column in columns:
            column.primary_key = False
    items: list[Any] = []
    for constraint in table.constraints:
        names = [c.name for c in getattr(constraint, "columns", ())]
        if drop & set(names) or isinstance(constraint, sa.PrimaryKeyConstraint):
            continue
        if isinstance(constraint, sa.UniqueConstraint):
            items.append(sa.UniqueConstraint(*[new_name(n) for n in names],
                                             name=constraint.name))
        elif isinstance(constraint, sa.CheckConstraint):
            if not getattr(constraint, "_type_bound", False):
                items.append(sa.CheckConstraint(sa.text(str(constraint.sqltext)),
                                                name=constraint.name))
        elif isinstance(constraint, sa.ForeignKeyConstraint):
            items.append(sa.ForeignKeyConstraint(
                [new_name(n) for n in names], [target(e.target_fullname)
                                               for e in constraint.elements],
                name=constraint.name, ondelete=constraint.ondelete,
                onupdate=constraint.onupdate))
    indexes = []
    for index in table.indexes:
        cols = [e.name for e in index.expressions if isinstance(e, sa.Column)]
        if len(cols) != len(index.expressions) or drop & set(cols):
            continue
        indexes.append((index.name, [new_name(c) for c in cols], index.unique,
                        dict(index.dialect_kwargs)))
    schema = table.schema
    md.remove(table)
    new = sa.Table(name or table.name, md, *columns, *items, schema=schema)
    for index_name, cols, unique, kwargs in indexes:
        sa.Index(index_name, *[new.c[c] for c in cols], unique=unique, **kwargs)
    if keep_pk_name and isinstance(table.primary_key.name, str) and len(new.primary_key.columns):
        new.primary_key.name = table.primary_key.name  # a named key keeps its name
    return new


def _create_table(md: sa.MetaData, op: ops.CreateTableOp) -> None:
    table = op.to_table()  # a BuiltCreateTableOp's own table
    existing = _table(md, op.table_name, op.schema)
    if existing is not None:
        md.remove(existing)
    _explicit_type_checks(table.to_metadata(md))


def _explicit_type_checks(table: sa.Table) -> None:
    """The CHECKs that Enum / Boolean types attach (those PostgreSQL gets: a non-native Enum
    with ``create_constraint=True``) as named, explicit constraints of the table, as they are
    in the live schema once created (PostgreSQL names an unnamed one ``<table>_<col>_check``)."""
    compiler = _PG.ddl_compiler(_PG, sa.schema.CreateTable(table))
    for constraint in list(table.constraints):
        if not (isinstance(constraint, sa.CheckConstraint)
                and getattr(constraint, "_type_bound", False)):
            continue
        rule = getattr(constraint, "_create_rule", None)
        if rule is not None and not rule(compiler):
            continue
        column = next(iter(constraint.columns), None) if len(constraint.columns) else None
        name = constraint.name if isinstance(constraint.name, str) else (
            f"{table.name}_{column.name if column is not None else 'type'}_check")
        condition = str(compiler.sql_compiler.process(constraint.sqltext, include_table=False,
                                                      literal_binds=True))
        table.append_constraint(sa.CheckConstraint(sa.text(condition), name=name))


def _drop_table(md: sa.MetaData, op: ops.DropTableOp) -> None:
    table = _table(md, op.table_name, op.schema)
    if table is not None:
        md.remove(table)


def _rename_table(md: sa.MetaData, op: ops.RenameTableOp) -> None:
    """The table under its new name; foreign keys to it (its own too) follow it, as they do
    in PostgreSQL (a key refers to the table, not to its name)."""
    table = _table(md, op.table_name, op.schema)
    if table is None:
        return
    moved = (table_key(op.table_name, op.schema), table_key(op.new_table_name, op.schema))
    _rebuild(md, table, name=op.new_table_name, retarget=moved)
    for other in list(md.tables.values()):
        if any(e.target_fullname.rpartition(".")[0] == moved[0]
               for fk in other.foreign_key_constraints for e in fk.elements):
            _rebuild(md, other, retarget=moved)


def _add_column(md: sa.MetaData, op: ops.AddColumnOp) -> None:
    table = _table(md, op.table_name, op.schema)
    if table is None:
        return
    name = op.column.name
    if name in table.c:
        qualified = table_key(op.table_name, op.schema)
        raise SchemaConflict(
            f"op.add_column({op.table_name!r}, {name!r}): {qualified} already has a column "
            f"{name}",
            hint=f"an earlier run of this revision that stopped part-way (and was abandoned) "
            f"may have added it: drop it (ALTER TABLE {qualified} DROP COLUMN {name}) and run "
            f"again, or take the op out of the revision if the column is right as it is")
    table.append_column(_copy_column(op.column))


def _drop_column(md: sa.MetaData, op: ops.DropColumnOp) -> None:
    table = _table(md, op.table_name, op.schema)
    if table is not None:
        _rebuild(md, table, drop=frozenset({op.column_name}))


def _alter_column(md: sa.MetaData, op: ops.AlterColumnOp) -> None:
    table = _table(md, op.table_name, op.schema)
    if table is None:
        return

    def change(column: sa.Column[Any]) -> sa.Column[Any]:
        if column.name != op.column_name:
            return _copy_column(column)
        return _copy_column(
            column, name=op.modify_name, type_=op.modify_type,
            nullable=_KEEP if op.modify_nullable is None else op.modify_nullable,
            server_default=_KEEP if op.modify_server_default is False
            else op.modify_server_default)

    renamed = {op.column_name: op.modify_name} if op.modify_name else None
    _rebuild(md, table, change=change, renamed=renamed)


def _create_index(md: sa.MetaData, op: ops.CreateIndexOp) -> None:
    table = _table(md, op.table_name, op.schema)
    if table is None or any(i.name == op.index_name for i in table.indexes):
        return  # an index of the table's own CREATE TABLE (op.create_table's sa.Index)
    exprs: list[Any] = []
    for column in op.columns:
        name = column if isinstance(column, str) else getattr(column, "name", None)
        if isinstance(name, str) and name in table.c and (
                isinstance(column, str) or (isinstance(column, sa.sql.ColumnElement)
                and hasattr(column, "table"))):
            exprs.append(table.c[name])
        elif isinstance(column, str):
            exprs.append(sa.text(column))
        else:
            exprs.append(column)
    sa.Index(op.index_name, *exprs, unique=bool(op.unique), _table=table, **op.kw)


def _drop_index(md: sa.MetaData, op: ops.DropIndexOp) -> None:
    for table in md.tables.values():
        if op.table_name not in (None, table.name):
            continue
        for index in list(table.indexes):
            if index.name == op.index_name:
                table.indexes.discard(index)


def _add_unique(md: sa.MetaData, op: ops.CreateUniqueConstraintOp) -> None:
    table = _table(md, op.table_name, op.schema)
    if table is not None:
        table.append_constraint(sa.UniqueConstraint(*op.columns, name=op.constraint_name))


def _add_check(md: sa.MetaData, op: ops.CreateCheckConstraintOp) -> None:
    table = _table(md, op.table_name, op.schema)
    if table is not None:
        condition = op.condition
        text = condition if not isinstance(condition, str) else sa.text(condition)
        table.append_constraint(sa.CheckConstraint(text, name=op.constraint_name))


def _add_fk(md: sa.MetaData, op: ops.CreateForeignKeyOp) -> None:
    table = _table(md, op.source_table, op.kw.get("source_schema"))
    referent = table_key(op.referent_table, op.kw.get("referent_schema"))
    if table is not None:
        table.append_constraint(sa.ForeignKeyConstraint(
            op.local_cols, [f"{referent}.{c}" for c in op.remote_cols], name=op.constraint_name,
            ondelete=op.kw.get("ondelete"), onupdate=op.kw.get("onupdate")))


def _drop_constraint(md: sa.MetaData, op: ops.DropConstraintOp) -> None:
    table = _table(md, op.table_name, op.schema)
    if table is None:
        return
    if op.constraint_type == "primary" or (
            len(table.primary_key.columns) and table.primary_key.name == op.constraint_name):
        def unkeyed(column: sa.Column[Any]) -> sa.Column[Any]:
            copied = _copy_column(column)
            copied.primary_key = False
            return copied

        _rebuild(md, table, change=unkeyed, keep_pk_name=False)
        return
    for constraint in list(table.constraints):
        if constraint.name == op.constraint_name:
            table.constraints.discard(constraint)
    for index in list(table.indexes):
        if index.name == op.constraint_name:
            table.indexes.discard(index)


def _change_primary_key(md: sa.MetaData, op: ChangePrimaryKeyOp) -> None:
    """The table with the new key: the key's columns NOT NULL, as PostgreSQL makes them."""
    table = _table(md, op.table_name, op.schema)
    if table is None:
        return
    keys = set(op.columns)
    missing = keys - {c.name for c in table.columns}
    if missing:
        raise SchemaConflict(f"op.create_primary_key on {op.table_name}: no column "
                             f"{', '.join(sorted(missing))}")
    given = getattr(op, "constraint_name", None) or table.primary_key.name
    name = given if isinstance(given, str) else None

    def change(column: sa.Column[Any]) -> sa.Column[Any]:
        copied = _copy_column(column, nullable=False if column.name in keys else _KEEP)
        copied.primary_key = column.name in keys
        return copied

    new = _rebuild(md, table, change=change)
    new.append_constraint(sa.PrimaryKeyConstraint(*op.columns, name=name))


def _unique_using_index(md: sa.MetaData, op: UniqueUsingIndexOp) -> None:
    """The unique index becomes the constraint (PostgreSQL renames it to the constraint's)."""
    table = _table(md, op.table_name, op.schema)
    if table is None:
        return
    index = next((i for i in table.indexes if i.name == op.index_name), None)
    if index is None:
        return
    table.indexes.discard(index)
    columns = [e.name for e in index.expressions if isinstance(e, sa.Column)]
    table.append_constraint(sa.UniqueConstraint(*columns, name=op.constraint_name))


_APPLY: dict[type[Any], Callable[[sa.MetaData, Any], None]] = {
    ops.CreateTableOp: _create_table,
    ops.DropTableOp: _drop_table,
    ops.RenameTableOp: _rename_table,
    ops.AddColumnOp: _add_column,
    ops.DropColumnOp: _drop_column,
    ops.AlterColumnOp: _alter_column,
    ops.CreateIndexOp: _create_index,
    ops.DropIndexOp: _drop_index,
    ops.CreateUniqueConstraintOp: _add_unique,
    ops.CreateCheckConstraintOp: _add_check,
    ops.CreateForeignKeyOp: _add_fk,
    ops.DropConstraintOp: _drop_constraint,
    UniqueUsingIndexOp: _unique_using_index,
    ChangePrimaryKeyOp: _change_primary_key,
}

__all__ = ["desired_metadata", "table_key"]


def predicted_snapshot(md: sa.MetaData, base: Any) -> Any:
    """``base`` (a live :class:`~dsql_migrate.catalog.Snapshot`) as it will be after the
    revisions that led to ``md``: for compiling several pending revisions without running any
    (``upgrade --dry-run`` / ``--sql``). Row estimates carry over; tables keep their names."""
    from dataclasses import replace

    from ..catalog import Column, Constraint, Index, Table
    from ..planner._sql import type_sql

    tables: dict[str, Table] = {}
    for table in md.tables.values():
        schema = table.schema or "public"
        old = base.table(table.name, table.schema)
        columns = tuple(
            Column(name=c.name, type=type_sql(c.type).lower(), nullable=bool(c.nullable),
                   identity=None if c.identity is None else
                   ("always" if c.identity.always else "by default"),
                   identity_cache=None if c.identity is None else c.identity.cache,
                   position=i)
            for i, c in enumerate(table.columns, start=1))
        constraints: list[Constraint] = []
        pk = [c.name for c in table.primary_key.columns]
        if pk:
            constraints.append(Constraint(name=str(table.primary_key.name or f"{table.name}_pkey"),
                                          kind="primary_key", columns=tuple(pk),
                                          definition=f"PRIMARY KEY ({', '.join(pk)})"))
        for con in table.constraints:
            if isinstance(con, sa.UniqueConstraint) and con.name:
                names = tuple(c.name for c in con.columns)
                constraints.append(Constraint(name=str(con.name), kind="unique", columns=names,
                                              definition=f"UNIQUE ({', '.join(names)})"))
            elif isinstance(con, sa.ForeignKeyConstraint) and con.name:
                names = tuple(str(k) for k in con.column_keys)
                target = con.elements[0].target_fullname.rsplit(".", 1)[0]
                ref = target if "." in target else f"public.{target}"
                constraints.append(Constraint(
                    name=str(con.name), kind="foreign_key", columns=names,
                    definition=f"FOREIGN KEY ({', '.join(names)})", ref_table=ref,
                    ref_columns=tuple(e.target_fullname.rsplit(".", 1)[1]
                                      for e in con.elements)))
        indexes = tuple(
            Index(name=str(i.name), unique=bool(i.unique),
                  keys=tuple(str(getattr(e, "name", e)) for e in i.expressions))
            for i in table.indexes if i.name)
        tables[f"{schema}.{table.name}"] = Table(
            schema=schema, name=table.name, columns=columns, constraints=tuple(constraints),
            indexes=indexes, row_estimate=old.row_estimate if old is not None else 0,
            row_count=old.row_count if old is not None else None)
    return replace(base, tables=tables)


def reflect_live(bind: sa.Connection) -> sa.MetaData:
    """The live schema as SQLAlchemy metadata, Alembic's version table left out (see
    :func:`dsql_migrate.diff.reflect`)."""
    from ..diff import reflect  # here: it imports psycopg, which the offline check needs not

    md = reflect(bind)
    table = md.tables.get("alembic_version")
    if table is not None:
        md.remove(table)
    return md
