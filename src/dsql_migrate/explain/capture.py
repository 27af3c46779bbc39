"""Capture a plan on the target: ``EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON)`` in a read-only
transaction that is rolled back, so nothing the query touches can change.

DSQL documents its plans in the text form, where it also prints the Query Identifier and the
statement's DPU estimate: ``text`` captures that form (the default for ``dsql://`` targets),
and a target that refuses ``FORMAT JSON`` is asked again for text."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from ..errors import DsqlMigrateError
from .tree import CapturedPlan, parse_plan, parse_text_plan

PREFIXES = {"json": "EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) ",
            "text": "EXPLAIN (ANALYZE, VERBOSE) "}
#: what a target that does not know FORMAT JSON answers
_NO_JSON = (psycopg.errors.SyntaxError, psycopg.errors.FeatureNotSupported,
            psycopg.errors.InvalidParameterValue)


class ExplainFailed(DsqlMigrateError):
    """The target refused the EXPLAIN; its error is reported verbatim (the guide: never
    invent a cause)."""


def capture(conn: psycopg.Connection[Any], select_sql: str,
            plan_format: str = "json") -> CapturedPlan:
    """The plan of ``select_sql`` (``conn``: idle, outside a transaction)."""
    if plan_format == "json":
        try:
            return _capture(conn, select_sql, "json")
        except _Unsupported:
            return _capture(conn, select_sql, "text")
    return _capture(conn, select_sql, "text")


class _Unsupported(Exception):
    """The target refused FORMAT JSON."""


def _capture(conn: psycopg.Connection[Any], select_sql: str, plan_format: str) -> CapturedPlan:
    previous = conn.read_only, conn.autocommit
    conn.autocommit = False
    conn.read_only = True
    try:
        with conn.transaction(force_rollback=True):
            try:
                cursor = conn.execute((PREFIXES[plan_format] + select_sql).encode())
                rows = cursor.fetchall()
            except _NO_JSON as exc:
                if plan_format == "json" and "json" in _primary(exc).lower():
                    raise _Unsupported from None
                raise ExplainFailed(f"EXPLAIN failed on the target: {_primary(exc)}",
                                    hint="the error is the database's own, verbatim") from None
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
    if not rows:
        raise ExplainFailed("EXPLAIN returned no plan")
    try:
        if plan_format == "text":
            return parse_text_plan("\n".join(str(row[0]) for row in rows))
        document = rows[0][0]
        if isinstance(document, str):  # a target that sends json as text
            document = json.loads(document)
        return parse_plan(document)
    except ValueError as exc:
        raise ExplainFailed(f"the target's EXPLAIN output is not understood: {exc}") from None


def _primary(exc: psycopg.Error) -> str:
    diag = exc.diag
    message = diag.message_primary or str(exc).strip().splitlines()[0]
    return f"{message} (SQLSTATE {diag.sqlstate})" if diag.sqlstate else message
