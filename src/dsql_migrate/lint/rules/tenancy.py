"""Multi-tenant schema conventions (opt-in; DSQL.md §6)."""

from __future__ import annotations

from collections.abc import Iterator

from ...sql import ParsedStatement
from .. import _tree as t
from ..core import Finding, LintContext, Severity, rule


def _tenant_column(ctx: LintContext) -> str:
    return str(ctx.options.get("tenant_column", "tenant_id"))


@rule("tenant_id_missing", nodes=("CreateStmt",), severity=Severity.WARNING,
      default_enabled=False)
def tenant_id_missing(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """A table has no `tenant_id` column (opt-in).

    In a multi-tenant schema every table carries the tenant key so that every query can filter
    on it. Enable with `enable = ["tenant_id_missing"]` in `[lint]`; the column name is
    `tenant_column` (default `tenant_id`).

    Example: `CREATE TABLE orders (id uuid PRIMARY KEY, total numeric);` →
    `CREATE TABLE orders (tenant_id uuid NOT NULL, id uuid, total numeric,
    PRIMARY KEY (tenant_id, id));`
    """
    assert p.node is not None
    column = _tenant_column(ctx)
    if not any(c.get("colname") == column for c in t.column_defs(p.node)):
        todo = f"add a {column} column and lead the primary key with it"
        yield Finding(f"table {t.relname(p.node.get('relation'))} has no {column} column", todo,
                      detail=todo)


@rule("tenant_id_index_order", nodes=("IndexStmt",), severity=Severity.WARNING,
      default_enabled=False)
def tenant_id_index_order(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """An index does not lead with `tenant_id` (opt-in).

    Tenant-scoped queries use an index only if its first key is the tenant column. Enable with
    `enable = ["tenant_id_index_order"]` in `[lint]`.

    Example: `CREATE INDEX ASYNC ix ON orders (created_at);` →
    `CREATE INDEX ASYNC ix ON orders (tenant_id, created_at);`
    """
    assert p.node is not None
    column = _tenant_column(ctx)
    params = p.node.get("indexParams") or ()
    first = (params[0].get("IndexElem") or {}).get("name") if params else None
    if first != column:
        todo = f"put {column} first in the index key"
        yield Finding(f"index on {t.relname(p.node.get('relation'))} does not lead with "
                      f"{column}", todo, detail=todo)
