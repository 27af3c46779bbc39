"""Our own ops, for what Alembic lacks.

Registered on Alembic's :class:`~alembic.operations.Operations` (so available as ``op.<name>``
in every revision once this module is imported: the env.py change does that, and revisions
written by autogenerate import it themselves):

- ``op.backfill(table, set={...}, where=..., batch_size=...)``: a batched, resumable UPDATE;
- ``with op.recreate_table(table) as batch_op: ...``: the changes DSQL can only make by
  recreating the table (a type change, SET NOT NULL, ...), said so in the revision;
- ``op.create_index_async(...)``: ``CREATE [UNIQUE] INDEX ASYNC``, waited for until valid;
- ``op.create_unique_constraint_using_index(name, table, index)``: ``ADD CONSTRAINT ... UNIQUE
  USING INDEX``, the one way DSQL adds a unique constraint to an existing table;
- ``op.validate_constraint_async(name, table)``: ``ALTER TABLE ASYNC ... VALIDATE
  CONSTRAINT``, the second half of a CHECK or foreign key added ``postgresql_not_valid=True``.

They run only through the dsql-migrate runner (recorded, planned, executed): stock Alembic
stops at the first of them with :class:`NeedsPlugin` instead of sending DDL DSQL would reject.
The classes not registered as ``op.<name>`` (:class:`RawSqlOp`, :class:`BulkRowsOp`) are what
``op.execute`` and ``op.bulk_insert`` are expanded into.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, cast

from alembic.operations import BatchOperations, MigrateOperation, Operations, ops
from alembic.operations.batch import BatchOperationsImpl
from sqlalchemy.sql.elements import ColumnElement, TextClause

from ..errors import DsqlMigrateError
from ..ops import (
    AwsIamGrantOp,
    AwsIamRevokeOp,
    CreateRoleOp,
    DropRoleOp,
    GrantOp,
    RevokeOp,
    ValidateConstraintOp,
)
from .batch import _BatchTarget


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

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("backfill", self.schema, self.table, tuple(self.values))

    def __repr__(self) -> str:
        return f"BackfillOp({self.table!r}, {self.values!r}, where={self.where!r})"


@Operations.register_operation("create_index_async")
class CreateIndexAsyncOp(ops.CreateIndexOp):
    """``CREATE [UNIQUE] INDEX ASYNC``: the job is waited for, and the step is done only when
    the index is valid (a unique one is preceded by a check for duplicates)."""

    @classmethod
    def create_index_async(cls, operations: Operations, index_name: str | None,
                           table_name: str,
                           columns: Sequence[str | TextClause | ColumnElement[Any]], *,
                           schema: str | None = None, unique: bool = False,
                           **kw: Any) -> Any:
        """Build an index as a DSQL async job and wait until it is valid."""
        return operations.invoke(cls(index_name, table_name, columns, schema=schema,
                                     unique=unique, **kw))

    @classmethod
    def of(cls, op: ops.CreateIndexOp) -> CreateIndexAsyncOp:
        return cls(op.index_name, op.table_name, op.columns, schema=op.schema,
                   unique=bool(op.unique), if_not_exists=op.if_not_exists, **op.kw)


@Operations.register_operation("create_unique_constraint_using_index")
class UniqueUsingIndexOp(MigrateOperation):
    """``ALTER TABLE t ADD CONSTRAINT c UNIQUE USING INDEX i``: a unique constraint over a
    unique index already built (``op.create_index_async(..., unique=True)``). DSQL cannot
    ``ADD UNIQUE (cols)`` on an existing table; the index is renamed to the constraint's name."""

    def __init__(self, constraint_name: str, table_name: str, index_name: str | None = None,
                 *, schema: str | None = None) -> None:
        self.constraint_name = constraint_name
        self.table_name = table_name
        self.index_name = index_name or constraint_name
        self.schema = schema

    @classmethod
    def create_unique_constraint_using_index(cls, operations: Operations,
                                             constraint_name: str, table_name: str,
                                             index_name: str | None = None, *,
                                             schema: str | None = None) -> Any:
        """Turn the unique index ``index_name`` (default: the constraint's name) into a
        unique constraint of ``table_name``."""
        return operations.invoke(cls(constraint_name, table_name, index_name, schema=schema))

    def reverse(self) -> MigrateOperation:
        return ops.DropConstraintOp(self.constraint_name, self.table_name, type_="unique",
                                    schema=self.schema)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("add_unique_using_index", self.schema, self.table_name, self.constraint_name)

    def __repr__(self) -> str:
        return f"UniqueUsingIndexOp({self.constraint_name!r}, {self.table_name!r})"


@Operations.register_operation("validate_constraint_async")
class ValidateConstraintAsyncOp(ValidateConstraintOp):
    """``ALTER TABLE ASYNC t VALIDATE CONSTRAINT c``, waited for: checks the existing rows
    against a CHECK or foreign key that was added ``NOT VALID``."""

    @classmethod
    def validate_constraint_async(cls, operations: Operations, constraint_name: str,
                                  table_name: str, *, schema: str | None = None) -> Any:
        """Validate the ``NOT VALID`` constraint ``constraint_name`` of ``table_name``."""
        return operations.invoke(cls(table_name, constraint_name, schema=schema))

    def reverse(self) -> MigrateOperation:
        raise NotImplementedError("validating a constraint has no reverse")

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("validate_constraint", self.schema, self.table_name, self.constraint_name)


class _Collector(BatchOperations):
    """``batch_op`` of ``op.recreate_table``: Alembic's batch methods, each op kept."""

    def __init__(self, operations: Operations, table_name: str, schema: str | None) -> None:
        super().__init__(operations.migration_context,
                         impl=cast(BatchOperationsImpl, _BatchTarget(table_name, schema)))
        self.collected: list[MigrateOperation] = []

    def invoke(self, operation: MigrateOperation) -> Any:
        self.collected.append(operation)
        return None


class RecreateTableBlock:
    """The context manager ``op.recreate_table`` returns; the op is invoked on exit."""

    def __init__(self, operations: Operations, table_name: str, schema: str | None,
                 reason: str | None) -> None:
        self.operations = operations
        self.batch = _Collector(operations, table_name, schema)
        self.table_name = table_name
        self.schema = schema
        self.reason = reason

    def __enter__(self) -> BatchOperations:
        return self.batch

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if kind is None:
            self.operations.invoke(RecreateTableOp(self.table_name, self.batch.collected,
                                                   schema=self.schema, reason=self.reason))


@Operations.register_operation("recreate_table")
class RecreateTableOp(ops.OpContainer):
    """Changes DSQL can only make by recreating the table, with the changes inside.

    ``with op.recreate_table("t") as batch_op:`` takes Alembic's batch ops
    (``batch_op.alter_column(...)``, ``add_column``, ``drop_column``, ``create_index``,
    ``create_unique_constraint``, ...). The planner creates ``t__new`` with the resulting
    definition, copies the rows in keyset batches with the casts, verifies counts and checksums,
    swaps the tables by renames, builds the indexes ``ASYNC`` and drops the backup: each a
    resumable step. The table is recreated even if no change inside needs it.
    """

    def __init__(self, table_name: str, ops: Sequence[MigrateOperation] = (), *,
                 schema: str | None = None, reason: str | None = None) -> None:
        super().__init__(ops)
        self.table_name = table_name
        self.schema = schema
        self.reason = reason

    @classmethod
    def recreate_table(cls, operations: Operations, table_name: str, *,
                       schema: str | None = None, reason: str | None = None) -> Any:
        """Recreate ``table_name`` with the changes made inside the ``with`` block."""
        return RecreateTableBlock(operations, table_name, schema, reason)

    def reverse(self) -> RecreateTableOp:
        return RecreateTableOp(self.table_name, [o.reverse() for o in reversed(self.ops)],
                               schema=self.schema, reason=self.reason)

    def __repr__(self) -> str:
        return f"RecreateTableOp({self.table_name!r}, {self.ops!r})"


class CommentOp(ops.OpContainer):
    """A comment in a generated revision (what autogenerate left out, and why). It holds no op,
    so ``check`` and the planner see nothing."""

    def __init__(self, *lines: str, table_name: str | None = None,
                 schema: str | None = None) -> None:
        super().__init__()
        self.lines = lines
        self.table_name = table_name  # the table it is about, if any
        self.schema = schema

    def is_empty(self) -> bool:
        return False  # kept where empty containers are pruned

    def reverse(self) -> CommentOp:
        return CommentOp(*self.lines, table_name=self.table_name, schema=self.schema)

    def __repr__(self) -> str:
        return f"CommentOp({self.lines!r})"


def flatten(operations: Sequence[MigrateOperation]) -> Iterator[MigrateOperation]:
    """``operations`` as the planner takes them: a :class:`RecreateTableOp` stays (it makes the
    planner recreate its table) and its changes follow it, other containers are opened."""
    for operation in operations:
        if isinstance(operation, RecreateTableOp):
            yield RecreateTableOp(operation.table_name, schema=operation.schema,
                                  reason=operation.reason)
            yield from flatten(operation.ops)
        elif isinstance(operation, ops.OpContainer):
            yield from flatten(operation.ops)
        else:
            yield operation


def _refuse_without_plugin(operations: Operations, operation: MigrateOperation) -> None:
    """What stock Alembic does with our ops: stop before sending anything DSQL would reject."""
    names = {BackfillOp: "backfill", CreateIndexAsyncOp: "create_index_async",
             UniqueUsingIndexOp: "create_unique_constraint_using_index",
             ValidateConstraintAsyncOp: "validate_constraint_async",
             RecreateTableOp: "recreate_table"}
    name = names.get(type(operation), type(operation).__name__)
    table = getattr(operation, "table_name", None) or getattr(operation, "table", None)
    raise NeedsPlugin(
        f"op.{name}({table!r}) runs only through the dsql-migrate runner",
        hint="in env.py, replace 'from alembic import context' with "
        "'from dsql_migrate.alembic import context', or run 'dsql-migrate upgrade'")


for _op_class in (BackfillOp, CreateIndexAsyncOp, UniqueUsingIndexOp, ValidateConstraintAsyncOp,
                  RecreateTableOp):
    Operations.implementation_for(_op_class)(_refuse_without_plugin)
del _op_class

#: the role ops (:mod:`dsql_migrate.roles`): ``op.create_role("app")``, ``op.drop_role``,
#: ``op.grant("app", ["SELECT"], table="orders")``, ``op.revoke``, ``op.aws_iam_grant("app",
#: "arn:aws:iam::...:role/App")``, ``op.aws_iam_revoke``. Planned (one statement per step, the
#: connection checked for admin first), so stock Alembic refuses them too.
ROLE_OPS: dict[type[MigrateOperation], str] = {
    CreateRoleOp: "create_role", DropRoleOp: "drop_role", GrantOp: "grant",
    RevokeOp: "revoke", AwsIamGrantOp: "aws_iam_grant", AwsIamRevokeOp: "aws_iam_revoke"}


def _refuse_role_op_without_plugin(operations: Operations, operation: MigrateOperation) -> None:
    name = ROLE_OPS.get(type(operation), type(operation).__name__)
    raise NeedsPlugin(
        f"op.{name}({getattr(operation, 'role', None)!r}) runs only through the dsql-migrate "
        "runner (it checks the connection may run it: only admin may map IAM identities)",
        hint="in env.py, replace 'from alembic import context' with "
        "'from dsql_migrate.alembic import context', or run 'dsql-migrate upgrade'")


for _role_op, _name in ROLE_OPS.items():
    if not hasattr(Operations, _name):
        Operations.register_operation(_name)(_role_op)
    Operations.implementation_for(_role_op)(_refuse_role_op_without_plugin)
del _role_op, _name


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


__all__ = ["ROLE_OPS", "BackfillOp", "BulkRowsOp", "CommentOp", "CreateIndexAsyncOp",
           "NeedsPlugin", "RawSqlOp",
           "RecreateTableBlock", "RecreateTableOp", "UniqueUsingIndexOp",
           "ValidateConstraintAsyncOp", "flatten"]
