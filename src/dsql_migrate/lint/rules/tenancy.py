"""Multi-tenant schema conventions (opt-in; DSQL.md §6).

What "satisfies tenancy" means is defined once, in :mod:`dsql_migrate.audit.tenancy`
(``table_problem`` and ``key_problem``): these rules apply it to SQL text,
``dsql-migrate audit tenancy`` to the live catalog.
"""

from __future__ import annotations

from collections.abc import Iterator

from ...sql import ParsedStatement
from .. import _tree as t
from ..core import Finding, LintContext, Severity, rule

_KEYS = {"CONSTR_PRIMARY": "primary key", "CONSTR_UNIQUE": "unique constraint"}


# The definition (audit.tenancy) is imported when an opt-in tenancy rule first runs: the audit
# module (and its dataclasses) would cost every other lint's start-up (issue 18).


def _tenant_column(ctx: LintContext) -> str:
    from ...audit.tenancy import DEFAULT_COLUMN

    return str(ctx.options.get("tenant_column", DEFAULT_COLUMN))


@rule("tenant_id_missing", nodes=("CreateStmt",), severity=Severity.WARNING,
      default_enabled=False)
def tenant_id_missing(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """A table has no `tenant_id` column (opt-in).

    In a multi-tenant schema every table carries the tenant key so that every query can filter
    on it. Enable with `enable = ["tenant_id_missing"]` in `[lint]`; the column name is
    `tenant_column` (default `tenant_id`). `dsql-migrate audit tenancy` checks the live schema
    by the same definition.

    Example: `CREATE TABLE orders (id uuid PRIMARY KEY, total numeric);` →
    `CREATE TABLE orders (tenant_id uuid NOT NULL, id uuid, total numeric,
    PRIMARY KEY (tenant_id, id));`
    """
    assert p.node is not None
    column = _tenant_column(ctx)
    names = (str(c.get("colname")) for c in t.column_defs(p.node))
    from ...audit.tenancy import table_problem

    problem = table_problem(t.relname(p.node.get("relation")), names, column)
    if problem is not None:
        todo = f"add a {column} column and lead the primary key with it"
        yield Finding(problem.message, todo, detail=todo)


@rule("tenant_id_index_order", nodes=("IndexStmt", "CreateStmt"), severity=Severity.WARNING,
      default_enabled=False)
def tenant_id_index_order(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """An index, primary key or unique constraint does not lead with `tenant_id` (opt-in).

    Tenant-scoped queries use an index only if its first key is the tenant column; a primary
    key or UNIQUE constraint is an index too. Enable with `enable = ["tenant_id_index_order"]`
    in `[lint]`. A table without the column is `tenant_id_missing`'s finding, not this one's.
    `dsql-migrate audit tenancy` checks the live schema by the same definition.

    Example: `CREATE INDEX ASYNC ix ON orders (created_at);` →
    `CREATE INDEX ASYNC ix ON orders (tenant_id, created_at);`
    """
    assert p.node is not None
    from ...audit.tenancy import key_problem, table_problem

    column = _tenant_column(ctx)
    table = t.relname(p.node.get("relation"))
    if p.node_type == "IndexStmt":
        params = p.node.get("indexParams") or ()
        keys = [(e.get("IndexElem") or {}).get("name") for e in params]
        problem = key_problem(f"index on {table}", keys, column)
        if problem is not None:
            todo = f"put {column} first in the index key"
            yield Finding(problem.message, todo, detail=todo)
        return
    names = [str(c.get("colname")) for c in t.column_defs(p.node)]
    if table_problem(table, names, column) is not None:
        return
    for what, keys in _create_table_keys(p.node):
        problem = key_problem(f"{what} of {table}", keys, column)
        if problem is not None:
            todo = f"put {column} first in the {what}"
            yield Finding(problem.message, todo, detail=todo)


def _create_table_keys(create: t.Node) -> Iterator[tuple[str, list[str | None]]]:
    """The keys a CREATE TABLE makes an index for: (what, key columns)."""
    for coldef in t.column_defs(create):
        for constraint in t.column_constraints(coldef):
            what = _KEYS.get(str(constraint.get("contype")))
            if what is not None:
                yield what, [str(coldef.get("colname"))]
    for constraint in t.table_constraints(create):
        what = _KEYS.get(str(constraint.get("contype")))
        if what is not None:
            yield what, list(t.svals(constraint.get("keys")))
