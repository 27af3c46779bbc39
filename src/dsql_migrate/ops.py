"""Our own operation classes, beside Alembic's (DESIGN.md §1: reuse ``alembic.operations.ops``;
add classes only for what Alembic lacks). The diff produces them and the planner compiles them;
both import them from here. The Alembic-facing ops that revisions call (``op.backfill``,
``op.recreate_table``, ...) live in :mod:`dsql_migrate.alembic.ops` and build on these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alembic.operations import Operations, ops

__all__ = ["AwsIamGrantOp", "AwsIamRevokeOp", "ChangePrimaryKeyOp", "CreateRoleOp",
           "DropRoleOp", "GrantOp", "RevokeOp", "RoleOp", "ValidateConstraintOp"]


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


# -- roles (DSQL.md §5; declared and compared in :mod:`dsql_migrate.roles`) ------------------------
# Each is one statement, planned as a step of its own. Grants name their table ``table``, not
# ``table_name``: the planner would fold an op with a ``table_name`` into a recreation of that
# table; the promise reads ``table`` (the grant changes the table's fingerprint).


class RoleOp(ops.MigrateOperation):
    """An op on a database role."""

    role: str
    fields: tuple[str, ...] = ("role",)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return (type(self).__name__, *(getattr(self, f) for f in self.fields))

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and isinstance(other, RoleOp) and \
            other.to_diff_tuple() == self.to_diff_tuple()

    def __hash__(self) -> int:
        return hash(self.to_diff_tuple())

    def __repr__(self) -> str:
        args = ", ".join(f"{f}={getattr(self, f)!r}" for f in self.fields)
        return f"{type(self).__name__}({args})"


class CreateRoleOp(RoleOp):
    """``CREATE ROLE name WITH LOGIN`` (``login=False``: ``NOLOGIN``)."""

    fields = ("role", "login")

    def __init__(self, role: str, *, login: bool = True) -> None:
        self.role = role
        self.login = login

    @classmethod
    def create_role(cls, operations: Operations, role: str, *, login: bool = True) -> Any:
        """Create the database role ``role`` (needs admin on DSQL)."""
        return operations.invoke(cls(role, login=login))

    def reverse(self) -> DropRoleOp:
        return DropRoleOp(self.role, login=self.login)


class DropRoleOp(RoleOp):
    """``DROP ROLE name``: after its IAM mappings and privileges are revoked."""

    fields = ("role", "login")

    def __init__(self, role: str, *, login: bool = True) -> None:
        self.role = role
        self.login = login

    @classmethod
    def drop_role(cls, operations: Operations, role: str, *, login: bool = True) -> Any:
        """Drop the database role ``role`` (``login``: what its reverse creates)."""
        return operations.invoke(cls(role, login=login))

    def reverse(self) -> CreateRoleOp:
        return CreateRoleOp(self.role, login=self.login)


class _PrivilegeOp(RoleOp):
    fields = ("role", "privileges", "table", "schema")

    def __init__(self, role: str, privileges: Sequence[str] | str, *,
                 table: str | None = None, schema: str | None = None) -> None:
        self.role = role
        names = [privileges] if isinstance(privileges, str) else list(privileges)
        self.privileges = tuple(sorted({" ".join(p.upper().split()) for p in names}))
        self.table = table
        self.schema = schema if schema is not None or table is None else "public"


class GrantOp(_PrivilegeOp):
    """``GRANT privileges ON TABLE schema.table TO role`` (``table=None``: ``ON SCHEMA``)."""

    @classmethod
    def grant(cls, operations: Operations, role: str, privileges: Sequence[str] | str, *,
              table: str | None = None, schema: str | None = None) -> Any:
        """Grant ``privileges`` on ``table`` (or, without a table, on ``schema``) to ``role``."""
        return operations.invoke(cls(role, privileges, table=table, schema=schema))

    def reverse(self) -> RevokeOp:
        return RevokeOp(self.role, self.privileges, table=self.table, schema=self.schema)


class RevokeOp(_PrivilegeOp):
    """``REVOKE privileges ON TABLE schema.table FROM role`` (``table=None``: ``ON SCHEMA``)."""

    @classmethod
    def revoke(cls, operations: Operations, role: str, privileges: Sequence[str] | str, *,
               table: str | None = None, schema: str | None = None) -> Any:
        """Revoke ``privileges`` on ``table`` (or on ``schema``) from ``role``."""
        return operations.invoke(cls(role, privileges, table=table, schema=schema))

    def reverse(self) -> GrantOp:
        return GrantOp(self.role, self.privileges, table=self.table, schema=self.schema)


class AwsIamGrantOp(RoleOp):
    """``AWS IAM GRANT role TO 'arn'``: the IAM identity may connect as ``role`` (admin only)."""

    fields = ("role", "arn")

    def __init__(self, role: str, arn: str) -> None:
        self.role = role
        self.arn = arn

    @classmethod
    def aws_iam_grant(cls, operations: Operations, role: str, arn: str) -> Any:
        """Let the IAM role or user ``arn`` connect as ``role`` (only admin may, on DSQL)."""
        return operations.invoke(cls(role, arn))

    def reverse(self) -> AwsIamRevokeOp:
        return AwsIamRevokeOp(self.role, self.arn)


class AwsIamRevokeOp(RoleOp):
    """``AWS IAM REVOKE role FROM 'arn'`` (admin only; before ``DROP ROLE``)."""

    fields = ("role", "arn")

    def __init__(self, role: str, arn: str) -> None:
        self.role = role
        self.arn = arn

    @classmethod
    def aws_iam_revoke(cls, operations: Operations, role: str, arn: str) -> Any:
        """Stop the IAM identity ``arn`` from connecting as ``role`` (only admin may)."""
        return operations.invoke(cls(role, arn))

    def reverse(self) -> AwsIamGrantOp:
        return AwsIamGrantOp(self.role, self.arn)
