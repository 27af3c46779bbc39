"""Create, drop and rename tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import sqlalchemy as sa
from alembic.operations import ops

from ..plan import Estimate, StepKind
from ..profiles import Capability
from . import Context, handles
from ._sql import cols, column_sql, expr_sql, literal, q, qual, type_sql


def create_table_sql(table: sa.Table, ctx: Context, *, name: str | None = None,
                     pk_name: str | None = None,
                     constraint_names: Mapping[int, str] | None = None,
                     reloptions: Sequence[str] = (),
                     identity_caches: Mapping[str, int] | None = None) -> str:
    """DSQL-legal ``CREATE TABLE``: identity with CACHE, no SERIAL, inline PK and constraints,
    foreign keys only where the profile has them. ``constraint_names`` (by ``id()`` of the
    constraint) overrides the constraints' own names; ``reloptions`` are storage parameters
    (``name=value``) given as ``WITH (...)``; ``identity_caches`` (column → CACHE) stands for
    the CACHE of identities that state none."""
    renamed = constraint_names or {}
    floor = ctx.profile.limits.min_large_cache
    lines = [column_sql(_with_cache(c, (identity_caches or {}).get(c.name)), cache_floor=floor)
             for c in table.columns]
    for column in table.columns:
        _check_column(table, column, ctx)
    _check_limits(table, ctx)
    pk = table.primary_key
    if pk is not None and len(pk.columns):
        named = renamed.get(id(pk)) or (pk.name if isinstance(pk.name, str) else pk_name)
        prefix = f"CONSTRAINT {q(named)} " if named else ""
        lines.append(f"{prefix}PRIMARY KEY ({cols([c.name for c in pk.columns])})")
    for constraint in sorted(table.constraints, key=lambda c: (
            renamed.get(id(c)) or str(c.name or ""),
            expr_sql(c.sqltext) if isinstance(c, sa.CheckConstraint) else "")):
        given = renamed.get(id(constraint)) or (
            constraint.name if isinstance(constraint.name, str) else None)
        named = f"CONSTRAINT {q(given)} " if given else ""
        if isinstance(constraint, sa.UniqueConstraint) and not isinstance(
                constraint, sa.PrimaryKeyConstraint):
            lines.append(f"{named}UNIQUE ({cols([c.name for c in constraint.columns])})")
        elif isinstance(constraint, sa.CheckConstraint):
            if is_type_check(constraint):
                continue
            lines.append(f"{named}CHECK ({expr_sql(constraint.sqltext)})")
        elif isinstance(constraint, sa.ForeignKeyConstraint):
            if ctx.profile.allows(Capability.FOREIGN_KEYS):
                lines.append(f"{named}{foreign_key_sql(constraint)}")
            else:
                ctx.warn(integrity_note(table.name, constraint))
    body = ",\n  ".join(lines)
    storage = f" WITH ({', '.join(reloptions)})" if reloptions else ""
    return f"CREATE TABLE {qual(name or table.name, table.schema)} (\n  {body}\n){storage}"


def _with_cache(column: sa.Column[object], cache: int | None) -> sa.Column[object]:
    """``column``, or a copy of it whose identity has ``cache`` (the target is not changed)."""
    identity = column.identity
    if cache is None or identity is None or identity.cache is not None:
        return column
    copy = column._copy()
    copy.identity = sa.Identity(always=identity.always, on_null=identity.on_null,
                                start=identity.start, increment=identity.increment,
                                minvalue=identity.minvalue, maxvalue=identity.maxvalue,
                                nominvalue=identity.nominvalue, nomaxvalue=identity.nomaxvalue,
                                cycle=identity.cycle, cache=cache, order=identity.order)
    return copy


def foreign_key_sql(fk: sa.ForeignKeyConstraint) -> str:
    ref = fk.elements[0].column.table
    sql = (f"FOREIGN KEY ({cols([c.name for c in fk.columns])}) REFERENCES "
           f"{qual(ref.name, ref.schema)} ({cols([e.column.name for e in fk.elements])})")
    if fk.ondelete:
        sql += f" ON DELETE {fk.ondelete}"
    if fk.onupdate:
        sql += f" ON UPDATE {fk.onupdate}"
    return sql


def integrity_note(table: str, fk: sa.ForeignKeyConstraint | ops.CreateForeignKeyOp) -> str:
    if isinstance(fk, ops.CreateForeignKeyOp):
        local, remote, referent = fk.local_cols, fk.remote_cols, fk.referent_table
    else:
        local = [c.name for c in fk.columns]
        remote = [e.column.name for e in fk.elements]
        referent = fk.elements[0].column.table.name
    return (f"foreign key {table} ({', '.join(local)}) -> {referent} ({', '.join(remote)}) is "
            "not enforceable in this profile: enforce it in the application (check the parent "
            "exists before insert, check dependents before delete)")


def is_type_check(constraint: sa.CheckConstraint) -> bool:
    """SQLAlchemy's own CHECKs for Boolean/Enum types are rendered with the column type."""
    return bool(getattr(constraint, "_type_bound", False))


def check_type(table: str, column: sa.Column[object], ctx: Context) -> None:
    """Warn about column types DSQL does not store (DSQL.md §1)."""
    rendered = type_sql(column.type).upper()
    if rendered.endswith("[]") or isinstance(column.type, sa.ARRAY):
        ctx.warn(f"{table}.{column.name}: DSQL has no array columns; store it as TEXT or JSON")
    elif rendered == "INET":
        ctx.warn(f"{table}.{column.name}: DSQL has no INET columns; store it as TEXT")
    elif rendered == "JSONB" and not ctx.profile.allows(Capability.JSONB):
        ctx.warn(f"{table}.{column.name}: JSONB is not available in the {ctx.profile.name} "
                 "profile; use JSON")


def _check_limits(table: sa.Table, ctx: Context) -> None:
    limits = ctx.profile.limits
    if len(table.columns) > limits.columns_per_table:
        ctx.warn(f"{table.name}: {len(table.columns)} columns, DSQL allows "
                 f"{limits.columns_per_table}")
    indexes = len(table.indexes) + (1 if len(table.primary_key.columns) else 0) + sum(
        1 for c in table.constraints
        if isinstance(c, sa.UniqueConstraint) and not isinstance(c, sa.PrimaryKeyConstraint))
    if indexes > limits.indexes_per_table:
        ctx.warn(f"{table.name}: {indexes} indexes (with the primary key and unique "
                 f"constraints), DSQL allows {limits.indexes_per_table}")
    if len(table.primary_key.columns) > limits.key_columns_per_index:
        ctx.warn(f"{table.name}: the primary key has {len(table.primary_key.columns)} columns, "
                 f"DSQL allows {limits.key_columns_per_index}")


def _check_column(table: sa.Table, column: sa.Column[object], ctx: Context) -> None:
    check_type(table.name, column, ctx)
    identity = column.identity
    if identity is not None:
        if not isinstance(column.type, sa.BigInteger):
            ctx.warn(f"{table.name}.{column.name}: DSQL identity columns must be BIGINT")
        cache = identity.cache
        if cache is not None and cache != 1 and cache < ctx.profile.limits.min_large_cache:
            ctx.warn(f"{table.name}.{column.name}: identity CACHE {cache} is not allowed "
                     f"(1 or >= {ctx.profile.limits.min_large_cache}); planned with CACHE "
                     f"{ctx.profile.limits.min_large_cache}")
    elif (column.primary_key and column.autoincrement is True
          and isinstance(column.type, sa.Integer) and column.server_default is None):
        ctx.warn(f"{table.name}.{column.name}: autoincrement without Identity would be SERIAL, "
                 "which DSQL rejects; declare sa.Identity(cache=...) on a BigInteger column")


@handles(ops.CreateTableOp)
def create_table(op: ops.CreateTableOp, ctx: Context) -> None:
    table = ctx.desired_table(op.table_name, op.schema)
    if table is None:
        table = op.to_table()
    schema = table.schema
    if schema and schema not in ctx.live.schemas and not any(
            s.sql == (f"CREATE SCHEMA {q(schema)}",) for s in ctx.steps):
        ctx.add(StepKind.DDL, f"create schema {schema}", [f"CREATE SCHEMA {q(schema)}"],
                table=None)
    ctx.add(StepKind.DDL, f"create table {table.name}", [create_table_sql(table, ctx)],
            table=table.name)


@handles(ops.DropTableOp)
def drop_table(op: ops.DropTableOp, ctx: Context) -> None:
    live = ctx.live_table(op.table_name, op.schema)
    rows = live.rows if live is not None else None
    notes = [f"drops the table and its ~{rows if rows is not None else '?'} rows; "
             "if it was renamed, declare the rename (--rename old=new) instead"]
    for suffix, what in (("__old", "the backup of {} left by a recreation that did not finish "
                                   "(its original rows)"),
                         ("__new", "the new table of a recreation of {} that did not finish "
                                   "(a partial copy)")):
        base = op.table_name.removesuffix(suffix)
        if base != op.table_name and ctx.live_table(base, op.schema) is not None:
            notes.insert(0, f"looks like {what.format(base)}: check it before approving")
    ctx.add(StepKind.DDL, f"drop table {op.table_name}",
            [f"DROP TABLE {qual(op.table_name, op.schema)}"], table=op.table_name,
            destructive=True, reversible=False, estimate=Estimate(rows=rows), notes=notes)


@handles(ops.CreateTableCommentOp)
def set_table_comment(op: ops.CreateTableCommentOp, ctx: Context) -> None:
    _table_comment(op.table_name, op.schema, op.comment, ctx)


@handles(ops.DropTableCommentOp)
def drop_table_comment(op: ops.DropTableCommentOp, ctx: Context) -> None:
    _table_comment(op.table_name, op.schema, None, ctx)


def _table_comment(table: str, schema: str | None, comment: str | None, ctx: Context) -> None:
    text = "NULL" if comment is None else literal(comment)
    ctx.add(StepKind.DDL, f"comment on table {table}",
            [f"COMMENT ON TABLE {qual(table, schema)} IS {text}"], table=table)


@handles(ops.RenameTableOp)
def rename_table(op: ops.RenameTableOp, ctx: Context) -> None:
    ctx.add(StepKind.DDL, f"rename table {op.table_name} to {op.new_table_name}",
            [f"ALTER TABLE {qual(op.table_name, op.schema)} RENAME TO {q(op.new_table_name)}"],
            table=op.new_table_name)
