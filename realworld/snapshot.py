"""A schema snapshot from PostgreSQL's catalogs, flattened to ``{key: value}`` for comparing.

Keys name one object each (``("column", "runs", "status")``); values are what must be equal on
both sides. Types come from ``format_type`` (so ``FLOAT(53)`` and ``DOUBLE PRECISION`` are one
spelling), defaults and constraint/index definitions from ``pg_get_expr`` /
``pg_get_constraintdef`` / ``pg_get_indexdef``, which print equivalent definitions identically.
The harness's and the emulator's own schemas (``dsql_migrate``, ``sys``) are left out, and so
is ``alembic_version``'s table (its rows are compared instead), and so are the emulator's
row-counting triggers (their functions live in ``sys``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import psycopg

Key = tuple[str, ...]
Snapshot = dict[Key, Any]

SKIPPED_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast", "dsql_migrate", "sys")
_SCHEMAS = ("n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', "
            "'dsql_migrate', 'sys') AND n.nspname !~ '^pg_(toast_)?temp'")
# not a member of an extension (``deptype = 'e'``)
_NOT_MEMBER = ("NOT EXISTS (SELECT FROM pg_depend x WHERE x.objid = {oid} "
               "AND x.deptype = 'e')")

QUERIES: dict[str, str] = {
    "table": f"""
        SELECT n.nspname, c.relname, c.relkind::text
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {_SCHEMAS}
          AND c.relname <> 'alembic_version'""",
    "column": f"""
        SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
               NOT a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity::text,
               a.attgenerated::text
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relkind IN ('r', 'p', 'v', 'f') AND a.attnum > 0 AND NOT a.attisdropped
          AND {_SCHEMAS} AND c.relname <> 'alembic_version'""",
    "constraint": f"""
        SELECT n.nspname, c.relname, k.conname, k.contype::text, pg_get_constraintdef(k.oid),
               k.convalidated
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_SCHEMAS} AND c.relname <> 'alembic_version'""",
    "index": f"""
        SELECT n.nspname, c.relname, ic.relname, pg_get_indexdef(i.indexrelid), i.indisvalid
        FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
        JOIN pg_class ic ON ic.oid = i.indexrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_SCHEMAS} AND c.relname <> 'alembic_version'""",
    "view": f"""
        SELECT n.nspname, c.relname, pg_get_viewdef(c.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('v', 'm') AND {_SCHEMAS}""",
    "sequence": f"""
        SELECT n.nspname, c.relname, format_type(s.seqtypid, NULL)
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_SCHEMAS} AND {_NOT_MEMBER.format(oid="c.oid")}
          AND NOT EXISTS (SELECT FROM pg_depend dep WHERE dep.objid = c.oid
                          AND dep.deptype = 'i')""",
    "function": f"""
        SELECT n.nspname, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
               l.lanname
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        JOIN pg_language l ON l.oid = p.prolang
        WHERE {_SCHEMAS} AND {_NOT_MEMBER.format(oid="p.oid")}""",
    # an extension is one object: its members (functions, types, ...) are left out above
    "extension": f"""
        SELECT n.nspname, e.extname FROM pg_extension e
        JOIN pg_namespace n ON n.oid = e.extnamespace
        WHERE {_SCHEMAS}""",
    "trigger": f"""
        SELECT n.nspname, c.relname, t.tgname, pg_get_triggerdef(t.oid)
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace pn ON pn.oid = p.pronamespace
        WHERE NOT t.tgisinternal AND pn.nspname <> 'sys' AND {_SCHEMAS}""",
    "type": f"""
        SELECT n.nspname, t.typname, t.typtype::text,
               (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                FROM pg_enum e WHERE e.enumtypid = t.oid)
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typtype IN ('e', 'd', 'c') AND {_SCHEMAS}
          AND {_NOT_MEMBER.format(oid="t.oid")}
          AND NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = t.typrelid
                          AND c.relkind <> 'c')""",
}

# how many leading columns of each query form the key; the rest is the value
KEY_WIDTH = {"table": 2, "column": 3, "constraint": 3, "index": 3, "view": 2, "sequence": 2,
             "function": 2, "trigger": 3, "type": 2, "extension": 2}


def _qualified(schema: str, name: str) -> str:
    return name if schema == "public" else f"{schema}.{name}"


Query = Callable[[str], Sequence[Sequence[Any]]]


def take(query: Query) -> Snapshot:
    """The schema of the database that ``query`` (SQL text -> rows) runs on."""
    snap: Snapshot = {}
    for kind, sql in QUERIES.items():
        width = KEY_WIDTH[kind]
        for row in query(sql):
            key = (kind, _qualified(row[0], row[1]), *[str(v) for v in row[2:width]])
            value = tuple(row[width:])
            snap[key] = value[0] if len(value) == 1 else value
    return snap


def versions(query: Query) -> frozenset[str]:
    """The revisions recorded in ``alembic_version`` (empty when the table does not exist)."""
    found = query("SELECT to_regclass('alembic_version') IS NOT NULL")
    if not found or not found[0][0]:
        return frozenset()
    return frozenset(str(r[0]) for r in query("SELECT version_num FROM alembic_version"))


State = tuple[Snapshot, frozenset[str]]


def of_url(url: str) -> State:
    """Schema and ``alembic_version`` of the database at ``url``."""
    with psycopg.connect(url, autocommit=True) as conn:
        def query(sql: str) -> Sequence[Sequence[Any]]:
            return conn.execute(sql).fetchall()  # type: ignore[arg-type,unused-ignore]
        return take(query), versions(query)


def describe(key: Key) -> str:
    """``column runs.status`` for a key."""
    kind, *names = key
    if kind in ("column", "constraint", "index", "trigger"):
        return f"{kind} {names[0]}.{names[1]}"
    return f"{kind} {names[0]}"


def stock_made(key: Key, value: Any) -> bool:
    """Whether an object is one that only stock Alembic on PostgreSQL makes, never the plugin on
    DSQL: a sequence (``SERIAL``'s), a column defaulting to ``nextval``, an enum or composite
    type, a trigger, a function in a language other than SQL, an extension."""
    kind = key[0]
    if kind in ("sequence", "trigger", "extension"):
        return True
    if kind == "column":
        return str(value[2] or "").startswith("nextval(")
    if kind == "type":
        return value[0] in ("e", "c")
    if kind == "function":
        return str(value) != "sql"
    return False
