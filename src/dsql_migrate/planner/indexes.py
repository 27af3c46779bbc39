"""Create (ASYNC, waited for) and drop indexes."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.operations import ops

from ..plan import StepKind
from ..profiles import Capability
from . import Context, handles
from ._sql import expr_sql, literal, q, qual
from .constraints import duplicates_query

#: where SQLAlchemy keeps the index options DSQL understands: ``postgresql_where=``, and the
#: same options under the name of AWS's dialect (``auroradsql_include=``, as its docs write them)
OPTION_DIALECTS = ("auroradsql", "postgresql")


def index_options(index: sa.Index) -> dict[str, Any]:
    """The index's ``where``, ``include``, ``using`` and ``nulls_not_distinct`` options, given
    as ``postgresql_*`` or ``auroradsql_*`` (the latter wins when both are given)."""
    out: dict[str, Any] = {}
    for dialect in reversed(OPTION_DIALECTS):
        if dialect not in index.dialect_options:  # no option of it given: nothing to load
            continue
        given = index.dialect_options[dialect]
        for option in ("where", "include", "using", "nulls_not_distinct"):
            value = given.get(option)
            if value is not None and value is not False:
                out[option] = value
    return out


def valid_index_query(name: str, schema: str | None) -> str:
    return (f"SELECT indisvalid FROM pg_index WHERE indexrelid = "
            f"{literal(qual(name, schema))}::regclass")


def async_index_step(ctx: Context, name: str, table: str, schema: str | None, sql: str) -> None:
    ctx.add(StepKind.ASYNC_INDEX, f"create index {name} on {table} (async job, waited for)",
            [sql], table=table, details={"index": name, "check": valid_index_query(name, schema)},
            notes=["done when the job has completed and the index is valid"])


def index_sql(index: sa.Index, ctx: Context, *, table_name: str | None = None) -> str | None:
    """``CREATE [UNIQUE] INDEX ASYNC``; None (with a warning) when the profile cannot."""
    table = index.table
    assert table is not None
    name = str(index.name)
    keys: list[str] = []
    expression = False
    for expr in index.expressions:
        if isinstance(expr, sa.Column):
            keys.append(q(expr.name))
        elif isinstance(expr, str):
            keys.append(q(expr))
        else:
            text = expr_sql(expr)
            if isinstance(expr, sa.sql.elements.UnaryExpression):
                ctx.warn(f"index {name}: DSQL rejects ASC/DESC on index keys; planned without")
                text = expr_sql(expr.element)
            elif not isinstance(expr, sa.sql.elements.ColumnClause):
                expression = True
                text = f"({text})"
            keys.append(text)
    if len(keys) > ctx.profile.limits.key_columns_per_index:
        ctx.warn(f"index {name}: {len(keys)} key columns, DSQL allows "
                 f"{ctx.profile.limits.key_columns_per_index}")
    options = index_options(index)
    where = options.get("where")
    if (expression and not ctx.profile.allows(Capability.EXPRESSION_INDEX)) or (
            where is not None and not ctx.profile.allows(Capability.PARTIAL_INDEX)):
        ctx.warn(f"index {name} on {table.name}: expression and partial indexes are not "
                 f"available in the {ctx.profile.name} profile; not planned")
        return None
    if options.get("using") and str(options["using"]).lower() != "btree":
        ctx.warn(f"index {name}: DSQL rejects USING {options['using']}; planned as btree")
    sql = (f"CREATE {'UNIQUE ' if index.unique else ''}INDEX ASYNC {q(name)} ON "
           f"{qual(table_name or table.name, table.schema)} ({', '.join(keys)})")
    include = options.get("include") or ()
    if include:
        sql += f" INCLUDE ({', '.join(q(str(c)) for c in include)})"
    if options.get("nulls_not_distinct"):
        sql += " NULLS NOT DISTINCT"
    if where is not None:
        sql += f" WHERE {expr_sql(where)}"
    return sql


@handles(ops.CreateIndexOp)
def create_index(op: ops.CreateIndexOp, ctx: Context) -> None:
    index = op.to_index()
    desired = ctx.desired_table(op.table_name, op.schema)
    if desired is not None:
        index = next((i for i in desired.indexes if i.name == op.index_name), index)
    sql = index_sql(index, ctx, table_name=op.table_name)
    if sql is None:
        return
    name = str(op.index_name)
    if index.unique and ctx.live_table(op.table_name, op.schema) is not None:
        columns = [c.name for c in index.expressions if isinstance(c, sa.Column)]
        if len(columns) == len(index.expressions):
            options = index_options(index)
            where = options.get("where")
            ctx.add(StepKind.VERIFY, f"pre-check: no duplicate ({', '.join(columns)}) in "
                    f"{op.table_name}",
                    [duplicates_query(op.table_name, op.schema, columns,
                                      None if where is None else expr_sql(where),
                                      nulls_distinct=not options.get("nulls_not_distinct"))],
                    table=op.table_name, details={"expect": "no rows"},
                    notes=["a unique index built over duplicates fails, stays behind invalid, "
                           "and still rejects new duplicates until dropped"])
    async_index_step(ctx, name, op.table_name, op.schema, sql)


@handles(ops.DropIndexOp)
def drop_index(op: ops.DropIndexOp, ctx: Context) -> None:
    ctx.add(StepKind.DDL, f"drop index {op.index_name}",
            [f"DROP INDEX {qual(str(op.index_name), op.schema)}"], table=op.table_name)
