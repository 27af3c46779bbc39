"""Unique, check and foreign-key constraints: add, drop, validate; primary-key changes."""

from __future__ import annotations

from alembic.operations import ops

from ..ops import ChangePrimaryKeyOp, ValidateConstraintOp
from ..plan import StepKind
from ..profiles import Capability
from . import Context, handles, recreation_check
from ._sql import cols, expr_sql, literal, q, qual


def add_check_not_valid(ctx: Context, table: str, schema: str | None, name: str,
                        condition: str) -> None:
    ctx.add(StepKind.DDL, f"add CHECK {name} on {table} (NOT VALID)",
            [f"ALTER TABLE {qual(table, schema)} ADD CONSTRAINT {q(name)} CHECK ({condition}) "
             "NOT VALID"], table=table,
            notes=["checked for new writes at once; existing rows are validated next"])


def validate_async(ctx: Context, table: str, schema: str | None, name: str) -> None:
    ctx.add(StepKind.ASYNC_VALIDATE, f"validate {name} on {table} (async job, waited for)",
            [f"ALTER TABLE ASYNC {qual(table, schema)} VALIDATE CONSTRAINT {q(name)}"],
            table=table, details={"constraint": name, "check": validated_query(
                table, schema, name)})


def validated_query(table: str, schema: str | None, name: str) -> str:
    return (f"SELECT convalidated FROM pg_constraint WHERE conrelid = "
            f"{literal(qual(table, schema))}::regclass AND conname = {literal(name)}")


def duplicates_query(table: str, schema: str | None, columns: list[str],
                     where: str | None = None, nulls_distinct: bool = True) -> str:
    conditions = [f"{q(c)} IS NOT NULL" for c in columns] if nulls_distinct else []
    if where:
        conditions.append(f"({where})")
    filt = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return (f"SELECT {cols(columns)}, count(*) AS copies FROM {qual(table, schema)}{filt} "
            f"GROUP BY {cols(columns)} HAVING count(*) > 1 LIMIT 20")


def validated_later(ctx: Context, op: ops.CreateCheckConstraintOp | ops.CreateForeignKeyOp,
                    table: str, name: str) -> bool:
    """A constraint added ``NOT VALID`` (``postgresql_not_valid=True``) that an op of the same
    plan validates: its rows are pre-checked as for the implicit form. Without that op, NOT
    VALID means "leave the existing rows alone", and they are neither checked nor validated."""
    if not op.kw.get("postgresql_not_valid"):
        return True
    return any(isinstance(other, ValidateConstraintOp) and other.table_name == table
               and other.constraint_name == name for other in ctx.all_ops)


def _key_list(ctx: Context, table: str, schema: str | None) -> str:
    from .columns import live_name

    live = ctx.live_table(live_name(ctx, table), schema)
    pk = live.primary_key if live is not None else None
    return cols(list(pk.columns)) if pk is not None else "*"


# -- unique --------------------------------------------------------------------------------------

@recreation_check(ops.CreateUniqueConstraintOp)
def add_unique_recreates(op: ops.CreateUniqueConstraintOp, ctx: Context) -> str | None:
    if not ctx.profile.allows(Capability.ADD_UNIQUE_USING_INDEX):
        return f"add unique constraint {op.constraint_name} ({ctx.profile.name} profile)"
    return None


@handles(ops.CreateUniqueConstraintOp)
def add_unique(op: ops.CreateUniqueConstraintOp, ctx: Context) -> None:
    from .indexes import async_index_step

    name = str(op.constraint_name)
    columns = [str(c) for c in op.columns]
    ctx.add(StepKind.VERIFY, f"pre-check: no duplicate ({', '.join(columns)}) in "
            f"{op.table_name}", [duplicates_query(op.table_name, op.schema, columns)],
            table=op.table_name, details={"expect": "no rows"},
            notes=["a unique index built over duplicates fails, and stays behind invalid"])
    async_index_step(ctx, name, op.table_name, op.schema,
                     f"CREATE UNIQUE INDEX ASYNC {q(name)} ON {qual(op.table_name, op.schema)} "
                     f"({cols(columns)})")
    ctx.add(StepKind.DDL, f"add unique constraint {name} using its index",
            [f"ALTER TABLE {qual(op.table_name, op.schema)} ADD CONSTRAINT {q(name)} "
             f"UNIQUE USING INDEX {q(name)}"], table=op.table_name)


# -- check ---------------------------------------------------------------------------------------

@recreation_check(ops.CreateCheckConstraintOp)
def add_check_recreates(op: ops.CreateCheckConstraintOp, ctx: Context) -> str | None:
    if not (ctx.profile.allows(Capability.CHECK_NOT_VALID)
            and ctx.profile.allows(Capability.VALIDATE_CONSTRAINT_ASYNC)):
        return f"add CHECK {op.constraint_name} ({ctx.profile.name} profile)"
    return None


@handles(ops.CreateCheckConstraintOp)
def add_check(op: ops.CreateCheckConstraintOp, ctx: Context) -> None:
    name = str(op.constraint_name)
    condition = expr_sql(op.condition)
    if validated_later(ctx, op, op.table_name, name):
        ctx.add(StepKind.VERIFY, f"pre-check: rows of {op.table_name} that fail CHECK {name}",
                [f"SELECT {_key_list(ctx, op.table_name, op.schema)} FROM "
                 f"{qual(op.table_name, op.schema)} WHERE NOT ({condition}) LIMIT 20"],
                table=op.table_name, details={"expect": "no rows"})
    add_check_not_valid(ctx, op.table_name, op.schema, name, condition)
    if not op.kw.get("postgresql_not_valid"):
        validate_async(ctx, op.table_name, op.schema, name)


# -- foreign keys --------------------------------------------------------------------------------

@handles(ops.CreateForeignKeyOp)
def add_foreign_key(op: ops.CreateForeignKeyOp, ctx: Context) -> None:
    from .tables import integrity_note

    table, schema = op.source_table, op.kw.get("source_schema")
    if not ctx.profile.allows(Capability.FOREIGN_KEYS):
        ctx.warn(integrity_note(table, op))
        return
    name = str(op.constraint_name or f"{table}_{'_'.join(op.local_cols)}_fkey")
    ref = qual(op.referent_table, op.kw.get("referent_schema"))
    local = [str(c) for c in op.local_cols]
    remote = [str(c) for c in op.remote_cols]
    join = " AND ".join(f"p.{q(r)} = c.{q(lc)}" for lc, r in zip(local, remote, strict=True))
    not_null = " AND ".join(f"c.{q(lc)} IS NOT NULL" for lc in local)
    if validated_later(ctx, op, table, name):
        ctx.add(StepKind.VERIFY, f"pre-check: rows of {table} without a parent in "
                f"{op.referent_table}",
                [f"SELECT {', '.join('c.' + q(lc) for lc in local)} FROM {qual(table, schema)} "
                 f"c WHERE {not_null} AND NOT EXISTS (SELECT 1 FROM {ref} p WHERE {join}) "
                 "LIMIT 20"], table=table, details={"expect": "no rows"})
    actions = ""
    if op.kw.get("ondelete"):
        actions += f" ON DELETE {op.kw['ondelete']}"
    if op.kw.get("onupdate"):
        actions += f" ON UPDATE {op.kw['onupdate']}"
    ctx.add(StepKind.DDL, f"add foreign key {name} on {table} (NOT VALID)",
            [f"ALTER TABLE {qual(table, schema)} ADD CONSTRAINT {q(name)} FOREIGN KEY "
             f"({cols(local)}) REFERENCES {ref} ({cols(remote)}){actions} NOT VALID"],
            table=table)
    if not op.kw.get("postgresql_not_valid"):
        validate_async(ctx, table, schema, name)


# -- drop / validate / primary key ---------------------------------------------------------------

@recreation_check(ops.DropConstraintOp)
def drop_constraint_recreates(op: ops.DropConstraintOp, ctx: Context) -> str | None:
    if op.constraint_type == "primary":
        return "drop the primary key"
    if not ctx.profile.allows(Capability.DROP_CONSTRAINT):
        return f"drop constraint {op.constraint_name} ({ctx.profile.name} profile)"
    return None


@handles(ops.DropConstraintOp)
def drop_constraint(op: ops.DropConstraintOp, ctx: Context) -> None:
    ctx.add(StepKind.DDL, f"drop constraint {op.constraint_name} on {op.table_name}",
            [f"ALTER TABLE {qual(op.table_name, op.schema)} DROP CONSTRAINT "
             f"{q(str(op.constraint_name))}"], table=op.table_name)


@handles(ValidateConstraintOp)
def validate_constraint(op: ValidateConstraintOp, ctx: Context) -> None:
    if not ctx.profile.allows(Capability.VALIDATE_CONSTRAINT_ASYNC):
        ctx.warn(f"constraint {op.constraint_name} on {op.table_name} is NOT VALID and the "
                 f"{ctx.profile.name} profile cannot validate it")
        return
    validate_async(ctx, op.table_name, op.schema, op.constraint_name)


@recreation_check(ChangePrimaryKeyOp)
def change_pk_recreates(op: ChangePrimaryKeyOp, ctx: Context) -> str | None:
    return f"change the primary key to ({', '.join(op.columns)})"


@handles(ChangePrimaryKeyOp)
def change_pk(op: ChangePrimaryKeyOp, ctx: Context) -> None:  # pragma: no cover - recreation
    raise AssertionError("a primary-key change is always planned as a recreation")
