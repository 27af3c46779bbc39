"""How autogenerate writes our ops into a revision file (Alembic's ``renderers`` registry).

Each renderer returns the Python source of one ``op.<name>(...)`` call; a revision that uses
any of them also imports :mod:`dsql_migrate.alembic.ops` (which defines them), so the file says
where they come from and, run by stock Alembic, stops with a clear message instead of an
``AttributeError``.

Alembic's own renderers are reused wherever the op is Alembic's op with a DSQL twist:
``op.create_index_async`` is ``op.create_index``'s text under another name, and the body of
``op.recreate_table`` is rendered exactly as Alembic renders ``batch_alter_table`` bodies.
"""

from __future__ import annotations

import textwrap

from alembic.autogenerate import render as alembic_render
from alembic.autogenerate.api import AutogenContext
from alembic.operations import ops

from ..ops import AwsIamGrantOp, AwsIamRevokeOp, CreateRoleOp, DropRoleOp, GrantOp, RevokeOp, RoleOp
from .ops import (
    ROLE_OPS,
    BackfillOp,
    CommentOp,
    CreateIndexAsyncOp,
    RecreateTableOp,
    UniqueUsingIndexOp,
    ValidateConstraintAsyncOp,
)

IMPORT = ("import dsql_migrate.alembic.ops  # noqa: F401 - defines op.recreate_table, "
          "op.create_index_async, ...")

renderers = alembic_render.renderers
WIDTH = 88  # of the lines we write, without the function body's indentation


def _prefix(autogen_context: AutogenContext) -> str:
    autogen_context.imports.add(IMPORT)
    return str(autogen_context.opts.get("alembic_module_prefix") or "op.")


def _schema(schema: str | None) -> str:
    return f", schema={schema!r}" if schema else ""


@renderers.dispatch_for(CreateIndexAsyncOp)
def render_create_index_async(autogen_context: AutogenContext, op: CreateIndexAsyncOp) -> str:
    _prefix(autogen_context)
    text = str(renderers.dispatch(ops.CreateIndexOp)(autogen_context, op))
    return text.replace("create_index(", "create_index_async(", 1)


@renderers.dispatch_for(ops.CreatePrimaryKeyOp, replace=True)
def _create_primary_key(autogen_context: AutogenContext, op: ops.CreatePrimaryKeyOp) -> str:
    """Alembic has no renderer for it (it never compares primary keys; the plugin does)."""
    prefix = str(autogen_context.opts.get("alembic_module_prefix") or "op.")
    schema = f", schema={op.schema!r}" if op.schema else ""
    return (f"{prefix}create_primary_key({op.constraint_name!r}, {op.table_name!r}, "
            f"{[str(c) for c in op.columns]!r}{schema})")


@renderers.dispatch_for(UniqueUsingIndexOp)
def render_unique_using_index(autogen_context: AutogenContext, op: UniqueUsingIndexOp) -> str:
    index = "" if op.index_name == op.constraint_name else f", {op.index_name!r}"
    return (f"{_prefix(autogen_context)}create_unique_constraint_using_index("
            f"{op.constraint_name!r}, {op.table_name!r}{index}{_schema(op.schema)})")


@renderers.dispatch_for(ValidateConstraintAsyncOp)
def render_validate_async(autogen_context: AutogenContext, op: ValidateConstraintAsyncOp) -> str:
    return (f"{_prefix(autogen_context)}validate_constraint_async({op.constraint_name!r}, "
            f"{op.table_name!r}{_schema(op.schema)})")


@renderers.dispatch_for(BackfillOp)
def render_backfill(autogen_context: AutogenContext, op: BackfillOp) -> str:
    text = f"{_prefix(autogen_context)}backfill({op.table!r}, set={op.values!r}"
    if op.where:
        text += f", where={op.where!r}"
    if op.batch_size:
        text += f", batch_size={op.batch_size!r}"
    return text + _schema(op.schema) + ")"


@renderers.dispatch_for(CommentOp)
def render_comment(autogen_context: AutogenContext, op: CommentOp) -> list[str]:
    return [f"# {line}" if line else "#" for line in op.lines]


@renderers.dispatch_for(RecreateTableOp)
def render_recreate_table(autogen_context: AutogenContext, op: RecreateTableOp) -> list[str]:
    prefix = _prefix(autogen_context)
    args = [repr(op.table_name)]
    if op.schema:
        args.append(f"schema={op.schema!r}")
    if op.reason:
        args.append(f"reason={op.reason!r}")
    call = f"with {prefix}recreate_table({', '.join(args)}) as batch_op:"
    if len(call) > WIDTH:
        call = f"with {prefix}recreate_table(\n        " + ",\n        ".join(args) + \
            "\n) as batch_op:"
    lines = [f"# {line}" for line in textwrap.wrap(
        f"DSQL cannot make these changes in place: {op.table_name} is rebuilt as "
        f"{op.table_name}__new, its rows copied in verified keyset batches, then swapped in "
        "and its indexes built ASYNC", WIDTH - 2)]
    lines.append(call)
    body: list[str] = []
    # Alembic's batch rendering: ``batch_op.<name>(...)`` without the table name
    with autogen_context._within_batch():
        for inner in op.ops:
            body.extend(alembic_render.render_op(autogen_context, inner))
    lines.extend(body or ["pass"])
    lines.append("")  # ends the block for Alembic's PythonPrinter
    return lines


def _role_args(op: RoleOp) -> str:
    if isinstance(op, (CreateRoleOp, DropRoleOp)):
        return repr(op.role) + ("" if op.login else ", login=False")
    if isinstance(op, (GrantOp, RevokeOp)):
        on = f", table={op.table!r}" if op.table is not None else ""
        schema = "" if op.table is not None and op.schema in (None, "public") else \
            f", schema={op.schema!r}"
        return f"{op.role!r}, {list(op.privileges)!r}{on}{schema}"
    assert isinstance(op, (AwsIamGrantOp, AwsIamRevokeOp))
    return f"{op.role!r}, {op.arn!r}"


def render_role_op(autogen_context: AutogenContext, op: RoleOp) -> str:
    """``op.create_role("app")``, ``op.grant("app", ["SELECT"], table="orders")``,
    ``op.aws_iam_grant("app", "arn:...")``, ..."""
    return f"{_prefix(autogen_context)}{ROLE_OPS[type(op)]}({_role_args(op)})"


for _role_op in ROLE_OPS:
    renderers.dispatch_for(_role_op)(render_role_op)
del _role_op


__all__ = [
    "IMPORT",
    "render_backfill",
    "render_comment",
    "render_create_index_async",
    "render_recreate_table",
    "render_role_op",
    "render_unique_using_index",
    "render_validate_async",
]
