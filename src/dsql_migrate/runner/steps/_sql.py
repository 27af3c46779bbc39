"""SQL helpers shared by the step kinds: running a plan's statement, the parameters and the
page-bound query of a keyset batch, figures made JSON-able."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql

from ...plan import Batch
from ..retry import describe
from ..session import Conn

log = logging.getLogger(__name__)

#: the command tags of statements whose row count is rows written
WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE"})


def rowcount(conn: Conn, cursor: psycopg.Cursor[Any]) -> int:
    """The rows a statement touched; in pipeline mode, wait for its result first."""
    if conn.pgconn.pipeline_status:  # in pipeline mode results arrive at a sync
        with conn.pipeline() as pipeline:
            pipeline.sync()
    return cursor.rowcount


def execute(conn: Conn, statement: str,
            params: Mapping[str, Any] | None = None) -> psycopg.Cursor[Any]:
    """Run one statement of a plan (as written: no placeholders unless ``params``), tagging a
    failure with the statement for the error report."""
    try:
        if params is None:
            return conn.execute(statement.encode())
        # never a server-side prepared statement: a generic plan cannot fold
        # "%(after)s IS NULL OR key > %(after)s" and would scan every batch from the start
        return conn.execute(statement, params, prepare=False)
    except psycopg.Error as exc:
        exc._dm_sql = statement  # type: ignore[attr-defined]
        raise


def key_params(batch: Batch, prefix: str, values: Sequence[Any] | None) -> dict[str, Any]:
    """``prefix_<column>`` and ``prefix_<n>`` (1-based) for each key column: both spellings."""
    params: dict[str, Any] = {}
    for index, key in enumerate(batch.key):
        value = None if values is None else values[index]
        params[f"{prefix}_{key}"] = value
        params[f"{prefix}_{index + 1}"] = value
    return params


def page_params(batch: Batch, after: Sequence[Any] | None, size: int,
                end: Sequence[Any] | None = None) -> dict[str, Any]:
    """The parameters of the page-bound query: the cursor, the page size and the lane's end."""
    return {**key_params(batch, "after", after), **key_params(batch, "end", end), "size": size}


def reltuples(conn: Conn, table: str) -> int:
    row = execute(conn, "SELECT reltuples::bigint FROM pg_catalog.pg_class "
                  "WHERE oid = to_regclass(%(table)s)", {"table": table}).fetchone()
    return max(int(row[0]), 0) if row is not None and row[0] is not None else 0


def sized_bounds(batch: Batch) -> str:
    """The plan's page-bound query with its page size made a parameter (``%(size)s``), so the
    runner can shrink batches; a query without a recognisable LIMIT is replaced by an
    equivalent keyset query."""
    if "%(size)s" in batch.bounds:
        return batch.bounds
    pattern = re.compile(rf"\bLIMIT\s+{batch.size}\b(?=\s*\)\s*(AS\s+)?\w+)", re.IGNORECASE)
    if pattern.search(batch.bounds):
        return pattern.sub("LIMIT %(size)s", batch.bounds, count=1)
    return _keyset_bounds(batch)


def _keyset_bounds(batch: Batch) -> str:
    """The last key of the next page of at most ``%(size)s`` rows after the cursor. The key
    columns are identifiers (``%`` doubled: the query runs with parameters), their parameters
    numbered: a column's name may hold anything."""
    cols = [sql.Identifier(k).as_string().replace("%", "%%") for k in batch.key]
    afters = [f"%(after_{i})s::{t}" for i, t in enumerate(batch.key_types, start=1)]
    ends = [f"%(end_{i})s::{t}" for i, t in enumerate(batch.key_types, start=1)]
    keys = ", ".join(cols)
    cond = f"({keys}) > ({', '.join(afters)})"
    cap = f"({ends[0]} IS NULL OR ({keys}) <= ({', '.join(ends)}))"
    desc = ", ".join(f"{c} DESC" for c in cols)
    return (f"SELECT {keys} FROM (SELECT {keys} FROM {batch.table} WHERE ({afters[0]} IS NULL "
            f"OR {cond}) AND {cap} ORDER BY {keys} LIMIT %(size)s) AS page "
            f"ORDER BY {desc} LIMIT 1")


def row_width(conn: Conn, batch: Batch) -> int | None:
    """Average bytes per row of the batched table, index entries counted."""
    try:
        row = conn.execute(
            f"SELECT avg(pg_column_size(s.*))::bigint, (SELECT count(*) FROM "
            f"pg_catalog.pg_index WHERE indrelid = to_regclass(%s)) FROM (SELECT * FROM "
            f"{batch.table} LIMIT 200) AS s", (batch.table,)).fetchone()
    except psycopg.Error as exc:
        log.info("could not estimate the row width of %s: %s", batch.table, describe(exc))
        return None
    if row is None or row[0] is None:
        return None
    width, indexes = int(row[0]), int(row[1] or 0)
    # every index stores about the key plus a tuple pointer: count each as half a row
    return max(int(width * (1 + 0.5 * indexes)), 1)


def jsonable(row: Sequence[Any]) -> list[Any]:
    from ...query import to_jsonable
    return [to_jsonable(v) for v in row]


