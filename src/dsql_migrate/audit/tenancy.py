"""Tenant isolation: every table carries the tenant column, and every key leads with it.

In a multi-tenant DSQL schema every query filters on the tenant (SKILL.md workflows 1 and 4,
DSQL.md §6), and an index serves such a query only when the tenant column is its *first* key.
Two things decide whether a schema satisfies that, and they are defined once, here:

- :func:`table_problem`: does the table have the tenant column?
- :func:`key_problem`: does an index key (an index, the primary key, a unique constraint) lead
  with it?

The lint rules ``tenant_id_missing`` and ``tenant_id_index_order`` (on SQL text) and
``dsql-migrate audit tenancy`` (on the live catalog, :func:`audit_tenancy`) both call them, so a
statement the linter passes cannot produce a table the audit flags, and the other way round.

No I/O and no database library here: the linter imports this module.
"""

from __future__ import annotations

import fnmatch
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from ..sql.quoting import identifier_bytes, quote_ident, quote_qualified

if TYPE_CHECKING:
    from ..catalog import Index, Snapshot, Table

DEFAULT_COLUMN = "tenant_id"
#: tables no tenant owns, skipped unless asked for (they are listed as skipped in the report)
DEFAULT_EXCLUDE: tuple[str, ...] = ("alembic_version",)
MAX_KEY_COLUMNS = 8  # DSQL.md §3: key columns per index or primary key
MAX_IDENTIFIER_BYTES = 63


class ProblemKind(str, Enum):
    MISSING_COLUMN = "missing_column"
    KEY_NOT_LEADING = "key_not_leading"


@dataclass(frozen=True)
class Problem:
    """Why a table or a key breaks tenant isolation."""

    kind: ProblemKind
    message: str


# -- the definition (shared with the lint rules) -------------------------------------------------

def table_problem(table: str, columns: Iterable[str], column: str) -> Problem | None:
    """None when ``table`` (with ``columns``) carries the tenant ``column``."""
    if column in set(columns):
        return None
    return Problem(ProblemKind.MISSING_COLUMN, f"table {table} has no {column} column")


def key_problem(what: str, keys: Sequence[str | None], column: str) -> Problem | None:
    """None when the key columns ``keys`` (column names, None for an expression) lead with the
    tenant ``column``. ``what`` names the key in the message: "index ix on orders",
    "primary key of orders"."""
    if keys and keys[0] == column:
        return None
    return Problem(ProblemKind.KEY_NOT_LEADING, f"{what} does not lead with {column}")


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")
_QUOTED_KEY = re.compile(r'"((?:[^"]|"")+)"\Z')


def column_of_key(key: str) -> str | None:
    """The column an index key names, as ``pg_get_indexdef`` prints it (``tenant_id``,
    ``"Tenant"``), or None for an expression (``lower(email)``)."""
    quoted = _QUOTED_KEY.match(key)
    if quoted:
        return quoted.group(1).replace('""', '"')
    return key if _PLAIN_KEY.match(key) else None


# -- the audit of a live schema ------------------------------------------------------------------

@dataclass(frozen=True)
class TenancyFinding:
    """One table or key that breaks tenant isolation, and how to fix it."""

    table: str  # schema.table
    kind: str  # "missing_column" | "primary_key" | "index"
    name: str | None  # the index (or primary key constraint) name
    message: str
    fix: tuple[str, ...]  # SQL statements, and "-- " lines that say what SQL cannot


@dataclass(frozen=True)
class TenancyReport:
    column: str
    tables: tuple[str, ...] = ()  # audited, schema.table
    skipped: tuple[str, ...] = ()  # excluded by a pattern
    findings: tuple[TenancyFinding, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {"audit": "tenancy", "column": self.column, "ok": self.ok,
                "tables": list(self.tables), "skipped": list(self.skipped),
                "findings": [{**asdict(f), "fix": list(f.fix)} for f in self.findings],
                "notes": list(self.notes)}


def selected(name: str, schema: str, schemas: Sequence[str], exclude: Sequence[str]) -> bool:
    """Whether ``schema.name`` is audited: in ``schemas`` (all when empty) and matching none of
    the ``exclude`` patterns (shell-style, on ``schema.table`` or the bare table name)."""
    if schemas and schema not in schemas:
        return False
    return not any(fnmatch.fnmatchcase(f"{schema}.{name}", pattern)
                   or fnmatch.fnmatchcase(name, pattern) for pattern in exclude)


def audit_tenancy(snapshot: Snapshot, column: str = DEFAULT_COLUMN, *,
                  schemas: Sequence[str] = (),
                  exclude: Sequence[str] = DEFAULT_EXCLUDE) -> TenancyReport:
    """Every selected table of ``snapshot``: the tenant column, then every key (the primary key,
    unique constraints and every other index) checked by the shared definition."""
    audited: list[Table] = []
    skipped: list[str] = []
    for key in sorted(snapshot.tables):
        table = snapshot.tables[key]
        if selected(table.name, table.schema, schemas, exclude):
            audited.append(table)
        elif not schemas or table.schema in schemas:
            skipped.append(key)
    column_type = _usual_type(audited, column)
    findings: list[TenancyFinding] = []
    for table in audited:
        findings.extend(_table_findings(table, column, column_type))
    notes = [] if audited else ["no table matched: nothing was audited"]
    return TenancyReport(column=column, tables=tuple(t.qualified for t in audited),
                         skipped=tuple(skipped), findings=tuple(findings), notes=tuple(notes))


def _usual_type(tables: Sequence[Table], column: str) -> str:
    """The tenant column's type where tables have it (the commonest), for the fix of a table
    that lacks it; ``uuid`` when no table has it."""
    types = Counter(c.type for t in tables for c in t.columns if c.name == column)
    return types.most_common(1)[0][0] if types else "uuid"


def _table_findings(table: Table, column: str, column_type: str) -> list[TenancyFinding]:
    found: list[TenancyFinding] = []
    missing = table_problem(table.qualified, (c.name for c in table.columns), column)
    if missing is not None:
        found.append(TenancyFinding(table.qualified, "missing_column", None, missing.message, (
            f"ALTER TABLE {_qual(table)} ADD COLUMN {quote_ident(column)} {column_type};",
            f"-- then backfill {column} in batches and lead the primary key with it: a primary "
            "key changes only by recreating the table (declare the column in the model, "
            "first in the primary key, and run dsql-migrate plan --target)",
        )))
    pk = table.primary_key
    for index in table.indexes:
        is_pk = pk is not None and index.constraint == pk.name
        what = (f"primary key {index.name} of {table.qualified}" if is_pk
                else f"index {index.name} on {table.qualified}")
        problem = key_problem(what, [column_of_key(k) for k in index.keys], column)
        if problem is None:
            continue
        fix = _primary_key_fix(table, index, column) if is_pk else _index_fix(table, index,
                                                                                column)
        found.append(TenancyFinding(table.qualified, "primary_key" if is_pk else "index",
                                    index.name, problem.message, fix))
    return found


def _qual(table: Table) -> str:
    return quote_qualified(None if table.schema == "public" else table.schema, table.name)


def _tenant_first(keys: Sequence[str], column: str) -> list[str]:
    return [quote_ident(column)] + [k for k in keys if column_of_key(k) != column]


def _primary_key_fix(table: Table, index: Index, column: str) -> tuple[str, ...]:
    keys = ", ".join(_tenant_first(index.keys, column))
    return (f"-- a primary key cannot change in place on DSQL: declare PRIMARY KEY ({keys}) "
            f"on {table.qualified} in the model and run dsql-migrate plan --target (a table "
            "recreation)",)


def _new_index_name(name: str) -> str:
    suffix = "_tenant"
    base = name
    while identifier_bytes(base + suffix) > MAX_IDENTIFIER_BYTES:
        base = base[:-1]
    return base + suffix


def _index_fix(table: Table, index: Index, column: str) -> tuple[str, ...]:
    keys = _tenant_first(index.keys, column)
    new = _new_index_name(index.name)
    statement = (f"CREATE {'UNIQUE ' if index.unique else ''}INDEX ASYNC {quote_ident(new)} "
                 f"ON {_qual(table)} ({', '.join(keys)})")
    if index.include:
        statement += f" INCLUDE ({', '.join(index.include)})"
    if index.nulls_not_distinct:
        statement += " NULLS NOT DISTINCT"
    if index.predicate:
        statement += f" WHERE {index.predicate}"
    lines = [statement + ";"]
    if len(keys) > MAX_KEY_COLUMNS:
        lines.append(f"-- {len(keys)} key columns: DSQL allows {MAX_KEY_COLUMNS}; move one into "
                     "INCLUDE (...)")
    if index.unique:
        lines.append(f"-- unique per tenant: ({', '.join(keys)}) is a weaker rule than "
                     f"({', '.join(index.keys)}); keep the old index if uniqueness across "
                     "tenants is meant")
    schema = None if table.schema == "public" else table.schema
    if index.constraint is not None:
        lines.append(f"ALTER TABLE {_qual(table)} DROP CONSTRAINT {quote_ident(index.constraint)};"
                     "  -- current profile; on classic, recreate the table")
    else:
        lines.append(f"DROP INDEX {quote_qualified(schema, index.name)};  -- once the new "
                     "index is valid")
    return tuple(lines)


__all__ = [
    "DEFAULT_COLUMN",
    "DEFAULT_EXCLUDE",
    "Problem",
    "ProblemKind",
    "TenancyFinding",
    "TenancyReport",
    "audit_tenancy",
    "column_of_key",
    "key_problem",
    "selected",
    "table_problem",
]
