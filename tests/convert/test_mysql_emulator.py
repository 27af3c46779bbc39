"""The emulator with MySQL-born names: tables called ``order``, ``user``, ``group`` are common in
MySQL schemas and are keywords in PostgreSQL; DSQL's asynchronous jobs must work on them."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("table", ["order", "user", "group"])
def test_async_validation_and_index_on_a_table_named_like_a_keyword(
    table: str, conn: psycopg.Connection[Any], raw_conn: psycopg.Connection[Any]
) -> None:
    schema = f"kw_{uuid.uuid4().hex[:8]}"
    raw_conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        raw_conn.execute(f'CREATE TABLE "{schema}"."{table}" (id bigint PRIMARY KEY, n int)')
        raw_conn.execute(f'INSERT INTO "{schema}"."{table}" VALUES (1, 5)')
        conn.execute(f'SET search_path = "{schema}"')  # unqualified, as a converted dump names it
        name = f'"{table}"'
        conn.execute(f"ALTER TABLE {name} ADD CONSTRAINT n_pos CHECK (n > 0) NOT VALID")
        job = conn.execute(f"ALTER TABLE ASYNC {name} VALIDATE CONSTRAINT n_pos").fetchone()
        assert job is not None
        assert conn.execute("CALL sys.wait_for_job(%s)", (job[0],)).fetchone() == (True,)
        job = conn.execute(f"CREATE INDEX ASYNC n_idx ON {name} (n)").fetchone()
        assert job is not None
        assert conn.execute("CALL sys.wait_for_job(%s)", (job[0],)).fetchone() == (True,)
    finally:
        raw_conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
