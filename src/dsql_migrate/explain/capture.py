"""Capture a plan on the target: ``EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON)`` in a read-only
transaction that is rolled back, so nothing the query touches can change."""

from __future__ import annotations

from typing import Any

import psycopg

from ..errors import DsqlMigrateError
from .tree import CapturedPlan, parse_plan

EXPLAIN_PREFIX = "EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) "


class ExplainFailed(DsqlMigrateError):
    """The target refused the EXPLAIN; its error is reported verbatim (the guide: never
    invent a cause)."""


def capture(conn: psycopg.Connection[Any], select_sql: str) -> CapturedPlan:
    """The plan of ``select_sql``; ``conn`` must not be in autocommit mode's middle of a
    transaction (a fresh connection, or one idle)."""
    previous = conn.read_only, conn.autocommit
    conn.autocommit = False
    conn.read_only = True
    try:
        with conn.transaction(force_rollback=True):
            try:
                row = conn.execute((EXPLAIN_PREFIX + select_sql).encode()).fetchone()
            except psycopg.errors.ReadOnlySqlTransaction as exc:
                raise ExplainFailed(
                    f"the query writes (it was run read-only): {_primary(exc)}",
                    hint="explain takes queries that only read; a function called in the "
                    "query may write") from None
            except psycopg.DatabaseError as exc:
                raise ExplainFailed(f"EXPLAIN failed on the target: {_primary(exc)}",
                                    hint="the error is the database's own, verbatim") from None
    finally:
        conn.read_only, conn.autocommit = previous[0], previous[1]
    if row is None:
        raise ExplainFailed("EXPLAIN returned no plan")
    document = row[0]
    if isinstance(document, str):  # a target that sends json as text
        import json

        document = json.loads(document)
    try:
        return parse_plan(document)
    except ValueError as exc:
        raise ExplainFailed(f"the target's EXPLAIN output is not understood: {exc}") from None


def _primary(exc: psycopg.Error) -> str:
    diag = exc.diag
    message = diag.message_primary or str(exc).strip().splitlines()[0]
    return f"{message} (SQLSTATE {diag.sqlstate})" if diag.sqlstate else message
