"""Keyset cursors over a table's primary key, for batched steps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..catalog import Table as LiveTable
from ..plan import Batch
from . import PlanningError
from ._sql import cols, q, qual


@dataclass(frozen=True)
class Keyset:
    """The key of a table and the SQL pieces of a ``(after, upto]`` key range."""

    key: tuple[str, ...]
    types: tuple[str, ...]

    def params(self, prefix: str) -> str:
        return ", ".join(f"%({prefix}_{i})s::{t}" for i, t in enumerate(self.types, start=1))

    def after(self, alias: str = "", key: Sequence[str] | None = None) -> str:
        """True for rows after the cursor (every row when the cursor is NULL)."""
        names = self._refs(alias, key)
        first = self.types[0]
        return f"(%(after_1)s::{first} IS NULL OR ({names}) > ({self.params('after')}))"

    def before_end(self, alias: str = "", key: Sequence[str] | None = None) -> str:
        """True for rows up to a lane's end (every row when the end is NULL): the runner splits
        a large batched step into lanes over disjoint key ranges."""
        names = self._refs(alias, key)
        first = self.types[0]
        return f"(%(end_1)s::{first} IS NULL OR ({names}) <= ({self.params('end')}))"

    def upto(self, alias: str = "", key: Sequence[str] | None = None) -> str:
        return f"({self._refs(alias, key)}) <= ({self.params('upto')})"

    def range(self, alias: str = "", key: Sequence[str] | None = None) -> str:
        return f"{self.after(alias, key)} AND {self.upto(alias, key)}"

    def _refs(self, alias: str, key: Sequence[str] | None) -> str:
        names = key if key is not None else self.key
        return ", ".join(f"{alias}.{q(n)}" if alias else q(n) for n in names)

    def order(self, key: Sequence[str] | None = None) -> str:
        return cols(key if key is not None else self.key)

    def bounds(self, table_sql: str, size: int) -> str:
        desc = ", ".join(f"{q(k)} DESC" for k in self.key)
        return (f"SELECT {cols(self.key)} FROM (SELECT {cols(self.key)} FROM {table_sql} "
                f"WHERE {self.after()} AND {self.before_end()} ORDER BY {self.order()} "
                f"LIMIT {size}) AS page "
                f"ORDER BY {desc} LIMIT 1")

    def batch(self, table: str, table_sql: str, size: int) -> Batch:
        """The batch over ``table_sql`` (the relation quoted as an identifier: the runner
        resolves it with ``to_regclass``, so a bare ``table`` name with a space, a quote or
        capitals would not do)."""
        return Batch(table=table_sql, key=self.key, key_types=self.types, size=size,
                     bounds=self.bounds(table_sql, size))


def keyset_for(live: LiveTable) -> Keyset:
    pk = live.primary_key
    if pk is None or not pk.columns:
        raise PlanningError(
            f"table {live.name} has no primary key: batched steps walk the primary key",
            hint="DSQL tables always have one; add a primary key to the live table first")
    types = []
    for name in pk.columns:
        column = live.column(name)
        types.append(column.type if column is not None else "text")
    return Keyset(key=tuple(pk.columns), types=tuple(types))


def table_sql(live: LiveTable) -> str:
    return qual(live.name, live.schema)


def pct(sql: str) -> str:
    """Escape ``%`` in SQL text that goes into a statement run with parameters."""
    return sql.replace("%", "%%")
