"""Role ops → steps: one statement each, its own transaction (DSQL runs one DDL per
transaction; ``CREATE ROLE``, ``GRANT``, ``AWS IAM GRANT`` are DDL there).

Each step records in its details what the connection must be (``requires``: ``admin`` for
``AWS IAM GRANT``/``REVOKE``, ``createrole`` for ``CREATE``/``DROP ROLE``); the runner checks it
before anything runs (:func:`dsql_migrate.roles.check_connection`). The promise of a table
carries the grants and revokes on it, so a plan that grants is checked exactly at its end.
"""

from __future__ import annotations

import json
from typing import Any

from ..ops import AwsIamGrantOp, AwsIamRevokeOp, CreateRoleOp, DropRoleOp, GrantOp, RevokeOp
from ..plan import StepKind
from ..roles import required, statement
from . import Context, handles
from .promise import _State, effect

REQUIRES = "requires"


def _summary(op: Any) -> str:
    if isinstance(op, CreateRoleOp):
        return f"create role {op.role} ({'LOGIN' if op.login else 'NOLOGIN'})"
    if isinstance(op, DropRoleOp):
        return f"drop role {op.role}"
    if isinstance(op, (GrantOp, RevokeOp)):
        on = f"{op.schema}.{op.table}" if op.table is not None else f"schema {op.schema}"
        verb = "grant" if isinstance(op, GrantOp) else "revoke"
        word = "to" if isinstance(op, GrantOp) else "from"
        return f"{verb} {', '.join(op.privileges)} on {on} {word} {op.role}"
    if isinstance(op, AwsIamGrantOp):
        return f"let IAM identity {op.arn} connect as {op.role}"
    return f"stop IAM identity {op.arn} connecting as {op.role}"


@handles(CreateRoleOp, DropRoleOp, GrantOp, RevokeOp, AwsIamGrantOp, AwsIamRevokeOp)
def _plan_role_op(op: Any, ctx: Context) -> None:
    needs = required(op)
    ctx.add(StepKind.DDL, _summary(op), [statement(op)], table=None,
            destructive=isinstance(op, (DropRoleOp, AwsIamRevokeOp)),
            details={REQUIRES: needs} if needs else None)


@effect(GrantOp, RevokeOp)
def _privileges(op: GrantOp | RevokeOp, state: _State) -> None:
    """The table's grants with these privileges of the role added or removed."""
    if op.table is None:
        return  # schema privileges are not in a table's fingerprint
    table = state.table(op.table, op.schema)
    if table is None:
        return
    grants = table.get("grants")
    current = list(grants) if isinstance(grants, list) else []
    mine = {(g.get("grantee"), g.get("privilege")) for g in current if g.get("column") is None}
    for privilege in op.privileges:
        key = (op.role, privilege)
        if isinstance(op, GrantOp) and key not in mine:
            current.append({"column": None, "grantable": False, "grantee": op.role,
                            "privilege": privilege})
        elif isinstance(op, RevokeOp):
            current = [g for g in current if not (
                g.get("grantee") == op.role and g.get("privilege") == privilege)]
    # in the order the fingerprint sorts a set of grants (:func:`fingerprint.canonical`)
    table["grants"] = sorted(current, key=lambda g: json.dumps(
        g, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


@effect(CreateRoleOp, DropRoleOp, AwsIamGrantOp, AwsIamRevokeOp)
def _no_table_change(op: Any, state: _State) -> None:
    """Roles and IAM mappings are not part of any table's fingerprint."""


__all__ = ["REQUIRES"]
