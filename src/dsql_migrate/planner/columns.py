"""Add, drop, alter and rename columns."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.operations import ops

from ..plan import Estimate, StepKind
from ..profiles import Capability
from . import NOT_NULL_CHECK, Context, handles, recreation_check
from ._keyset import keyset_for, pct, table_sql
from ._sql import column_sql, default_sql, expr_sql, literal, q, qual, suffixed
from .constraints import add_check_not_valid, validate_async


def not_null_by_check(ctx: Context) -> bool:
    return (ctx.options.not_null == NOT_NULL_CHECK
            and ctx.profile.allows(Capability.CHECK_NOT_VALID)
            and ctx.profile.allows(Capability.VALIDATE_CONSTRAINT_ASYNC))


def live_name(ctx: Context, table: str) -> str:
    """The live name of ``table``: its old name when the plan renames it."""
    for op in ctx.all_ops:
        if isinstance(op, ops.RenameTableOp) and op.new_table_name == table:
            return str(op.table_name)
    return table


@recreation_check(ops.AddColumnOp)
def add_column_recreates(op: ops.AddColumnOp, ctx: Context) -> str | None:
    column = op.column
    if column.identity is not None or column.primary_key:
        return f"add identity/key column {column.name}"
    if not column.nullable and not not_null_by_check(ctx):
        return f"add NOT NULL column {column.name}"
    if default_sql(column) is not None and not ctx.profile.allows(
            Capability.ALTER_COLUMN_DEFAULT):
        return f"add column {column.name} with a default ({ctx.profile.name} profile)"
    return None


@handles(ops.AddColumnOp)
def add_column(op: ops.AddColumnOp, ctx: Context) -> None:
    from .tables import check_type

    column = op.column
    table = op.table_name
    check_type(table, column, ctx)
    target = qual(table, op.schema)
    live = ctx.live_table(live_name(ctx, table), op.schema)
    default = default_sql(column)
    if not column.nullable and default is None and live is not None:
        ctx.add(StepKind.VERIFY, f"pre-check: {table} is empty (new NOT NULL column "
                f"{column.name} has no default)",
                [f"SELECT {', '.join(q(k) for k in keyset_for(live).key)} FROM {target} "
                 "LIMIT 20"], table=table, details={"expect": "no rows"},
                notes=["existing rows would have no value for the new column"])
    ctx.add(StepKind.DDL, f"add column {table}.{column.name}",
            [f"ALTER TABLE {target} ADD COLUMN "
             f"{column_sql(column, cache_floor=1, inline=False)}"], table=table)
    if default is not None:
        # before the backfill: rows written while it runs get the default, none is missed
        ctx.add(StepKind.DDL, f"set default of {table}.{column.name}",
                [f"ALTER TABLE {target} ALTER COLUMN {q(column.name)} SET DEFAULT {default}"],
                table=table)
    if default is not None and live is not None:
        keys = keyset_for(live)
        rows = live.rows
        size = ctx.batch_size(live)
        ctx.add(StepKind.BACKFILL, f"backfill {table}.{column.name} with its default",
                [f"UPDATE {target} SET {q(column.name)} = {pct(default)} "
                 f"WHERE {keys.range()} AND {q(column.name)} IS NULL"],
                table=table, batch=keys.batch(table, table_sql(live), size),
                estimate=ctx.batch_estimate(rows, size),
                notes=["resumable: each batch commits with its cursor; rows already set are "
                       "skipped"])
    if not column.nullable:
        name = not_null_check_name(table, column.name)
        add_check_not_valid(ctx, table, op.schema, name, f"{q(column.name)} IS NOT NULL")
        validate_async(ctx, table, op.schema, name)


def not_null_check_name(table: str, column: str) -> str:
    return suffixed(f"{table}_{column}", "_not_null")


@recreation_check(ops.DropColumnOp)
def drop_column_recreates(op: ops.DropColumnOp, ctx: Context) -> str | None:
    if not ctx.profile.allows(Capability.DROP_COLUMN):
        return f"drop column {op.column_name} ({ctx.profile.name} profile)"
    live = ctx.live_table(live_name(ctx, op.table_name), op.schema)
    pk = live.primary_key if live is not None else None
    if pk is not None and op.column_name in pk.columns:
        return f"drop primary-key column {op.column_name}"
    return None


@handles(ops.DropColumnOp)
def drop_column(op: ops.DropColumnOp, ctx: Context) -> None:
    live = ctx.live_table(live_name(ctx, op.table_name), op.schema)
    ctx.add(StepKind.DDL, f"drop column {op.table_name}.{op.column_name}",
            [f"ALTER TABLE {qual(op.table_name, op.schema)} DROP COLUMN {q(op.column_name)}"],
            table=op.table_name, destructive=True, reversible=False,
            estimate=Estimate(rows=live.rows if live else None),
            notes=["the column's data is lost; if it was renamed, declare the rename "
                   "(--rename table.old=new) instead"])


@recreation_check(ops.AlterColumnOp)
def alter_column_recreates(op: ops.AlterColumnOp, ctx: Context) -> str | None:
    reasons = []
    if op.modify_type is not None and type_changes(op, ctx):
        reasons.append(f"change type of {op.column_name}")
    if op.modify_nullable is False and not not_null_by_check(ctx):
        reasons.append(f"set NOT NULL on {op.column_name}")
    if op.modify_nullable is True and not ctx.profile.allows(Capability.DROP_NOT_NULL):
        reasons.append(f"drop NOT NULL on {op.column_name} ({ctx.profile.name} profile)")
    if op.modify_server_default is not False and not ctx.profile.allows(
            Capability.ALTER_COLUMN_DEFAULT):
        reasons.append(f"change the default of {op.column_name} ({ctx.profile.name} profile)")
    return "; ".join(reasons) or None


def type_changes(op: ops.AlterColumnOp, ctx: Context) -> bool:
    from ._sql import normalize_type, type_sql

    live = ctx.live_table(live_name(ctx, op.table_name), op.schema)
    column = live.column(op.column_name) if live is not None else None
    if column is None or op.modify_type is None:
        return True
    return normalize_type(column.type) != normalize_type(type_sql(op.modify_type))


@handles(ops.AlterColumnOp)
def alter_column(op: ops.AlterColumnOp, ctx: Context) -> None:
    table = op.table_name
    target = qual(table, op.schema)
    column = op.column_name
    if op.modify_name:
        ctx.add(StepKind.DDL, f"rename column {table}.{column} to {op.modify_name}",
                [f"ALTER TABLE {target} RENAME COLUMN {q(column)} TO {q(op.modify_name)}"],
                table=table)
        column = op.modify_name
    if op.modify_server_default is not False:
        default = op.modify_server_default
        if default is None:
            ctx.add(StepKind.DDL, f"drop default of {table}.{column}",
                    [f"ALTER TABLE {target} ALTER COLUMN {q(column)} DROP DEFAULT"],
                    table=table)
        else:
            arg = default.arg if isinstance(default, sa.DefaultClause) else default
            text = literal(arg) if isinstance(arg, str) else expr_sql(arg)
            ctx.add(StepKind.DDL, f"set default of {table}.{column}",
                    [f"ALTER TABLE {target} ALTER COLUMN {q(column)} SET DEFAULT {text}"],
                    table=table)
    if op.modify_nullable is True:
        ctx.add(StepKind.DDL, f"drop NOT NULL on {table}.{column}",
                [f"ALTER TABLE {target} ALTER COLUMN {q(column)} DROP NOT NULL"], table=table)
    elif op.modify_nullable is False:
        name = not_null_check_name(table, column)
        add_check_not_valid(ctx, table, op.schema, name, f"{q(column)} IS NOT NULL")
        validate_async(ctx, table, op.schema, name)
        ctx.warn(f"{table}.{column}: NOT NULL is enforced by the validated CHECK {name} "
                 "(the column stays nullable in the catalog)")
