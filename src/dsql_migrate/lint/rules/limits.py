"""Numeric limits visible in SQL text (DSQL.md §3)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pglast import parser as _pg

from ...sql import ParsedStatement
from .. import _tree as t
from ..core import Finding, LintContext, rule, script_rule

_LONG_TOKEN = re.compile(r'[^\s,;()."\']{22,}|"[^"]{22,}"')
def _long_identifiers(text: str, limit: int) -> Iterator[tuple[str, int, int]]:
    """(name, byte length, character offset) of identifiers longer than ``limit`` bytes.

    The parse tree cannot tell: PostgreSQL's scanner has already truncated names to 63 bytes.
    """
    raw = text.encode("utf-8")
    try:
        tokens = _pg.scan(text)
    except _pg.ParseError:
        return
    for tok in tokens:
        if tok.name != "IDENT":
            continue
        ident = raw[tok.start : tok.end + 1]
        if ident.startswith(b'"'):
            ident = ident[1:-1].replace(b'""', b'"')
        if len(ident) > limit:
            offset = len(raw[: tok.start].decode("utf-8", errors="ignore"))
            yield ident.decode("utf-8", errors="replace"), len(ident), offset


@rule("identifier_too_long", nodes=None)
def identifier_too_long(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """An identifier is longer than 63 bytes.

    PostgreSQL (and DSQL) silently truncate longer names, so two long names can collide and
    later statements that use the full name may miss. Shorten it (`identifier_bytes` in the
    profile).

    Example: `CREATE INDEX ASYNC ix_orders_customer_id_created_at_status_amount_currency_region
    ON orders (...);`
    """
    limit = ctx.limits.identifier_bytes
    if len(p.text) <= limit or not _LONG_TOKEN.search(p.text):
        return
    for name, size, offset in _long_identifiers(p.text, limit):
        todo = f"use a name of at most {limit} bytes"
        yield Finding(f"identifier {name[:40]}... is {size} bytes long; the limit is {limit}",
                      todo, detail=todo, location=p.location_of(offset))


@rule("too_many_columns", nodes=("CreateStmt",))
def too_many_columns(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """A table has more than 255 columns.

    DSQL rejects tables wider than `columns_per_table` (error 54011). Split the table.

    Example: a `CREATE TABLE` with 300 columns.
    """
    assert p.node is not None
    n = sum(1 for _ in t.column_defs(p.node))
    limit = ctx.limits.columns_per_table
    if n > limit:
        todo = "split the table into several tables sharing the primary key"
        yield Finding(f"table has {n} columns; DSQL allows at most {limit}", todo, detail=todo)


def _counted_indexes(p: ParsedStatement) -> tuple[str, int] | None:
    node = p.node or {}
    if p.node_type == "IndexStmt":
        return t.relname(node.get("relation")), 1
    if p.node_type == "CreateStmt":
        n = 0
        for con in t.table_constraints(node):
            n += con.get("contype") in ("CONSTR_PRIMARY", "CONSTR_UNIQUE")
        for col in t.column_defs(node):
            n += sum(c.get("contype") in ("CONSTR_PRIMARY", "CONSTR_UNIQUE")
                     for c in t.column_constraints(col))
        return t.relname(node.get("relation")), n
    if p.node_type == "AlterTableStmt":
        n = sum((t.added_constraint(c) or {}).get("contype") in ("CONSTR_PRIMARY",
                                                                 "CONSTR_UNIQUE")
                for c in t.alter_cmds(node))
        return (t.relname(node.get("relation")), n) if n else None
    return None


@script_rule("too_many_indexes")
def too_many_indexes(ctx: LintContext) -> Iterator[tuple[ParsedStatement, Finding]]:
    """A table gets more than 24 indexes within the script.

    DSQL counts the primary key, UNIQUE constraints and indexes still being built towards a
    limit of 24 per table (`indexes_per_table`). The count here covers what the script itself
    creates (a table that already has indexes reaches the limit sooner).

    Example: 25 `CREATE INDEX ASYNC ... ON orders` statements.
    """
    counts: dict[str, int] = {}
    names: dict[str, str] = {}
    limit = ctx.limits.indexes_per_table
    reported: set[str] = set()
    for p in ctx.statements:
        if p.node_type == "DropStmt" and (p.node or {}).get("removeType") == "OBJECT_INDEX":
            for obj in (p.node or {}).get("objects") or ():
                table = names.pop(".".join(t.svals((obj.get("List") or {}).get("items"))), None)
                if table is not None:
                    counts[table] -= 1
            continue
        counted = _counted_indexes(p)
        if counted is None:
            continue
        table, n = counted
        if p.node_type == "IndexStmt" and (p.node or {}).get("idxname"):
            names[str((p.node or {})["idxname"])] = table
        counts[table] = counts.get(table, 0) + n
        if counts[table] > limit and table not in reported:
            reported.add(table)
            todo = "drop indexes that queries do not need"
            yield p, Finding(f"table {table} now has {counts[table]} indexes (primary key and "
                             f"UNIQUE included); DSQL allows at most {limit}", todo, detail=todo)
