"""``op.batch_alter_table`` while a revision is recorded.

On PostgreSQL, Alembic's batch mode with ``recreate="auto"`` (or ``"never"``) is a grouping and
nothing more: the batch's ops are emitted as the ordinary ALTER ops, in order, when the block
ends. While recording, the batch's ops are therefore recorded like any other op (the planner
makes them DSQL-safe), instead of Alembic's flush running them at once, outside the plan.

``recreate="always"`` is Alembic's "move and copy" for SQLite (one unbounded ``INSERT ...
SELECT``, then drop and rename): it is refused, with the plugin's own recreation as the way out
(a type change or ``nullable=False`` already recreates the table, in verified batches). So is
``insert_before``/``insert_after`` on ``add_column``, as Alembic refuses it without recreation.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, cast

from alembic.operations import BatchOperations, Operations, ops
from alembic.operations.batch import BatchOperationsImpl

from ..errors import DsqlMigrateError, ExitCode

_ORDERING = ("insert_before", "insert_after")


class BatchNotSupported(DsqlMigrateError):
    """A batch the plugin cannot run as the ordinary ALTER ops; nothing of the revision ran."""

    exit_code = ExitCode.FAILED


class _BatchTarget:
    """What Alembic's ``batch_*`` op constructors read from a batch: the table and schema."""

    def __init__(self, table_name: str, schema: str | None) -> None:
        self.table_name = table_name
        self.schema = schema


def recording_batch_alter_table(
        operations: Operations, invoke: Callable[[ops.MigrateOperation], Any],
) -> Callable[..., AbstractContextManager[BatchOperations]]:
    """``op.batch_alter_table`` for :func:`.compile.record`: the batch's ops go to ``invoke``."""

    def batch_alter_table(table_name: str, schema: str | None = None,
                          recreate: str = "auto", **ignored: Any,
                          ) -> AbstractContextManager[BatchOperations]:
        # copy_from, table_args, table_kwargs, reflect_*, naming_convention and
        # partial_reordering shape Alembic's recreation only: without it they do nothing
        where = _caller()
        if recreate == "always":
            raise BatchNotSupported(
                f"{where}op.batch_alter_table({table_name!r}, recreate='always') is not "
                "supported on DSQL: it copies the table in one unbounded INSERT ... SELECT",
                hint="use recreate='auto' (the default): the batch's ops become DSQL-safe "
                "steps, and a type change or nullable=False recreates the table in "
                "verified, resumable batches")
        if recreate not in ("auto", "never"):
            raise BatchNotSupported(
                f"{where}op.batch_alter_table({table_name!r}, recreate={recreate!r}): "
                "recreate must be 'auto', 'always' or 'never'")
        return _batch(operations, invoke, table_name, schema)

    return batch_alter_table


@contextmanager
def _batch(operations: Operations, invoke: Callable[[ops.MigrateOperation], Any],
           table_name: str, schema: str | None) -> Iterator[BatchOperations]:
    batch_op = BatchOperations(operations.migration_context,
                               impl=cast(BatchOperationsImpl, _BatchTarget(table_name, schema)))

    def record_op(operation: ops.MigrateOperation) -> Any:
        kw = getattr(operation, "kw", None)
        if isinstance(kw, dict) and any(kw.get(k) for k in _ORDERING):
            if isinstance(operation, ops.AddColumnOp):
                raise BatchNotSupported(
                    f"{_caller()}op.batch_alter_table({table_name!r}): add_column("
                    f"{operation.column.name!r}) with insert_before/insert_after needs the "
                    "table recreated, which batch mode does not do on DSQL",
                    hint="remove insert_before/insert_after: the column is added last")
            for key in _ORDERING:  # Alembic ignores them when it does not recreate
                kw.pop(key, None)
        return invoke(operation)

    batch_op.invoke = record_op  # type: ignore[method-assign]
    yield batch_op


def _caller() -> str:
    """``file.py:LINE: `` of the revision's line that called into the op ('' if unknown):
    the first frame outside Alembic and this plugin."""
    frame = inspect.currentframe()
    while frame is not None and str(frame.f_globals.get("__name__", "")).startswith(
            ("alembic.", "dsql_migrate.alembic.", "contextlib")):
        frame = frame.f_back
    if frame is None:
        return ""
    return f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}: "


__all__ = ["BatchNotSupported", "recording_batch_alter_table"]
