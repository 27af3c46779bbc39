"""The page-bound query the runner falls back to when a plan's has no recognisable LIMIT: key
columns composed as identifiers and their parameters numbered, whatever the names."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from dsql_migrate.plan import Batch
from dsql_migrate.runner.steps._sql import key_params, page_params, sized_bounds


def test_fallback_bounds_work_with_hard_key_names(raw_conn: psycopg.Connection[Any],
                                                  table_name: str) -> None:
    key = ('we"ird) key', "Order")
    raw_conn.execute(sql.SQL("CREATE TABLE {} ({} bigint, {} int, PRIMARY KEY ({}, {}))").format(
        sql.Identifier(table_name), *map(sql.Identifier, key), *map(sql.Identifier, key)))
    raw_conn.execute(sql.SQL("INSERT INTO {} SELECT g / 3, g % 3 FROM generate_series(0, 29) g")
                     .format(sql.Identifier(table_name)))
    batch = Batch(table=sql.Identifier(table_name).as_string(raw_conn), key=key,
                  key_types=("bigint", "integer"), size=4, bounds="SELECT no limit here")
    bounds = sized_bounds(batch)
    first = raw_conn.execute(bounds, page_params(batch, None, 4)).fetchone()
    assert first == (1, 0)  # rows (0,0) (0,1) (0,2) (1,0)
    after = raw_conn.execute(bounds, page_params(batch, list(first or ()), 4)).fetchone()
    assert after == (2, 1)
    last = raw_conn.execute(bounds, page_params(batch, [9, 2], 4)).fetchone()
    assert last == (None, None) or last is None
    assert key_params(batch, "after", [1, 2])["after_2"] == 2
