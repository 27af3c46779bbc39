"""Keyset cursors on PostgreSQL: every row in exactly one batch, no batch above its size."""

from __future__ import annotations

import math
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsql_migrate.catalog import Column, Constraint, Table
from dsql_migrate.planner._keyset import keyset_for

KEYS = st.lists(st.tuples(st.integers(-5, 5), st.text("ab'%\\ é", max_size=3)),
                unique=True, max_size=40)


def live_table() -> Table:
    return Table(
        schema="public", name="kv",
        columns=(Column("a", "integer", False), Column("b", "text", False),
                 Column("v", "text", True)),
        constraints=(Constraint("kv_pkey", "primary_key", ("a", "b"), "PRIMARY KEY (a, b)"),),
    )


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(keys=KEYS, size=st.integers(1, 7), split=st.floats(0, 1))
def test_pages_cover_every_row_once(raw_conn: psycopg.Connection[Any],
                                    keys: list[tuple[int, str]], size: int, split: float) -> None:
    """Two lanes, (start, split] and (split, end], walked page by page: every row in exactly one
    page of one lane, no page above its size."""
    raw_conn.execute("DROP TABLE IF EXISTS kv")
    raw_conn.execute("CREATE TABLE kv (a integer, b text COLLATE \"C\", v text, "
                     "PRIMARY KEY (a, b))")
    with raw_conn.cursor() as cur:
        cur.executemany("INSERT INTO kv VALUES (%s, %s, 'x')", keys)
    keyset = keyset_for(live_table())
    batch = keyset.batch("kv", "kv", size)
    count_sql = f"SELECT count(*) FROM kv WHERE {keyset.range()}"
    ordered = raw_conn.execute("SELECT a, b FROM kv ORDER BY a, b").fetchall()
    middle = ordered[int(split * (len(ordered) - 1))] if ordered else None
    seen = 0
    pages = 0
    for start, end in ((None, middle), (middle, None)):
        after: dict[str, Any] = {"after_1": start and start[0], "after_2": start and start[1]}
        stop = {"end_1": end and end[0], "end_2": end and end[1]}
        while True:
            row = raw_conn.execute(batch.bounds, {**after, **stop}).fetchone()
            if row is None:
                break
            params = {**after, "upto_1": row[0], "upto_2": row[1]}
            counted = raw_conn.execute(count_sql, params).fetchone()
            assert counted is not None and 1 <= counted[0] <= size
            seen += counted[0]
            pages += 1
            after = {"after_1": row[0], "after_2": row[1]}
    assert seen == len(keys)
    assert pages <= math.ceil(len(keys) / size) + 1
