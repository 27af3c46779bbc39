"""``dsql-migrate mcp`` end to end: the server runs as a subprocess and is driven by the MCP
SDK's own stdio client, against a local emulator of its own (a plan owns the whole schema)."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from _support import PrivateTarget
from dsql_migrate.local import LocalInstance

pytestmark = pytest.mark.integration

TOOLS = {"lint", "get_schema", "readonly_query", "plan", "apply", "status", "explain"}


@pytest.fixture(scope="module")
def target(private_target: PrivateTarget) -> Iterator[LocalInstance]:
    with private_target("mcp") as instance:
        with psycopg.connect(instance.url(), autocommit=True) as conn:
            conn.execute("CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, "
                          "status text)")
            conn.execute("INSERT INTO orders SELECT g, g % 50, CASE WHEN g % 10 = 0 THEN "
                         "'open' ELSE 'done' END FROM generate_series(1, 2000) g")
            conn.execute("CREATE TABLE legacy (id bigint PRIMARY KEY)")
            conn.execute("ANALYZE orders")
        yield instance


@asynccontextmanager
async def session(instance: LocalInstance, cwd: Path, *extra: str) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "dsql_migrate", "mcp", "--url", instance.url(), "--scratch-url",
              instance.raw_url(), "--max-rows", "5", *extra],
        cwd=str(cwd))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as client:
        await client.initialize()
        yield client


async def call(client: ClientSession, tool: str, **arguments: Any) -> tuple[bool, Any]:
    """(is_error, the structured result, or the error text)."""
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        return True, " ".join(getattr(c, "text", "") for c in result.content)
    return False, result.structured_content


ORDERS_ONLY = """
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, status text, note text);
"""
DESIRED = ORDERS_ONLY + "CREATE TABLE legacy (id bigint PRIMARY KEY);\n"


def test_tools_end_to_end(target: LocalInstance, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with session(target, tmp_path) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert tools == TOOLS  # no transact without --allow-writes

            error, linted = await call(client, "lint", sql="CREATE INDEX ix ON orders (status);",
                                       fix=True)
            assert not error
            assert [d["rule"] for d in linted["diagnostics"]] == ["index_async"]
            assert linted["fixed_sql"].strip() == "CREATE INDEX ASYNC ix ON orders (status);"

            error, schema = await call(client, "get_schema", table="orders")
            assert not error
            assert [c["name"] for c in schema["columns"]] == ["id", "customer_id", "status"]

            error, rows = await call(client, "readonly_query",
                                     sql="SELECT id FROM orders ORDER BY id")
            assert not error
            assert rows["rows"] == [[1], [2], [3], [4], [5]] and rows["truncated"] is True

            error, text = await call(client, "readonly_query",
                                     sql="INSERT INTO orders VALUES (9999, 1, 'x')")
            assert error and "READ ONLY" in text and "nothing was changed" in text
            error, rows = await call(client, "readonly_query",
                                     sql="SELECT count(*) FROM orders WHERE id = 9999")
            assert not error and rows["rows"] == [[0]]

            error, text = await call(client, "apply", plan_hash="sha256:" + "0" * 64)
            assert error and "unknown plan hash" in text

            error, planned = await call(client, "plan", desired_sql=DESIRED)
            assert not error, planned
            assert planned["hash"].startswith("sha256:") and planned["steps"] >= 1
            assert planned["destructive_steps"] == []
            assert "ADD COLUMN" in planned["review_markdown"]
            assert planned["plan"]["hash"] == planned["hash"]

            error, started = await call(client, "apply", plan_hash=planned["hash"])
            assert not error and started["state"] == "running"
            reported: list[tuple[float, float | None]] = []

            async def on_progress(progress: float, total: float | None,
                                  message: str | None) -> None:
                reported.append((progress, total))

            result = await client.call_tool(
                "status", {"plan_hash": planned["hash"], "wait_seconds": 120},
                progress_callback=on_progress)
            error, state = result.is_error, result.structured_content
            assert not error
            # progress notifications: steps finished of all, ending with all of them
            assert reported and reported[-1] == (planned["steps"], planned["steps"])
            assert state["job"]["state"] == "done", state["job"]
            assert state["job"]["steps_finished"] == planned["steps"]
            assert state["runner"]["plan"]["hash"] == planned["hash"]
            error, schema = await call(client, "get_schema", table="orders")
            assert "note" in [c["name"] for c in schema["columns"]]

            # dropping legacy is destructive: refused without approval, nothing run
            error, planned = await call(client, "plan", desired_sql=ORDERS_ONLY)
            assert not error and planned["destructive_steps"]
            error, text = await call(client, "apply", plan_hash=planned["hash"])
            assert error and "destructive" in text and "approve_destructive" in text
            error, schema = await call(client, "get_schema")
            assert "public.legacy" in json.dumps(schema)
            error, started = await call(client, "apply", plan_hash=planned["hash"],
                                        approve_destructive=True)
            assert not error, started
            assert started["hash"] != planned["hash"]  # the approved plan's own hash
            error, state = await call(client, "status", wait_seconds=120)
            assert state["job"]["state"] == "done", state["job"]
            error, rows = await call(client, "readonly_query",
                                     sql="SELECT count(*) FROM pg_tables WHERE tablename = "
                                     "'legacy'")
            assert rows["rows"] == [[0]]

            error, report = await call(
                client, "explain", sql="UPDATE orders SET status = 'x' WHERE customer_id = 7")
            assert not error, report
            assert report["rewritten"] is True
            assert report["explained_sql"].startswith("SELECT 'x' AS status FROM orders")
            markdown = report["report_markdown"]
            assert "# SQL Query Explainability — Diagnostic Report" in markdown
            assert "CREATE INDEX ASYNC ix_orders_customer_id ON public.orders (customer_id)" \
                in markdown
            error, text = await call(client, "explain", sql="INSERT INTO orders VALUES (1)")
            assert error and "INSERT is not explained" in text
            error, text = await call(client, "transact", statements=["SELECT 1"])
            assert error  # the tool does not exist on a read-only server
        with psycopg.connect(target.url()) as conn:  # the UPDATE explained changed nothing
            assert conn.execute("SELECT count(*) FROM orders WHERE status = 'x'").fetchone() \
                == (0,)

    anyio.run(scenario)


def test_allow_writes_adds_transact_one_ddl_per_transaction(target: LocalInstance,
                                                            tmp_path: Path) -> None:
    async def scenario() -> None:
        async with session(target, tmp_path, "--allow-writes") as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert tools == TOOLS | {"transact"}
            error, text = await call(client, "transact", statements=[
                "CREATE TABLE t1 (id bigint PRIMARY KEY)",
                "CREATE TABLE t2 (id bigint PRIMARY KEY)"])
            assert error and "one DDL statement per transaction" in text
            error, done = await call(client, "transact", statements=[
                "INSERT INTO orders (id, customer_id, status) VALUES (100001, 1, 'new')"])
            assert not error and done["results"][0]["rowcount"] == 1
        with psycopg.connect(target.url()) as conn:
            assert conn.execute("SELECT count(*) FROM pg_tables WHERE tablename IN "
                                "('t1', 't2')").fetchone() == (0,)

    anyio.run(scenario)


def test_readonly_query_cannot_commit_its_way_out(target: LocalInstance, tmp_path: Path) -> None:
    """A COMMIT inside the text would end the READ ONLY transaction and let the rest run in a
    read-write one: readonly_query takes exactly one statement, and no transaction control."""
    async def scenario() -> None:
        async with session(target, tmp_path) as client:
            error, text = await call(client, "readonly_query",
                                     sql="SELECT 1; COMMIT; DELETE FROM orders WHERE id = 1")
            assert error and "exactly one statement" in text, text
            error, text = await call(client, "readonly_query", sql="COMMIT")
            assert error and "transaction control" in text, text
            error, text = await call(client, "readonly_query", sql="SELEC id FROM orders")
            assert error and "does not parse" in text, text
            error, rows = await call(client, "readonly_query",
                                     sql="SELECT count(*) FROM orders WHERE id = 1")
            assert not error and rows["rows"] == [[1]]

    anyio.run(scenario)
