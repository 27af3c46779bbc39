"""Our own ops, for what Alembic lacks: a batched backfill and one raw SQL statement.

``op.backfill(table, set={...}, where=..., batch_size=...)`` is registered on Alembic's
:class:`~alembic.operations.Operations`, so it is available as ``op.backfill`` in every revision
once :mod:`dsql_migrate.alembic` is imported (the env.py change, or the ``alembic.plugins``
entry point, does that).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alembic.operations import MigrateOperation, Operations

from ..errors import DsqlMigrateError


class NeedsPlugin(DsqlMigrateError):
    """An op that only the dsql-migrate runner can execute was run by stock Alembic."""


@Operations.register_operation("backfill")
class BackfillOp(MigrateOperation):
    """A batched, resumable ``UPDATE table SET ... WHERE ...``, walked by primary key.

    ``set`` maps column names to SQL expressions (text, e.g. ``{"status": "'new'"}``);
    ``where`` is an optional SQL condition (e.g. ``"status IS NULL"``).
    """

    def __init__(self, table_name: str, set: Mapping[str, str], *,
                 where: str | None = None, batch_size: int | None = None,
                 schema: str | None = None) -> None:
        if not set:
            raise DsqlMigrateError(f"op.backfill({table_name!r}): set= names no column")
        # not ``table_name``: the planner would fold the op into a table recreation
        self.table = table_name
        self.values = dict(set)
        self.where = where
        self.batch_size = batch_size
        self.schema = schema

    @classmethod
    def backfill(cls, operations: Operations, table_name: str, set: Mapping[str, str],
                 *, where: str | None = None, batch_size: int | None = None,
                 schema: str | None = None) -> Any:
        """Update ``table_name`` in resumable batches of at most ``batch_size`` rows."""
        return operations.invoke(cls(table_name, set, where=where, batch_size=batch_size,
                                     schema=schema))

    def reverse(self) -> MigrateOperation:
        raise NotImplementedError("a backfill has no automatic reverse")

    def __repr__(self) -> str:
        return f"BackfillOp({self.table!r}, {self.values!r}, where={self.where!r})"


@Operations.implementation_for(BackfillOp)
def _backfill_without_plugin(operations: Operations, operation: BackfillOp) -> None:
    raise NeedsPlugin(
        f"op.backfill({operation.table!r}) runs only through the dsql-migrate runner",
        hint="in env.py, replace 'from alembic import context' with "
        "'from dsql_migrate.alembic import context', or run 'dsql-migrate upgrade'")


class RawSqlOp(MigrateOperation):
    """One statement of an ``op.execute(...)`` string, already split and checked."""

    def __init__(self, sql: str, *, kind: str, node_type: str | None, is_async: bool,
                 where: str = "") -> None:
        self.sql = sql
        self.kind = kind  # "ddl" | "dml" | "other"
        self.node_type = node_type
        self.is_async = is_async
        self.where = where

    def __repr__(self) -> str:
        return f"RawSqlOp({self.sql!r})"


class BulkRowsOp(MigrateOperation):
    """Rows of an ``op.bulk_insert``, rendered as INSERT statements (one batch of rows)."""

    def __init__(self, table_name: str, schema: str | None, statements: list[str],
                 rows: int) -> None:
        self.table = table_name
        self.schema = schema
        self.statements = statements
        self.rows = rows


__all__ = ["BackfillOp", "BulkRowsOp", "NeedsPlugin", "RawSqlOp"]
