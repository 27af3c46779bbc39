"""The MCP server: :class:`~.service.Service` methods exposed as tools over stdio with the
official ``mcp`` SDK (``MCPServer``). Errors the user can act on become tool errors carrying
the message and hint; nothing else about the server is in this module."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio
import anyio.to_thread
import psycopg
import sqlalchemy.exc
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from .. import __version__
from ..errors import DsqlMigrateError
from .service import Service

F = TypeVar("F", bound=Callable[..., Any])

INSTRUCTIONS = (
    "dsql-migrate's tools for Amazon Aurora DSQL. Read with get_schema and readonly_query "
    "(read-only transaction, capped rows). Check SQL with lint (fix=true rewrites it). Change "
    "the schema only through plan (desired schema -> a DSQL-safe plan, its hash and a "
    "markdown review to show the user) and apply (by that hash; destructive steps need "
    "approve_destructive=true after the user approved them), then follow it with status. "
    "explain gives the query-plan report for a SELECT/UPDATE/DELETE.")


def _tool_errors(fn: F) -> F:
    """A user error (bad SQL, a refusal, an unreachable target) reaches the agent as a tool
    error with its message and hint, not as the SDK's generic failure."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            error = _tool_error(exc)
            if error is None:
                raise
            raise error from None

    return wrapper  # type: ignore[return-value]


def _tool_error(exc: Exception) -> ToolError | None:
    """The tool error for a user error or a database refusal; None for a bug."""
    if isinstance(exc, DsqlMigrateError):
        return ToolError(exc.message + (f"\nhint: {exc.hint}" if exc.hint else ""))
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and isinstance(exc.orig, psycopg.Error):
        exc = exc.orig  # the differ reads the catalog through SQLAlchemy
    if isinstance(exc, psycopg.Error):  # a privilege, a limit: the server's own words
        from ..runner.retry import describe

        return ToolError(f"the database refused: {describe(exc)}")
    return None


def build_server(service: Service) -> MCPServer[Any]:
    server: MCPServer[Any] = MCPServer(name="dsql-migrate", version=__version__,
                                       instructions=INSTRUCTIONS, log_level="WARNING")
    read = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True)

    @_tool_errors
    def lint(sql: Annotated[str, Field(description="SQL text: one or more statements")],
             fix: Annotated[bool, Field(description="return the fixed script too")] = False
             ) -> dict[str, Any]:
        """Check SQL against DSQL's rules for the server's capability profile; with fix=true
        also return the rewritten script (fixed_sql)."""
        return service.lint(sql, fix)

    @_tool_errors
    def get_schema(table: Annotated[str | None, Field(
            description="a table (schema.table or table); omit for the whole schema")] = None
                   ) -> dict[str, Any]:
        """The live schema from the catalog: columns, keys, constraints, indexes, row
        estimates (one table, or all of them)."""
        return service.get_schema(table)

    @_tool_errors
    def readonly_query(sql: Annotated[str, Field(description="one SQL statement")],
                       max_rows: Annotated[int | None, Field(
                           description="rows to return at most (capped by the server)")] = None
                       ) -> dict[str, Any]:
        """Run one statement in a READ ONLY transaction that is rolled back; a write is
        refused. Returns columns and rows (at most the server's row cap)."""
        return service.readonly_query(sql, max_rows)

    @_tool_errors
    def plan(target: Annotated[str | None, Field(
                 description="desired schema: package.module:attr or a desired-state .sql "
                 "file path")] = None,
             desired_sql: Annotated[str | None, Field(
                 description="or the desired schema's CREATE statements as text")] = None,
             renames: Annotated[list[str] | None, Field(
                 description="declared renames: old=new (table) or table.old=new (column)")
             ] = None) -> dict[str, Any]:
        """Plan the DSQL-safe change from the live schema to the desired one: returns the
        plan's hash (for apply), its steps and a markdown review to show the user."""
        return service.plan(target, desired_sql, renames)

    @_tool_errors
    def apply(plan_hash: Annotated[str, Field(description="the hash the plan tool returned")],
              approve_destructive: Annotated[bool, Field(
                  description="run destructive steps (only after the user approved them)")
              ] = False) -> dict[str, Any]:
        """Apply a plan this server issued, by hash, in the background (resumable runner);
        follow it with status."""
        return service.apply(plan_hash, approve_destructive)

    async def status(ctx: Context,  # unparametrized: the SDK finds the context by its class
                     plan_hash: Annotated[str | None, Field(
                         description="the plan being applied (default: the latest apply)")
                     ] = None,
                     wait_seconds: Annotated[float, Field(
                         description="wait up to this long for the apply to finish", ge=0,
                         le=300)] = 0.0) -> dict[str, Any]:
        """Progress of the background apply (steps finished, recent events, result or
        error) and the runner's lock and step table. While it waits, the steps finished are
        sent as MCP progress notifications (when the client asked for them)."""
        try:
            await _follow(service, ctx, plan_hash, wait_seconds)
            return await anyio.to_thread.run_sync(service.status, plan_hash, 0.0)
        except Exception as exc:
            error = _tool_error(exc)
            if error is None:
                raise
            raise error from None

    @_tool_errors
    def explain(sql: Annotated[str, Field(
                    description="a SELECT, or an UPDATE/DELETE (explained as its SELECT)")],
                format: Annotated[str, Field(description="markdown or json",
                                             pattern="^(markdown|json)$")] = "markdown"
                ) -> dict[str, Any]:
        """The query-plan report: EXPLAIN ANALYZE VERBOSE (rolled back), full scans with
        table sizes, row-estimate errors, DSQL-checked index advice."""
        return service.explain(sql, format)

    server.add_tool(lint, annotations=ToolAnnotations(read_only_hint=True))
    server.add_tool(get_schema, annotations=read)
    server.add_tool(readonly_query, annotations=read)
    server.add_tool(plan, annotations=ToolAnnotations(read_only_hint=True))
    server.add_tool(apply, annotations=ToolAnnotations(read_only_hint=False,
                                                        destructive_hint=True))
    server.add_tool(status, annotations=read)
    server.add_tool(explain, annotations=read)
    if service.settings.allow_writes:
        @_tool_errors
        def transact(statements: Annotated[list[str], Field(
                description="statements run in one read-write transaction")]
                     ) -> dict[str, Any]:
            """Run statements in one read-write transaction (at most one DDL, never DDL with
            DML). Bypasses plans: prefer plan + apply for schema changes."""
            return service.transact(statements)

        server.add_tool(transact, annotations=ToolAnnotations(read_only_hint=False,
                                                               destructive_hint=True))
    return server


async def _follow(service: Service, ctx: Context, plan_hash: str | None,
                  wait_seconds: float) -> None:
    """Report the apply's progress until it ends or ``wait_seconds`` pass."""
    deadline = anyio.current_time() + min(wait_seconds, 300.0)
    last: tuple[int, int, str, str] | None = None
    while True:
        progress = service.progress(plan_hash)
        if progress is not None and progress != last:
            await ctx.report_progress(progress[0], progress[1], progress[2])
            last = progress
        if progress is None or progress[3] != "running" or anyio.current_time() >= deadline:
            return
        await anyio.sleep(0.2)


def run_stdio(service: Service) -> None:
    build_server(service).run("stdio")
