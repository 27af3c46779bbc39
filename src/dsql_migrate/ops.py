"""Our own operation classes, beside Alembic's (DESIGN.md §1: reuse ``alembic.operations.ops``;
add classes only for what Alembic lacks). The diff produces them and the planner compiles them;
both import them from here. The Alembic-facing ops that revisions call (``op.backfill``,
``op.recreate_table``, ...) live in :mod:`dsql_migrate.alembic.ops` and build on these.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic.operations import ops

__all__ = ["ChangePrimaryKeyOp", "ValidateConstraintOp"]


class ValidateConstraintOp(ops.MigrateOperation):
    """Validate a constraint that exists but is ``NOT VALID`` (a CHECK or a foreign key)."""

    def __init__(self, table_name: str, constraint_name: str, *,
                 schema: str | None = None) -> None:
        self.table_name = table_name
        self.constraint_name = constraint_name
        self.schema = schema

    def __repr__(self) -> str:
        return f"ValidateConstraintOp({self.table_name!r}, {self.constraint_name!r})"


class ChangePrimaryKeyOp(ops.MigrateOperation):
    """Change the primary key of a table (Alembic does not compare primary keys)."""

    def __init__(self, table_name: str, columns: Sequence[str], *,
                 schema: str | None = None) -> None:
        self.table_name = table_name
        self.columns = tuple(columns)
        self.schema = schema

    def __repr__(self) -> str:
        return f"ChangePrimaryKeyOp({self.table_name!r}, {self.columns!r})"
