"""Numeric limits visible in SQL text (DSQL.md §3)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pglast import parser as _pg

from ...sql import ParsedStatement
from .. import _tree as t
from ..core import Finding, LintContext, rule, script_rule

_LONG_TOKEN = re.compile(r'[^\s,;()."\']{22,}|"[^"]{22,}"')
_QUOTED_LONG = re.compile(r'"[^"]{22,}"')


def _may_have_long_identifier(text: str) -> bool:
    """Cheap necessary condition for an identifier over 63 bytes (22+ characters at 3 bytes
    each): a quoted one, or a run of 22 characters without a separator, which needs a
    whitespace-free chunk that long (splitting is faster than the pattern on most text)."""
    if '"' in text and _QUOTED_LONG.search(text):
        return True
    return max(map(len, text.split()), default=0) >= 22 and _LONG_TOKEN.search(text) is not None


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
    if len(p.text) <= limit or not _may_have_long_identifier(p.text):
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
    limit = ctx.limits.columns_per_table
    if p.lower.count(",") < limit:
        return  # more than ``limit`` columns need at least ``limit`` commas
    assert p.node is not None
    n = sum(1 for _ in t.column_defs(p.node))
    if n > limit:
        todo = "split the table into several tables sharing the primary key"
        yield Finding(f"table has {n} columns; DSQL allows at most {limit}", todo, detail=todo)


_IDXNAME = re.compile(r'"IndexStmt":\{"idxname":"([^"\\]*)"')
_KEY_WORDS = re.compile(r"\b(?:primary\s+key|unique)\b")


def _exact_indexes(p: ParsedStatement) -> int:
    """Indexes a CREATE TABLE or ALTER TABLE creates through PRIMARY KEY / UNIQUE."""
    node = p.node or {}
    kinds = ("CONSTR_PRIMARY", "CONSTR_UNIQUE")
    if p.node_type == "CreateStmt":
        n = sum(c.get("contype") in kinds for c in t.table_constraints(node))
        for col in t.column_defs(node):
            n += sum(c.get("contype") in kinds for c in t.column_constraints(col))
        return n
    return sum((t.added_constraint(c) or {}).get("contype") in kinds for c in t.alter_cmds(node))


def _index_bound(p: ParsedStatement) -> tuple[str, int, bool] | None:
    """(table, count, exact) for a statement that adds indexes; the count of a CREATE/ALTER
    TABLE is first an upper bound taken from the text, so the tree is decoded only when the
    bound could matter."""
    if p.node_type == "IndexStmt":
        return t.statement_relation(p), 1, True
    if p.node_type in ("CreateStmt", "AlterTableStmt"):
        bound = len(_KEY_WORDS.findall(p.lower))
        if bound == 0:
            return None
        return t.statement_relation(p), bound, False
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
    parts: dict[str, list[tuple[ParsedStatement, int, bool]]] = {}
    names: dict[str, str] = {}
    limit = ctx.limits.indexes_per_table
    reported: set[str] = set()
    for p in ctx.statements:
        if p.node_type == "DropStmt" and "index" in p.lower:
            if (p.node or {}).get("removeType") != "OBJECT_INDEX":
                continue
            for obj in (p.node or {}).get("objects") or ():
                table = names.pop(".".join(t.svals((obj.get("List") or {}).get("items"))), None)
                if table is not None:
                    counts[table] -= 1
            continue
        if p.node_type not in ("IndexStmt", "CreateStmt", "AlterTableStmt"):
            continue
        if p.node_type == "CreateStmt" and not _KEY_WORDS.search(p.lower):
            continue
        if p.node_type == "AlterTableStmt" and not _KEY_WORDS.search(p.lower):
            continue
        bound = _index_bound(p)
        if bound is None:
            continue
        table, n, exact = bound
        if p.node_type == "IndexStmt" and p.json is not None:
            m = _IDXNAME.search(p.json)
            if m is not None:
                names[m.group(1)] = table
        parts.setdefault(table, []).append((p, n, exact))
        counts[table] = counts.get(table, 0) + n
        if counts[table] > limit and table not in reported:
            # the text-based bounds say "maybe": count exactly from the trees
            exact_parts = [(q, m if ok else _exact_indexes(q), True) for q, m, ok in parts[table]]
            counts[table] += sum(m for _, m, _ in exact_parts) - sum(m for _, m, _ in parts[table])
            parts[table] = exact_parts
            if counts[table] > limit:
                reported.add(table)
                todo = "drop indexes that queries do not need"
                yield p, Finding(f"table {table} now has {counts[table]} indexes (primary key "
                                 f"and UNIQUE included); DSQL allows at most {limit}", todo,
                                 detail=todo)


def _count_creates(
    ctx: LintContext, node_type: str, limit: int, what: str, exempt: tuple[str, ...] = ()
) -> Iterator[tuple[ParsedStatement, Finding]]:
    seen: set[str] = set()
    for p in ctx.statements:
        if p.node_type != node_type:
            continue
        name = (str((p.node or {}).get("schemaname", "")) if node_type == "CreateSchemaStmt"
                else t.statement_relation(p))
        if name in exempt or name in seen:
            continue
        seen.add(name)
        if len(seen) == limit + 1:
            todo = f"DSQL allows at most {limit} {what}: consolidate"
            yield p, Finding(f"the script creates more than {limit} {what}", todo, detail=todo)


@script_rule("too_many_schemas")
def too_many_schemas(ctx: LintContext) -> Iterator[tuple[ParsedStatement, Finding]]:
    """The script creates more than 10 schemas.

    DSQL allows 10 schemas besides `public` (`schemas` in the profile's limits). Only schemas
    created by the script are counted.

    Example: eleven `CREATE SCHEMA tenant_N;` statements.
    """
    return _count_creates(ctx, "CreateSchemaStmt", ctx.limits.schemas, "schemas",
                          exempt=("public",))


@script_rule("too_many_tables")
def too_many_tables(ctx: LintContext) -> Iterator[tuple[ParsedStatement, Finding]]:
    """The script creates more than 1,000 tables.

    DSQL allows 1,000 tables per database (`tables_per_database`). Only tables created by the
    script are counted.

    Example: a generated schema with one table per customer.
    """
    return _count_creates(ctx, "CreateStmt", ctx.limits.tables_per_database, "tables")
