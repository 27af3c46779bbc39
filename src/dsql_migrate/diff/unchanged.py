"""Which desired tables are *provably* unchanged in the live snapshot, without reflection.

Alembic's comparison reflects every table through SQLAlchemy's inspector and compares them one
by one: at 500 tables that is most of the time ``plan`` takes. Most tables of a real schema
have not changed, so :func:`unchanged_tables` checks each desired table against the snapshot
that ``plan`` reads anyway, and only the tables it cannot prove unchanged go through Alembic's
comparison (which therefore still decides every op, so the ops are Alembic's, as before).

The check is one-sided: it answers "unchanged" only when every comparison Alembic makes for a
table (its comparators in ``alembic.autogenerate.compare``: added/dropped columns, types,
nullability, server defaults, comments, indexes and unique constraints, foreign keys) would find
nothing, and it gives up ("compare it with Alembic") on everything it does not model exactly:
server defaults whose text differs from the model's as Alembic renders it (identities: their
options are compared with Alembic's own function), computed columns, collations, unnamed or
expression indexes and constraints, dialect options, foreign-key options, types outside
:data:`PLAIN_TYPES`, a table outside the default schema. A false "changed" costs time; a
false "unchanged" would lose an op, so tests/test_diff_unchanged.py compares this path with
Alembic's full comparison.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.base import PGDialect

from ..catalog import Column as LiveColumn
from ..catalog import Snapshot
from ..catalog import Table as LiveTable

#: format_type() names whose reflection is a plain SQLAlchemy type (no enum, domain, array)
PLAIN_TYPES: frozenset[str] = frozenset({
    "bigint", "integer", "smallint", "boolean", "text", "character varying", "character",
    "uuid", "numeric", "double precision", "real", "date", "timestamp with time zone",
    "timestamp without time zone", "time with time zone", "time without time zone", "json",
    "jsonb", "bytea",
})

_ARGS = re.compile(r"\(.*\)")
#: a foreign key as pg_get_constraintdef prints it with no options (ON DELETE, DEFERRABLE, ...)
_PLAIN_FK = re.compile(r"FOREIGN KEY \([^()\"]*\) REFERENCES [^()\"]+\([^()\"]*\)")


@dataclass
class Facts:
    """What the snapshot does not hold and the check needs: read with one query
    (:data:`FACTS_SQL`)."""

    default_schema: str
    #: "schema.table" of tables the check does not take on: a column whose collation is not
    #: its type's default (SQLAlchemy reflects it into the type, format_type() does not show
    #: it), or a partition (which SQLAlchemy may not list as a table)
    unprovable: frozenset[str] = frozenset()


#: the connection's default schema and the :attr:`Facts.unprovable` tables
FACTS_SQL = """
SELECT current_schema(),
       ARRAY(SELECT n.nspname || '.' || c.relname
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT LIKE 'pg\\_%'
               AND n.nspname <> 'information_schema' AND (c.relispartition OR EXISTS (
                   SELECT FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                     AND a.attcollation <> t.typcollation)))
"""


def read_facts(conn: Any) -> Facts:
    """:class:`Facts` through a psycopg connection (one round trip)."""
    row = conn.execute(FACTS_SQL).fetchone()
    assert row is not None
    return Facts(default_schema=row[0] or "public", unprovable=frozenset(row[1] or ()))


@dataclass
class _Types:
    """Compiled type strings, as Alembic's ``compare_type`` tokenises them, cached."""

    dialect: sa.Dialect
    live: dict[str, str | None] = field(default_factory=dict)
    model: dict[Any, str] = field(default_factory=dict)

    def reflected(self, format_type: str) -> str | None:
        if format_type not in self.live:
            self.live[format_type] = self._reflect(format_type)
        return self.live[format_type]

    def _reflect(self, format_type: str) -> str | None:
        if "[" in format_type or _ARGS.sub("", format_type) not in PLAIN_TYPES:
            return None
        assert isinstance(self.dialect, PGDialect)
        loader = _NoNamedTypes()
        type_ = self.dialect._reflect_type(format_type, loader,  # type: ignore[arg-type]
                                           "", None)
        return self._compile(type_)

    def desired(self, type_: sa.types.TypeEngine[Any]) -> str:
        # a type compiles from its class and attributes alone: models repeat a few types
        try:
            key: Any = (type(type_), tuple(sorted(vars(type_).items())))
            hash(key)
        except TypeError:
            return self._compile(type_)
        if key not in self.model:
            self.model[key] = self._compile(type_)
        return self.model[key]

    def _compile(self, type_: sa.types.TypeEngine[Any]) -> str:
        # what Alembic's compare_type tokenises (DefaultImpl._tokenize_column_type)
        return str(self.dialect.type_compiler_instance.process(type_)).lower()


class _NoNamedTypes:
    """The named-type loader SQLAlchemy's ``_reflect_type`` consults for enums and domains:
    :data:`PLAIN_TYPES` never reach it."""

    enums: Mapping[Any, Any] = {}
    domains: Mapping[Any, Any] = {}


def unchanged_tables(desired: Iterable[sa.Table], live: Snapshot, facts: Facts,
                     dialect: sa.Dialect) -> set[tuple[str | None, str]]:
    """The ``(schema, name)`` keys of the desired tables, as Alembic names them (``None`` for
    the default schema), whose comparison with the live table would find no change."""
    types = _Types(dialect)
    found: set[tuple[str | None, str]] = set()
    for table in desired:
        if table.schema not in (None, facts.default_schema):
            continue
        qualified = f"{facts.default_schema}.{table.name}"
        live_table = live.tables.get(qualified)
        if live_table is None or qualified in facts.unprovable:
            continue
        try:
            same = _same_table(table, live_table, types, facts.default_schema)
        except Exception:  # anything unexpected in a model: let Alembic compare it
            same = False
        if same:
            found.add((None, table.name))
    return found


def _same_table(table: sa.Table, live: LiveTable, types: _Types, default_schema: str) -> bool:
    if _comment(table.comment) != _comment(live.comment):
        return False
    return (_same_columns(table, live, types) and _same_indexes(table, live)
            and _same_foreign_keys(table, live, default_schema))


def _comment(value: str | None) -> str | None:
    return value or None  # Alembic treats an empty comment as none


def _same_columns(table: sa.Table, live: LiveTable, types: _Types) -> bool:
    live_columns = {c.name: c for c in live.columns}
    columns = list(table.columns)
    if len(columns) != len(live_columns):
        return False
    for column in columns:
        live_column = live_columns.get(column.name)
        if live_column is None or column.system or not _same_column(column, live_column, types):
            return False
    return True


def _same_column(column: sa.Column[Any], live: LiveColumn, types: _Types) -> bool:
    wanted = column.server_default
    if live.identity is not None or isinstance(wanted, sa.Identity):
        if live.default is not None or not _same_identity(wanted, live):
            return False
    elif ((wanted is not None or live.default is not None)
          and not _same_default(wanted, live.default, types.dialect)):
        return False
    if column.nullable is not live.nullable or _comment(column.comment) != _comment(live.comment):
        return False
    reflected = types.reflected(live.type)
    return reflected is not None and reflected == types.desired(column.type)


def _same_identity(wanted: Any, live: LiveColumn) -> bool:
    """Both sides an identity, and Alembic's own comparison of their options (its PostgreSQL
    implementation's ``_compare_identity_default``, on the identity SQLAlchemy would reflect)
    finds no difference."""
    if type(wanted) is not sa.Identity or live.identity is None:
        return False
    reflected = sa.Identity(
        always=live.identity == "always", start=live.identity_start,
        increment=live.identity_increment, minvalue=live.identity_min,
        maxvalue=live.identity_max, cache=live.identity_cache, cycle=live.identity_cycle)
    _diff, _ignored, differs = _alembic_impl()._compare_identity_default(wanted, reflected)
    return not differs


def _same_default(wanted: Any, live: str | None, dialect: sa.Dialect) -> bool:
    """The model's server default rendered as Alembic renders it for comparing
    (``_render_server_default_for_compare``) is the live default's text exactly: Alembic's
    PostgreSQL comparison then finds no change without asking the server. Anything else
    (different texts it may still find equal on the server, a sequence's ``nextval``, which
    its reflection treats apart) is left to Alembic."""
    from alembic.autogenerate.compare.server_defaults import (
        _render_server_default_for_compare,
    )

    if type(wanted) is not sa.DefaultClause or wanted.for_update or live is None:
        return False
    if live.startswith("nextval("):
        return False
    rendered = _render_server_default_for_compare(wanted, _Rendering(dialect))  # type: ignore[arg-type]
    return rendered is not None and rendered == live


@dataclass
class _Rendering:
    """What Alembic's default rendering reads from its autogenerate context."""

    dialect: sa.Dialect


@functools.cache
def _alembic_impl() -> Any:
    """Alembic's PostgreSQL implementation (its comparisons need no connection)."""
    from alembic.migration import MigrationContext

    return MigrationContext.configure(dialect_name="postgresql").impl


def _plain_name(name: Any) -> str | None:
    """The constraint or index name as the database has it, or None when it is not a plain
    name (unnamed, deferred to a naming convention, too long to survive unchanged)."""
    if isinstance(name, str) and 0 < len(name) <= 63:
        return str(name)
    return None


def _column_names(element: sa.Index | sa.UniqueConstraint, table: sa.Table) -> tuple[str, ...]:
    """The plain column names of an index or unique constraint, or () for an expression."""
    names: list[str] = []
    for expression in element.expressions if isinstance(element, sa.Index) else element.columns:
        if not isinstance(expression, sa.Column) or expression.table is not table:
            return ()
        names.append(expression.name)
    return tuple(names)


def _same_indexes(table: sa.Table, live: LiveTable) -> bool:
    """Indexes and unique constraints by name, when all are plain, on both sides."""
    desired_indexes: dict[str, tuple[bool, tuple[str, ...]]] = {}
    for index in table.indexes:
        name = _plain_name(index.name)
        columns = _column_names(index, table)
        if name is None or not columns or index.dialect_kwargs or name in desired_indexes:
            return False
        desired_indexes[name] = (bool(index.unique), columns)
    desired_uniques: dict[str, tuple[str, ...]] = {}
    for constraint in table.constraints:
        if not isinstance(constraint, sa.UniqueConstraint) or isinstance(
                constraint, sa.PrimaryKeyConstraint):
            continue
        name = _plain_name(constraint.name)
        columns = _column_names(constraint, table)
        if (name is None or not columns or constraint.dialect_kwargs or constraint.deferrable
                is not None or constraint.initially is not None or name in desired_uniques):
            return False
        desired_uniques[name] = columns
    live_uniques: dict[str, tuple[str, ...]] = {}
    backing: set[str] = set()
    for live_constraint in live.constraints:
        if live_constraint.kind == "primary_key" and live_constraint.index:
            backing.add(live_constraint.index)
        if live_constraint.kind != "unique":
            continue
        if live_constraint.definition != f"UNIQUE ({', '.join(live_constraint.columns)})":
            return False
        live_uniques[live_constraint.name] = live_constraint.columns
        if live_constraint.index:
            backing.add(live_constraint.index)
    live_indexes: dict[str, tuple[bool, tuple[str, ...]]] = {}
    for live_index in live.indexes:
        if live_index.name in backing or live_index.constraint is not None:
            continue
        if (not live_index.valid or live_index.include or live_index.predicate
                or live_index.nulls_not_distinct or not live_index.definition.endswith(
                    f" USING btree ({', '.join(live_index.keys)})")):
            return False
        live_indexes[live_index.name] = (live_index.unique, live_index.keys)
    if set(desired_indexes) & set(desired_uniques) or set(live_indexes) & set(live_uniques):
        return False
    return desired_indexes == live_indexes and desired_uniques == live_uniques


def _same_foreign_keys(table: sa.Table, live: LiveTable, default_schema: str) -> bool:
    """Foreign keys by what they link (Alembic compares them by signature, not by name)."""
    desired: set[tuple[tuple[str, ...], str, tuple[str, ...]]] = set()
    for constraint in table.foreign_key_constraints:
        if (constraint.ondelete or constraint.onupdate or constraint.deferrable is not None
                or constraint.initially is not None or constraint.match
                or constraint.dialect_kwargs or not constraint.elements):
            return False
        targets = [element.column for element in constraint.elements]
        target_table = targets[0].table
        if any(t.table is not target_table for t in targets) or target_table.schema not in (
                None, default_schema):
            return False
        desired.add((tuple(e.parent.name for e in constraint.elements),
                     f"{default_schema}.{target_table.name}",
                     tuple(t.name for t in targets)))
    found: set[tuple[tuple[str, ...], str, tuple[str, ...]]] = set()
    for live_fk in live.constraints:
        if live_fk.kind != "foreign_key":
            continue
        if not live_fk.validated or _PLAIN_FK.fullmatch(live_fk.definition) is None:
            return False
        assert live_fk.ref_table is not None
        found.add((live_fk.columns, live_fk.ref_table, live_fk.ref_columns))
    return desired == found
