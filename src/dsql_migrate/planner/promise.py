"""A plan's premise and promise (DESIGN.md §3.2a): the fingerprints of the tables it touches
before and after it runs.

The **premise** is the live snapshot's fingerprint of every table the plan touches (``None``
for a table that does not exist yet), exactly as the planner saw it.

The **promise** is the premise with the effect of every op applied, object by object: an op
names the objects it changes (a column, a constraint, an index, a table), and only those change;
everything else is carried over from the premise and so must come out of the plan exactly as it
went in. This is why the promise is derived from the ops and not from the desired model: the
desired model (SQLAlchemy ``MetaData``) does not describe everything the snapshot does (grants,
comments, storage parameters, CHECK constraints Alembic does not compare), and a plan must not
promise to remove what it never touches, nor be excused for losing it (a recreation that drops
a grant fails the end-state check).

The new value of a changed object comes from the desired model, normalised to the spelling of
the live snapshot (:mod:`dsql_migrate.fingerprint`), with only the fields the planner can
predict: a new CHECK constraint promises its kind and name, not the text PostgreSQL will print
for it. Ops whose effect the planner cannot know (raw DDL in a revision, an op without an
effect model here) leave the promise of the tables concerned *unchecked*, and the plan says so.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops

from ..catalog import Snapshot
from ..catalog import Table as LiveTable
from ..fingerprint import (
    RENAMED_FROM,
    UNCHECKED,
    normalise_default,
    normalise_type,
    table_fingerprint,
)
from ..ops import ChangePrimaryKeyOp, ValidateConstraintOp

Tables = dict[str, Any]  # "schema.table" -> fingerprint, or None: the table does not exist


def table_key(name: str, schema: str | None) -> str:
    return f"{schema or 'public'}.{name}"


def flatten(op_list: Sequence[ops.MigrateOperation]) -> Iterator[ops.MigrateOperation]:
    for op in op_list:
        if isinstance(op, ops.OpContainer):
            if getattr(op, "table_name", None) is not None:
                yield op  # e.g. a recreate_table block: touches its table
            yield from flatten(op.ops)
        else:
            yield op


def op_keys(op: ops.MigrateOperation) -> list[str]:
    """The tables (``schema.table``) an op works on."""
    if isinstance(op, ops.RenameTableOp):
        return [table_key(op.table_name, op.schema), table_key(str(op.new_table_name), op.schema)]
    if isinstance(op, ops.CreateForeignKeyOp):
        return [table_key(op.source_table, op.kw.get("source_schema"))]
    name = getattr(op, "table_name", None) or getattr(op, "table", None)
    if not isinstance(name, str):
        return []
    return [table_key(name, getattr(op, "schema", None))]


def premise(op_list: Sequence[ops.MigrateOperation], step_tables: Sequence[str | None],
            live: Snapshot) -> Tables:
    """The live fingerprint of every table the ops or the steps touch."""
    keys: set[str] = set()
    for op in flatten(op_list):
        keys.update(op_keys(op))
    for name in step_tables:
        table = live.table(name) if name else None
        if table is not None:
            keys.add(table.qualified)
    out: Tables = {}
    for key in sorted(keys):
        table = live.tables.get(key)
        out[key] = None if table is None else table_fingerprint(table)
    return out


@dataclass
class _State:
    tables: Tables
    desired: sa.MetaData
    #: (schema or None, table) of the tables the plan recreates
    recreated: set[tuple[str | None, str]]
    not_null_by_check: bool
    foreign_keys: bool = True
    notes: list[str] = field(default_factory=list)

    def table(self, name: str, schema: str | None) -> dict[str, Any] | None:
        value = self.tables.get(table_key(name, schema))
        return value if isinstance(value, dict) else None

    def desired_table(self, name: str, schema: str | None) -> sa.Table | None:
        for key in (f"{schema}.{name}" if schema else name, name, f"public.{name}"):
            found = self.desired.tables.get(key)
            if found is not None:
                return found
        return None

    def desired_column(self, table: str, schema: str | None, column: str,
                       ) -> sa.Column[Any] | None:
        found = self.desired_table(table, schema)
        return None if found is None or column not in found.columns else found.columns[column]

    def unchecked(self, key: str, why: str) -> None:
        value = self.tables.get(key)
        if isinstance(value, dict):
            value[UNCHECKED] = why
        else:
            self.tables[key] = {UNCHECKED: why}
        self.notes.append(f"{key}: {why}")

    def recreates(self, name: str, schema: str | None) -> bool:
        return (schema, name) in self.recreated or (
            schema in (None, "public") and ((None, name) in self.recreated
                                            or ("public", name) in self.recreated))


Effect = Callable[[Any, _State], None]
_EFFECTS: dict[type[ops.MigrateOperation], Effect] = {}


def effect(*op_types: type[ops.MigrateOperation]) -> Callable[[Effect], Effect]:
    """Register the function as the effect of ``op_types`` on the promised fingerprints."""
    def register(fn: Effect) -> Effect:
        for op_type in op_types:
            _EFFECTS[op_type] = fn
        return fn
    return register


def promise(op_list: Sequence[ops.MigrateOperation], before: Tables, desired: sa.MetaData, *,
            recreated: set[tuple[str | None, str]], not_null_by_check: bool,
            foreign_keys: bool = True, statements: Sequence[str] = (),
            ) -> tuple[Tables, list[str]]:
    """``before`` (the premise) with the effect of every op applied; and the tables whose end
    state cannot be predicted, with why (for the plan's warnings). ``statements``: the SQL of
    the plan's steps; a new index none of them names is one the planner
    left out (with a warning: an expression index on ``classic``, say), and is not promised."""
    _register_plugin_ops()
    state = _State(tables=copy.deepcopy(before), desired=desired, recreated=recreated,
                   not_null_by_check=not_null_by_check, foreign_keys=foreign_keys)
    flat = list(flatten(op_list))
    # renames first, as the planner runs them: later ops name a renamed table by its new name
    flat.sort(key=lambda op: 0 if isinstance(op, ops.RenameTableOp) else 1)
    for op in flat:
        fn = next((_EFFECTS[t] for t in type(op).__mro__ if t in _EFFECTS), None)
        if fn is not None:
            fn(op, state)
            continue
        keys = op_keys(op)
        why = f"the end state after {type(op).__name__} is not predicted"
        for key in keys or list(state.tables):
            state.unchecked(key, why)
    for schema, name in sorted(recreated, key=lambda k: (k[0] or "", k[1])):
        _recreated_key_name(state, name, schema)
    _drop_unplanned(state.tables, before, statements)
    return state.tables, state.notes


def _recreated_key_name(state: _State, name: str, schema: str | None) -> None:
    """A recreated table's primary key is named as :func:`.recreate.constraint_names` names it:
    the desired model's name; unnamed, the live key's name (a recreation keeps names); with no
    live key, ``<table>_pkey``."""
    from ._sql import suffixed

    table, desired = state.table(name, schema), state.desired_table(name, schema)
    if table is None or desired is None or not len(desired.primary_key.columns):
        return
    constraints, indexes = _columns_of(table, "constraints"), _columns_of(table, "indexes")
    pk = desired.primary_key.name
    live_pk = [n for n, c in constraints.items() if c.get("kind") == "primary_key"]
    if not isinstance(pk, str) and live_pk:
        return  # kept under its live name
    wanted = pk if isinstance(pk, str) else suffixed(name, "_pkey")
    for old in [n for n, c in constraints.items() if c.get("kind") == "primary_key"]:
        if old == wanted:
            continue
        constraint = constraints.pop(old)
        if constraint.get("index") == old:
            constraint["index"] = wanted
        constraints[wanted] = constraint
        index = indexes.pop(old, None)
        if index is not None:
            index.pop("definition", None)  # it names the index
            index["constraint"] = wanted
            indexes[wanted] = index


def _drop_unplanned(tables: Tables, before: Tables, statements: Sequence[str]) -> None:
    from ._sql import q

    text = "\n".join(statements)
    for key, table in tables.items():
        if not isinstance(table, dict):
            continue
        old = before.get(str(table.get(RENAMED_FROM, key)))
        had = old.get("indexes", {}) if isinstance(old, dict) else {}
        indexes = _columns_of(table, "indexes")
        for name in [n for n, i in indexes.items()
                     if n not in had and i.get("constraint") is None and q(n) not in text]:
            del indexes[name]


# -- projections of the desired model ------------------------------------------------------------


def expected_column(column: sa.Column[Any]) -> dict[str, Any]:
    """What the snapshot will say about ``column`` (the fields that can be predicted)."""
    from ._sql import default_sql

    out: dict[str, Any] = {}
    type_name = _type_of(column.type)  # None: a type the dialect cannot print here
    if type_name is not None:
        out["type"] = type_name
    out["nullable"] = bool(column.nullable) and not column.primary_key
    if column.identity is not None:
        out["identity"] = "always" if column.identity.always else "by default"
        out["default"] = None
    elif column.server_default is not None:
        default = default_sql(column)
        if default is not None:
            out["default"] = normalise_default(default)
            if isinstance(column.type, sa.Boolean):
                out["default"] = _boolean_default(out["default"])
    elif not (column.primary_key and column.autoincrement is True
              and isinstance(column.type, sa.Integer)):
        out["default"] = None
        out["identity"] = None
    return out


#: what PostgreSQL accepts as a boolean literal, and how it prints a column's default of it
_BOOLEAN_LITERALS = {"0": "false", "f": "false", "false": "false", "n": "false", "no": "false",
                     "off": "false", "1": "true", "t": "true", "true": "true", "y": "true",
                     "yes": "true", "on": "true"}


def _boolean_default(default: Any) -> Any:
    """A boolean column's default as PostgreSQL stores it: ``server_default="0"`` (a common
    spelling in real histories) is the default ``false``."""
    if not isinstance(default, str):
        return default
    return _BOOLEAN_LITERALS.get(default.strip().strip("'").lower(), default)


def _columns_of(value: dict[str, Any], kind: str) -> dict[str, Any]:
    objects = value.setdefault(kind, {})
    assert isinstance(objects, dict)
    return objects


def _mentions(item: Mapping[str, Any], column: str) -> bool:
    names = list(item.get("columns") or ()) + list(item.get("keys") or ())
    word = re.compile(rf'(?<![\w"]){re.escape(column)}(?![\w"])|"{re.escape(column)}"')
    return any(n == column or bool(word.search(str(n))) for n in names)


def _pg_name(table: str, columns: Sequence[str], label: str) -> str | None:
    """The name PostgreSQL gives an unnamed constraint (None: too long to predict here)."""
    name = "_".join([table, *columns, label])
    return name if len(name.encode()) <= 63 else None


def _new_table(table: sa.Table, *, foreign_keys: bool = True) -> dict[str, Any]:
    from .tables import serial_identity

    serial = serial_identity(table)  # CREATE TABLE makes the autoincrement key an identity
    # every field a live table has, at its empty value (no comment, grants, views, ...), so
    # that what the snapshot reads about a table is promised for a new one too
    out: dict[str, Any] = table_fingerprint(LiveTable(schema=table.schema or "public",
                                                      name=table.name))
    out["columns"] = {c.name: expected_column(serial if serial is not None
                                              and c.name == serial.name else c)
                      for c in table.columns}
    pk = table.primary_key
    if pk is not None and len(pk.columns):
        pk_name = pk.name if isinstance(pk.name, str) else f"{table.name}_pkey"
        pk_cols = [c.name for c in pk.columns]
        out["constraints"][pk_name] = {"kind": "primary_key", "columns": pk_cols}
        out["indexes"][pk_name] = {"unique": True, "keys": pk_cols, "constraint": pk_name}
    for constraint in table.constraints:
        if isinstance(constraint, sa.PrimaryKeyConstraint):
            continue
        cols = [str(c.name) for c in getattr(constraint, "columns", ())]
        label = {sa.UniqueConstraint: "key", sa.ForeignKeyConstraint: "fkey"}.get(
            type(constraint))
        name: str | None = constraint.name if isinstance(constraint.name, str) else (
            _pg_name(table.name, cols, label) if label else None)
        if isinstance(constraint, sa.ForeignKeyConstraint) and not foreign_keys:
            continue  # the profile has none: the planner warns instead
        if name is None:
            out[UNCHECKED] = "a constraint without a name is named by PostgreSQL"
            continue
        if isinstance(constraint, sa.UniqueConstraint):
            out["constraints"][name] = {"kind": "unique", "columns": cols}
            out["indexes"][name] = {"unique": True, "keys": cols, "constraint": name}
        elif isinstance(constraint, sa.CheckConstraint):
            out["constraints"][name] = {"kind": "check"}
        elif isinstance(constraint, sa.ForeignKeyConstraint):
            out["constraints"][name] = _foreign_key(constraint)
    for index in table.indexes:
        if isinstance(index.name, str):
            out["indexes"][index.name] = _index(index.unique, index.expressions)
    return out


def _foreign_key(constraint: sa.ForeignKeyConstraint) -> dict[str, Any]:
    target = constraint.elements[0].target_fullname.rsplit(".", 1)[0]
    return {"kind": "foreign_key", "columns": [str(k) for k in constraint.column_keys],
            "ref_table": target if "." in target else f"public.{target}",
            "ref_columns": [e.target_fullname.rsplit(".", 1)[1] for e in constraint.elements]}


def _index(unique: Any, expressions: Sequence[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"unique": bool(unique)}
    names = [e if isinstance(e, str) else getattr(e, "name", None) for e in expressions]
    if all(isinstance(n, str) for n in names) and all(
            isinstance(e, (str, sa.Column)) for e in expressions):
        out["keys"] = names
    return out


# -- effects -------------------------------------------------------------------------------------


@effect(ops.CreateTableOp)
def _create_table(op: ops.CreateTableOp, state: _State) -> None:
    desired = state.desired_table(op.table_name, op.schema)
    if desired is None:
        desired = op.to_table()
    state.tables[table_key(op.table_name, op.schema)] = _new_table(
        desired, foreign_keys=state.foreign_keys)


@effect(ops.DropTableOp)
def _drop_table(op: ops.DropTableOp, state: _State) -> None:
    state.tables[table_key(op.table_name, op.schema)] = None


@effect(ops.RenameTableOp)
def _rename_table(op: ops.RenameTableOp, state: _State) -> None:
    old, new = table_key(op.table_name, op.schema), table_key(str(op.new_table_name), op.schema)
    moved = state.tables.get(old)
    state.tables[old] = None
    if isinstance(moved, dict):
        moved[RENAMED_FROM] = old  # the runner compares the table under its old name before
        for index in _columns_of(moved, "indexes").values():
            index.pop("definition", None)  # it names the table: PostgreSQL prints it anew
    state.tables[new] = moved
    for other in state.tables.values():  # foreign keys of the tables the plan touches
        if not isinstance(other, dict):
            continue
        for constraint in _columns_of(other, "constraints").values():
            if constraint.get("ref_table") == old:
                constraint["ref_table"] = new
                constraint.pop("definition", None)


@effect(ops.AddColumnOp)
def _add_column(op: ops.AddColumnOp, state: _State) -> None:
    table = state.table(op.table_name, op.schema)
    if table is None:
        return
    column = state.desired_column(op.table_name, op.schema, op.column.name)
    if column is None:
        column = op.column
    expected = expected_column(column)
    if not column.nullable and state.not_null_by_check and not state.recreates(
            op.table_name, op.schema):
        _not_null_check(table, op.table_name, column.name, expected)
    _columns_of(table, "columns")[column.name] = expected


def _not_null_check(table: dict[str, Any], name: str, column: str,
                    expected: dict[str, Any]) -> None:
    """NOT NULL by a validated CHECK (``--not-null=check``): the column stays nullable."""
    from .columns import not_null_check_name

    expected["nullable"] = True
    _columns_of(table, "constraints")[not_null_check_name(name, column)] = {"kind": "check"}


@effect(ops.DropColumnOp)
def _drop_column(op: ops.DropColumnOp, state: _State) -> None:
    table = state.table(op.table_name, op.schema)
    if table is None:
        return
    _columns_of(table, "columns").pop(op.column_name, None)
    # PostgreSQL drops the indexes and constraints on the column with it
    for kind in ("constraints", "indexes"):
        objects = _columns_of(table, kind)
        for name in [n for n, item in objects.items() if _mentions(item, op.column_name)]:
            del objects[name]


@effect(ops.AlterColumnOp)
def _alter_column(op: ops.AlterColumnOp, state: _State) -> None:
    table = state.table(op.table_name, op.schema)
    if table is None:
        return
    columns = _columns_of(table, "columns")
    name = op.column_name
    if op.modify_name:
        columns[op.modify_name] = columns.pop(name, {})
        _rename_references(table, name, op.modify_name)
        name = op.modify_name
    column = dict(columns.get(name) or {})
    wanted = state.desired_column(op.table_name, op.schema, name)
    expected = expected_column(wanted) if wanted is not None else {}
    if op.modify_type is not None:
        column["type"] = expected.get("type") or _type_of(op.modify_type)
    if op.modify_server_default is not False:
        column["default"] = expected["default"] if "default" in expected else (
            None if op.modify_server_default is None else column.get("default"))
    if op.modify_nullable is not None:
        column["nullable"] = bool(op.modify_nullable)
        if op.modify_nullable is False and state.not_null_by_check and not state.recreates(
                op.table_name, op.schema):
            _not_null_check(table, op.table_name, name, column)
    if op.modify_comment is not False and "comment" in column:
        column["comment"] = op.modify_comment
    columns[name] = column


def _type_of(type_: Any) -> str | None:
    from ._sql import type_sql

    try:
        return normalise_type(type_sql(type_))
    except sa.exc.SQLAlchemyError:
        return None


def _rename_references(table: dict[str, Any], old: str, new: str) -> None:
    """Constraints and indexes on a renamed column: PostgreSQL prints their definitions anew."""
    for kind in ("constraints", "indexes"):
        for item in _columns_of(table, kind).values():
            if not _mentions(item, old):
                continue
            for key in ("columns", "keys"):
                if key in item:
                    item[key] = [new if c == old else c for c in item[key]]
            item.pop("definition", None)
            if kind == "indexes" and any(c != new and old in str(c) for c in item.get("keys", ())):
                item.pop("keys", None)  # an expression over the column: printed anew


@effect(ops.CreateIndexOp)
def _create_index(op: ops.CreateIndexOp, state: _State) -> None:
    table = state.table(op.table_name, op.schema)
    if table is None or op.index_name is None:
        return
    _columns_of(table, "indexes")[str(op.index_name)] = _index(op.unique, op.columns)


@effect(ops.DropIndexOp)
def _drop_index(op: ops.DropIndexOp, state: _State) -> None:
    if op.table_name is not None:
        table = state.table(op.table_name, op.schema)
        candidates = [table] if table is not None else []
    else:  # op.drop_index("ix") names no table: the index's own table
        prefix = f"{op.schema or 'public'}."
        candidates = [t for key, t in state.tables.items()
                      if key.startswith(prefix) and isinstance(t, dict)]
    for table in candidates:
        _columns_of(table, "indexes").pop(str(op.index_name), None)


@effect(ops.CreateUniqueConstraintOp, ops.CreatePrimaryKeyOp)
def _create_keyed(op: ops.CreateUniqueConstraintOp | ops.CreatePrimaryKeyOp,
                  state: _State) -> None:
    table = state.table(op.table_name, op.schema)
    if table is None:
        return
    kind = "primary_key" if isinstance(op, ops.CreatePrimaryKeyOp) else "unique"
    name = str(op.constraint_name or f"{op.table_name}_pkey")
    columns = [str(c) for c in op.columns]
    _columns_of(table, "constraints")[name] = {"kind": kind, "columns": columns}
    _columns_of(table, "indexes")[name] = {"unique": True, "keys": columns, "constraint": name}


@effect(ops.CreateCheckConstraintOp)
def _create_check(op: ops.CreateCheckConstraintOp, state: _State) -> None:
    table = state.table(op.table_name, op.schema)
    if table is not None:
        _columns_of(table, "constraints")[str(op.constraint_name)] = {"kind": "check"}


@effect(ops.CreateForeignKeyOp)
def _create_foreign_key(op: ops.CreateForeignKeyOp, state: _State) -> None:
    table = state.table(op.source_table, op.kw.get("source_schema"))
    if table is None or not state.foreign_keys:
        return
    schema = op.kw.get("referent_schema") or "public"
    _columns_of(table, "constraints")[str(op.constraint_name)] = {
        "kind": "foreign_key", "columns": list(op.local_cols),
        "ref_table": f"{schema}.{op.referent_table}", "ref_columns": list(op.remote_cols)}


@effect(ops.DropConstraintOp)
def _drop_constraint(op: ops.DropConstraintOp, state: _State) -> None:
    table = state.table(op.table_name, op.schema)
    if table is None:
        return
    dropped = _columns_of(table, "constraints").pop(str(op.constraint_name), None)
    indexes = _columns_of(table, "indexes")
    for name in [n for n, i in indexes.items() if i.get("constraint") == op.constraint_name]:
        del indexes[name]
    if isinstance(dropped, dict) and dropped.get("index"):
        indexes.pop(str(dropped["index"]), None)


@effect(ChangePrimaryKeyOp)
def _change_primary_key(op: ChangePrimaryKeyOp, state: _State) -> None:
    table = state.table(op.table_name, op.schema)
    if table is None:
        return
    constraints = _columns_of(table, "constraints")
    indexes = _columns_of(table, "indexes")
    for name in [n for n, c in constraints.items() if c.get("kind") == "primary_key"]:
        del constraints[name]
        indexes.pop(name, None)
    desired = state.desired_table(op.table_name, op.schema)
    pk_name = desired.primary_key.name if desired is not None else None
    name = pk_name if isinstance(pk_name, str) else f"{op.table_name}_pkey"
    columns = list(op.columns)
    constraints[name] = {"kind": "primary_key", "columns": columns}
    indexes[name] = {"unique": True, "keys": columns, "constraint": name}
    for column in columns:  # key columns are NOT NULL
        _columns_of(table, "columns").setdefault(column, {})["nullable"] = False


@effect(ValidateConstraintOp, ops.BulkInsertOp, ops.ModifyTableOps)
def _no_schema_change(op: ops.MigrateOperation, state: _State) -> None:
    """Data or validation only: the fingerprints do not change (validity is not in them)."""


@effect(ops.CreateTableCommentOp, ops.DropTableCommentOp)
def _table_comment(op: ops.CreateTableCommentOp | ops.DropTableCommentOp,
                   state: _State) -> None:
    table = state.table(op.table_name, op.schema)
    if table is None or "comment" not in table:
        return  # the snapshot does not read comments (yet): nothing to promise
    table["comment"] = op.comment if isinstance(op, ops.CreateTableCommentOp) else None


@functools.cache
def _register_plugin_ops() -> None:
    """Effects of the Alembic plugin's own ops (registered on first use: the plugin imports
    the planner)."""
    from ..alembic import ops as plugin

    def unique_using_index(op: plugin.UniqueUsingIndexOp, state: _State) -> None:
        table = state.table(op.table_name, op.schema)
        if table is None:
            return
        indexes = _columns_of(table, "indexes")
        index = dict(indexes.pop(op.index_name, None) or {"unique": True})
        index["constraint"] = op.constraint_name
        index.pop("definition", None)  # it names the index
        indexes[op.constraint_name] = index
        constraint: dict[str, Any] = {"kind": "unique"}
        if "keys" in index:
            constraint["columns"] = list(index["keys"])
        _columns_of(table, "constraints")[op.constraint_name] = constraint

    def raw_sql(op: plugin.RawSqlOp, state: _State) -> None:
        if op.kind == "dml":
            return
        for key in list(state.tables):
            state.unchecked(key, "raw SQL DDL in the revision: its end state is not predicted")

    _EFFECTS[plugin.UniqueUsingIndexOp] = unique_using_index
    _EFFECTS[plugin.RawSqlOp] = raw_sql
    for data_only in (plugin.BackfillOp, plugin.BulkRowsOp, plugin.RecreateTableOp,
                      plugin.CommentOp):
        _EFFECTS[data_only] = _no_schema_change


__all__ = ["effect", "expected_column", "op_keys", "premise", "promise", "table_key"]
