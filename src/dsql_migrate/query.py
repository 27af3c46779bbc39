"""Run ad-hoc statements against a target: the library side of ``dsql-migrate sql``.

Read-only by default (``BEGIN READ ONLY``, so a write fails before it changes anything); with
``write=True`` every statement runs in one read-write transaction that commits only if all of
them succeed. Either way the transaction is ours: statements that would end it (COMMIT,
ROLLBACK, ...) or make it read-write (``SET TRANSACTION READ WRITE``, which PostgreSQL allows
before a transaction's first query) are refused before anything runs, and an argument holding
several statements runs them one by one (sent together, a ``COMMIT`` among them would run
the rest outside the transaction). These are the equivalents of the DSQL MCP server's
``readonly_query`` and ``transact`` tools.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import errors as pgerrors

from .errors import ConfigError, DsqlMigrateError


@dataclass
class StatementResult:
    statement: str
    columns: list[str] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    rowcount: int = -1
    status: str | None = None

    @property
    def returns_rows(self) -> bool:
        return bool(self.columns)

    def as_dict(self) -> dict[str, Any]:
        return {
            "statement": self.statement,
            "status": self.status,
            "rowcount": self.rowcount,
            "columns": self.columns,
            "rows": [[to_jsonable(v) for v in row] for row in self.rows],
        }


class StatementError(DsqlMigrateError):
    """A statement failed on the server; nothing of the transaction was committed."""


def to_jsonable(value: Any) -> Any:
    """A JSON-friendly form of a value psycopg returned."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "base64:" + base64.b64encode(bytes(value)).decode()
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return str(value)


def position_in(statement: str, position: int) -> tuple[int, int]:
    """(line, column), 1-based, of the 1-based character ``position`` in ``statement``."""
    before = statement[: max(position - 1, 0)]
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    return line, column


#: settings that would make the transaction read-write (or the next ones: with a COMMIT)
_READ_ONLY_SETTINGS = frozenset({"transaction", "session characteristics",
                                 "transaction_read_only", "default_transaction_read_only"})


def single_statements(statements: Sequence[str]) -> list[str]:
    """Each of ``statements`` cut into single statements, none of which may end the transaction
    or change whether it is read-only (:class:`ConfigError` naming it otherwise)."""
    from .sql import StatementKind, parse_statement, split_script

    out: list[str] = []
    for given in statements:
        for piece in split_script(given):  # nothing for an argument of only comments
            text = piece.text
            number = len(out) + 1
            parsed = parse_statement(piece)
            node = parsed.node or {}
            setting = str(node.get("name") or "").lower()
            if parsed.kind is StatementKind.TRANSACTION or (
                    parsed.node_type == "VariableSetStmt" and setting in _READ_ONLY_SETTINGS):
                raise ConfigError(
                    f"statement {number} ({' '.join(text.split())[:60]}) controls the "
                    "transaction, which dsql-migrate sql runs itself: refused, nothing was run",
                    hint="leave out BEGIN/COMMIT/ROLLBACK/SAVEPOINT and SET TRANSACTION; "
                    "use --write for one read-write transaction")
            out.append(text)
    return out


def run_statements(
    conn: psycopg.Connection[Any], statements: Sequence[str], *, write: bool = False
) -> list[StatementResult]:
    """Run ``statements`` in one transaction (read-only unless ``write``) and collect results."""
    single = single_statements(statements)
    conn.read_only = not write
    results: list[StatementResult] = []
    try:
        with conn.transaction():
            if not write:  # a snapshot taken: the transaction can no longer become read-write
                conn.execute("SELECT 1")
            for number, statement in enumerate(single, start=1):
                results.append(_run_one(conn, number, statement, write))
    except StatementError:
        raise
    except psycopg.OperationalError as exc:
        raise DsqlMigrateError(f"the connection failed: {exc}".strip()) from None
    return results


def _run_one(
    conn: psycopg.Connection[Any], number: int, statement: str, write: bool
) -> StatementResult:
    try:
        cursor = conn.execute(statement.encode())  # bytes: run as written, no %s placeholders
    except pgerrors.ReadOnlySqlTransaction:
        raise StatementError(
            f"statement {number} writes, but the transaction is read-only",
            hint="add --write to run the statements in one read-write transaction",
        ) from None
    except psycopg.errors.QueryCanceled:
        raise
    except psycopg.DatabaseError as exc:
        raise StatementError(_describe(number, statement, exc), hint=_hint(exc, write)) from None
    result = StatementResult(statement=statement, rowcount=cursor.rowcount,
                             status=cursor.statusmessage)
    if cursor.description is not None:
        result.columns = [col.name for col in cursor.description]
        result.rows = cursor.fetchall()
    return result


def _describe(number: int, statement: str, exc: psycopg.DatabaseError) -> str:
    diag = exc.diag
    message = diag.message_primary or str(exc).strip().splitlines()[0]
    where = f"statement {number}"
    if diag.statement_position:
        line, column = position_in(statement, int(diag.statement_position))
        where += f", line {line}, column {column}"
    code = f" (SQLSTATE {diag.sqlstate})" if diag.sqlstate else ""
    detail = f"; {diag.message_detail}" if diag.message_detail else ""
    return f"{where}: {message}{code}{detail}; nothing was committed"


def _hint(exc: psycopg.DatabaseError, write: bool) -> str | None:
    if exc.diag.message_hint:
        return exc.diag.message_hint
    if exc.sqlstate == "40001":
        return "a concurrent transaction conflicted (optimistic concurrency); run it again"
    return None
