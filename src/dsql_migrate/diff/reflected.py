"""Alembic's comparison fed from the live snapshot instead of reflection queries.

Alembic compares a table by reflecting it through SQLAlchemy's inspector: a dozen catalog
queries, each compiled by SQLAlchemy first. ``plan`` has already read the same catalog into
its :class:`~dsql_migrate.catalog.Snapshot`, so for the tables it must compare it hands
Alembic a :class:`SnapshotInspector`: SQLAlchemy's own PostgreSQL inspector, running
SQLAlchemy's own reflection code (type parsing, foreign-key parsing, identity and index
options, ...), whose queries are answered from the snapshot rows instead of the server.
What comes out is what SQLAlchemy would have reflected, so Alembic's ops do not change
(tests/test_diff_reflected.py compares both ways on every planner case).

It answers only what the snapshot holds exactly: tables of the default schema whose every
column, constraint and index it can restate as the catalog would return them (plain btree
indexes on columns, no generated columns, collations, check constraints, comments on
constraints or indexes, inheritance, tablespaces, other access methods: those are listed
by :data:`REFLECTION_FACTS_SQL`). Any other query, or any table it cannot restate, raises
:class:`Unsupported` and the caller runs Alembic's real reflection instead.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.dialects.postgresql.base import PGDialect, PGInspector
from sqlalchemy.engine import Connection

from ..catalog import Index as LiveIndex
from ..catalog import Snapshot
from ..catalog import Table as LiveTable


class Unsupported(Exception):
    """The snapshot cannot answer this reflection query exactly: reflect for real."""


#: whether the snapshot can stand in for reflection, and the tables it cannot restate: (1)
#: the search path is the default schema alone and no table of it is hidden by a catalog
#: table of the same name (so "the tables of the default schema" is what SQLAlchemy lists);
#: (2) "schema.table" of the tables named ``names`` with something the snapshot does not hold
REFLECTION_FACTS_SQL = r"""
SELECT current_schemas(true) = ARRAY['pg_catalog', current_schema()]::name[]
       AND NOT EXISTS (SELECT FROM pg_class c JOIN pg_class s ON s.relname = c.relname
                       WHERE c.relnamespace = current_schema()::regnamespace
                         AND s.relnamespace = 'pg_catalog'::regnamespace),
       ARRAY(SELECT n.nspname || '.' || c.relname
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema()
               AND c.relname = ANY(%(names)s)
               AND (c.reltablespace <> 0 OR c.reloftype <> 0 OR c.relispartition
                    OR (c.relkind = 'r' AND (SELECT amname FROM pg_am WHERE oid = c.relam)
                        IS DISTINCT FROM current_setting('default_table_access_method'))
                    OR EXISTS (SELECT FROM pg_inherits
                               WHERE inhrelid = c.oid OR inhparent = c.oid)
                    OR EXISTS (SELECT FROM pg_attribute a
                               WHERE a.attrelid = c.oid AND a.attnum > 0
                                 AND NOT a.attisdropped AND a.attgenerated <> '')
                    OR EXISTS (SELECT FROM pg_constraint con
                               LEFT JOIN pg_description d ON d.objoid = con.oid
                                    AND d.classoid = 'pg_constraint'::regclass
                               WHERE con.conrelid = c.oid
                                 AND (con.contype NOT IN ('p', 'u', 'c', 'f', 'n')
                                      OR d.objoid IS NOT NULL))
                    OR EXISTS (SELECT FROM pg_index i
                               JOIN pg_class ic ON ic.oid = i.indexrelid
                               LEFT JOIN pg_description d ON d.objoid = ic.oid
                                    AND d.classoid = 'pg_class'::regclass
                               WHERE i.indrelid = c.oid
                                 AND (ic.reltablespace <> 0 OR d.objoid IS NOT NULL))))
"""


@dataclass(frozen=True)
class ReflectionFacts:
    """:data:`REFLECTION_FACTS_SQL` read: ``usable`` false means reflect for real."""

    usable: bool
    unreflectable: frozenset[str] = frozenset()
    #: the tables asked about: the only ones the snapshot answers for
    names: frozenset[str] = frozenset()


def read_reflection_facts(conn: Any, names: Sequence[str]) -> ReflectionFacts:
    """:class:`ReflectionFacts` for the default schema's tables ``names`` (those to reflect)
    through a psycopg connection (one round trip); a server without one of the catalogs it
    reads gets an unusable answer, not an error."""
    import psycopg

    try:
        with conn.transaction():
            row = conn.execute(REFLECTION_FACTS_SQL, {"names": list(names)}).fetchone()
    except psycopg.Error:
        return ReflectionFacts(usable=False)
    assert row is not None
    return ReflectionFacts(usable=bool(row[0]), unreflectable=frozenset(row[1] or ()),
                           names=frozenset(names))


#: PostgreSQL's fixed oid of the btree access method (``BTREE_AM_OID``)
BTREE_OID = 403
_SIMPLE = re.compile(r"[a-z_][a-z0-9_]*")


class _Result:
    """The part of a SQLAlchemy ``Result`` the PostgreSQL dialect's reflection reads."""

    def __init__(self, keys: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        self._keys = tuple(keys)
        self._rows = rows

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self._rows)

    def all(self) -> list[tuple[Any, ...]]:
        return list(self._rows)

    def mappings(self) -> list[dict[str, Any]]:
        return [dict(zip(self._keys, row, strict=True)) for row in self._rows]


#: the columns of each reflection query answered, by the answer's name: a query is known by
#: what it selects (any other query, or another shape of these, is not answered)
_SHAPES: dict[tuple[str, ...], str] = {
    ("name", "format_type", "default", "not_null", "table_name", "comment", "generated",
     "identity_options", "collation"): "_columns",
    ("oid", "relname"): "_table_oids",
    ("relname", "conname", "_no_label", "nspname", "description"): "_foreign_keys",
    ("relname", "description"): "_comments",
    ("relname", "conname", "_no_label", "description"): "_checks",
    ("oid", "relname", "reloptions", "relhasoids", "access_method_name", "tablespace_name",
     "parent_table_names"): "_table_options",
    ("conrelid", "cols", "conname", "description", "indnkeyatts",
     "indnullsnotdistinct"): "_constraints",
    ("indrelid", "relname", "indisunique", "indisvalid", "has_constraint", "indoption",
     "reloptions", "relam", "filter_definition", "indnkeyatts", "indnullsnotdistinct",
     "elements", "elements_is_expr", "elements_opclass"): "_indexes",
    ("oid", "opcname"): "_no_rows",  # the operator classes that are not a type's default
}


class _SnapshotRows:
    """Stands in for the connection SQLAlchemy's PostgreSQL reflection queries: each query it
    knows (by the columns it selects, :data:`_SHAPES`) is answered with the rows the server
    would return, built from the snapshot; any other query raises :class:`Unsupported`."""

    def __init__(self, bind: Connection, dialect: PGDialect, tables: Mapping[str, LiveTable],
                 facts: ReflectionFacts) -> None:
        self.dialect = dialect
        self.schema_for_object = bind.schema_for_object
        self._tables = tables  # name -> table, the default schema's
        self._unreflectable = facts.unreflectable
        self._asked = facts.names
        self._oids = {name: i + 1 for i, name in enumerate(sorted(tables))}
        self._by_oid = {oid: name for name, oid in self._oids.items()}

    # -- the connection API the dialect uses ---------------------------------------------------

    def execute(self, query: Any, params: Mapping[str, Any] | None = None) -> _Result:
        answer = _SHAPES.get(_shape(query))
        if answer is None:
            raise Unsupported(f"no snapshot answer for a query of {_shape(query)}")
        handler: Callable[[Mapping[str, Any]], _Result] = getattr(self, answer)
        result = handler(params or {})
        return result

    def scalar(self, query: Any, params: Mapping[str, Any] | None = None) -> Any:
        # the dialect's only scalar query here: the btree access method's oid
        if _shape(query) != ("oid", "amname"):
            raise Unsupported(f"no snapshot answer for a query of {_shape(query)}")
        return BTREE_OID

    # -- helpers -------------------------------------------------------------------------------

    def _names(self, params: Mapping[str, Any]) -> list[str]:
        """The table names asked for, in ``relname`` order, each one restatable. Without a
        filter: the tables the facts were read for (SQLAlchemy's answer would hold every
        table, but Alembic reads only those; it asks again for any other)."""
        wanted = params.get("filter_names")
        names = sorted(n for n in (self._asked if wanted is None else wanted)
                       if n in self._tables)
        for name in names:
            self._check(self._tables[name])
        return names

    def _by_oids(self, params: Mapping[str, Any]) -> list[LiveTable]:
        tables = [self._tables[self._by_oid[oid]] for oid in params["oids"]]
        for table in tables:
            self._check(table)
        return tables

    def _check(self, table: LiveTable) -> None:
        if table.name not in self._asked:
            raise Unsupported(f"{table.qualified} was not asked about")
        if table.qualified in self._unreflectable:
            raise Unsupported(f"{table.qualified} has what the snapshot does not hold")

    @staticmethod
    def _plain(table: LiveTable, names: Sequence[str]) -> list[str]:
        """``names`` as pg_get_indexdef prints columns, checked to be plain column names."""
        columns = {c.name for c in table.columns}
        for name in names:
            if name not in columns or not _SIMPLE.fullmatch(name):
                raise Unsupported(f"{table.qualified}: index element {name!r}")
        return list(names)

    # -- the answers ---------------------------------------------------------------------------

    def _no_rows(self, params: Mapping[str, Any]) -> _Result:
        return _Result(("oid", "opcname"), [])

    def _table_oids(self, params: Mapping[str, Any]) -> _Result:
        return _Result(("oid", "relname"),
                       [(self._oids[name], name) for name in self._names(params)])

    def _columns(self, params: Mapping[str, Any]) -> _Result:
        keys = ("name", "format_type", "default", "not_null", "table_name", "comment",
                "generated", "identity_options", "collation")
        rows: list[tuple[Any, ...]] = []
        for name in self._names(params):
            table = self._tables[name]
            if not table.columns:
                rows.append((None, None, None, None, name, None, None, None, None))
            for column in sorted(table.columns, key=lambda c: c.position):
                identity = None
                if column.identity is not None:
                    identity = {
                        "always": column.identity == "always",
                        "start": column.identity_start,
                        "increment": column.identity_increment,
                        "minvalue": column.identity_min,
                        "maxvalue": column.identity_max,
                        "cache": column.identity_cache,
                        "cycle": column.identity_cycle,
                    }
                rows.append((column.name, column.type, column.default, not column.nullable,
                             name, column.comment, "", identity, None))
        return _Result(keys, rows)

    def _constraints(self, params: Mapping[str, Any]) -> _Result:
        kind = {"p": "primary_key", "u": "unique"}[params["contype"]]
        rows: list[tuple[Any, ...]] = []
        for table in self._by_oids(params):
            oid = self._oids[table.name]
            for constraint in sorted(table.constraints, key=lambda c: c.name):
                if constraint.kind != kind:
                    continue
                index = table.index(constraint.index or "")
                if index is None:
                    raise Unsupported(f"{table.qualified}: {constraint.name} has no index")
                columns = self._plain(table, index.keys + index.include)
                rows.append((oid, columns, constraint.name, None, len(index.keys),
                             index.nulls_not_distinct))
        return _Result(("conrelid", "cols", "conname", "description", "indnkeyatts",
                        "indnullsnotdistinct"), rows)

    def _foreign_keys(self, params: Mapping[str, Any]) -> _Result:
        rows: list[tuple[Any, ...]] = []
        for name in self._names(params):
            table = self._tables[name]
            fks = sorted((c for c in table.constraints if c.kind == "foreign_key"),
                         key=lambda c: c.name)
            if not fks:
                rows.append((name, None, None, None, None))
            for fk in fks:
                ref = fk.ref_table or ""
                if ref.count(".") != 1:
                    raise Unsupported(f"{table.qualified}: {fk.name} references {ref!r}")
                # pg_get_constraintdef prints a foreign key the same pretty or not
                rows.append((name, fk.name, fk.definition, ref.split(".")[0], None))
        return _Result(("relname", "conname", "condef", "nspname", "description"), rows)

    def _indexes(self, params: Mapping[str, Any]) -> _Result:
        keys = ("indrelid", "relname", "indisunique", "indisvalid", "has_constraint",
                "indoption", "reloptions", "relam", "filter_definition", "indnkeyatts",
                "indnullsnotdistinct", "elements", "elements_is_expr", "elements_opclass")
        rows: list[tuple[Any, ...]] = []
        for table in self._by_oids(params):
            primary = table.primary_key
            for index in sorted(table.indexes, key=lambda i: i.name):
                if primary is not None and index.name == primary.index:
                    continue  # the query leaves out primary-key indexes
                _check_plain_index(table, index)
                elements = self._plain(table, index.keys + index.include)
                n = len(elements)
                rows.append((self._oids[table.name], index.name, index.unique, True,
                             index.constraint is not None, [0] * len(index.keys), None,
                             BTREE_OID, index.predicate, len(index.keys),
                             index.nulls_not_distinct, elements, [False] * n, [0] * n))
        return _Result(keys, rows)

    def _comments(self, params: Mapping[str, Any]) -> _Result:
        return _Result(("relname", "description"),
                       [(name, self._tables[name].comment) for name in self._names(params)])

    def _checks(self, params: Mapping[str, Any]) -> _Result:
        rows: list[tuple[Any, ...]] = []
        for name in self._names(params):
            if any(c.kind == "check" for c in self._tables[name].constraints):
                # the snapshot holds pg_get_constraintdef's plain form, SQLAlchemy reads
                # the pretty one: they differ in parentheses
                raise Unsupported(f"{name}: CHECK constraints")
            rows.append((name, None, None, None))
        return _Result(("relname", "conname", "src", "description"), rows)

    def _table_options(self, params: Mapping[str, Any]) -> _Result:
        keys = ("oid", "relname", "reloptions", "relhasoids", "access_method_name",
                "tablespace_name", "parent_table_names")
        return _Result(keys, [
            (self._oids[name], name, list(self._tables[name].reloptions) or None, None, None,
             None, None) for name in self._names(params)])


def _shape(query: Any) -> tuple[str, ...]:
    columns = getattr(query, "selected_columns", None)
    return tuple(columns.keys()) if columns is not None else ()


@functools.cache
def _reflection_dialect(version: tuple[int, ...], default_schema: str,
                        backslash_escapes: bool) -> PGDialect:
    """A PostgreSQL dialect set up as ``initialize`` sets one up on a server of ``version``,
    kept for the process: its reflection queries are built once (it never connects)."""
    from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

    dialect: Any = PGDialect_psycopg()  # type: ignore[no-untyped-call]
    dialect.server_version_info = version
    dialect.default_schema_name = default_schema
    dialect._backslash_escapes = backslash_escapes
    dialect._pg_am_btree_oid = BTREE_OID  # what the rows say
    assert isinstance(dialect, PGDialect)
    return dialect


def _check_plain_index(table: LiveTable, index: LiveIndex) -> None:
    """Raise :class:`Unsupported` unless the index definition is exactly a valid btree index
    on plain columns, with no opclass, ordering, collation or storage parameter (what the
    rows above assume)."""
    for name in (index.name, table.name, table.schema):
        if not _SIMPLE.fullmatch(name):
            raise Unsupported(f"{table.qualified}: index {index.name!r}: quoted names")
    expected = (f"CREATE {'UNIQUE ' if index.unique else ''}INDEX {index.name} ON "
                f"{table.schema}.{table.name} USING btree ({', '.join(index.keys)})")
    if index.include:
        expected += f" INCLUDE ({', '.join(index.include)})"
    if index.nulls_not_distinct:
        expected += " NULLS NOT DISTINCT"
    if index.predicate:
        expected += f" WHERE {index.predicate}"
    if not index.valid or index.definition != expected:
        raise Unsupported(f"{table.qualified}: index {index.name} is not a plain btree index")


class SnapshotInspector(PGInspector):
    """SQLAlchemy's PostgreSQL inspector over ``bind``, whose reflection queries the snapshot
    answers (:class:`_SnapshotRows`). Only the default schema is known to it."""

    def __init__(self, bind: Connection, live: Snapshot, default_schema: str,
                 facts: ReflectionFacts) -> None:
        # not Inspector.__init__ (deprecated): what inspect(connection) does
        self._init_connection(bind)
        if not facts.usable:
            raise Unsupported("the search path is not the default schema alone")
        real: Any = bind.dialect
        if not isinstance(real, PGDialect) or real.server_version_info is None:
            raise Unsupported("not the PostgreSQL dialect")
        # the inspector reflects with a dialect of its own (never connected), so that the
        # queries it answers are built once per process, not once per connection
        dialect = _reflection_dialect(tuple(real.server_version_info), default_schema,
                                      bool(getattr(real, "_backslash_escapes", False)))
        self.dialect = dialect
        tables = {t.name: t for t in live.tables.values() if t.schema == default_schema}
        self._rows = _SnapshotRows(bind, dialect, tables, facts)

    @contextmanager
    def _operation_context(self) -> Iterator[Any]:
        yield self._rows

    def get_table_names(self, schema: str | None = None, **kw: Any) -> list[str]:
        if schema is not None:
            raise Unsupported("a schema other than the default one")
        return sorted(self._rows._tables)

    def get_schema_names(self, **kw: Any) -> list[str]:
        raise Unsupported("schema names")
