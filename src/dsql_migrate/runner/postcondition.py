"""Has a DDL statement already taken effect? Asked of the catalog on resume.

A runner killed between a DDL statement and the transaction that marks it done leaves the step
``running``; the next run cannot tell from the state tables whether the DDL committed. This module
turns the statement into a catalog query that answers it (a table exists, a column is gone, a
constraint is there, a rename happened...). ``None`` means "cannot tell": the runner then runs
the statement again and reports an error if that fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pglast
from pglast import ast
from pglast.enums import AlterTableType, ObjectType

from ..sql.aws_iam import MalformedIamStatement, parse_iam

REL_OBJECTS = (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_INDEX, ObjectType.OBJECT_VIEW,
               ObjectType.OBJECT_SEQUENCE, ObjectType.OBJECT_MATVIEW)


@dataclass(frozen=True)
class Postcondition:
    """A query returning one boolean: true when the statement has taken effect."""

    query: str
    params: tuple[Any, ...]
    description: str


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _qualified(schema: str | None, name: str | None) -> str:
    if not name:
        raise _Unknown
    return f"{_quote(schema)}.{_quote(name)}" if schema else _quote(name)


def _rel(rv: ast.RangeVar | None) -> str:
    if rv is None or not rv.relname:
        raise _Unknown
    return _qualified(rv.schemaname, rv.relname)


class _Unknown(Exception):
    """The statement lacks what a postcondition needs."""


def _exists(rel: str) -> Postcondition:
    return Postcondition("SELECT to_regclass(%s) IS NOT NULL", (rel,), f"{rel} exists")


def _absent(rels: list[str]) -> Postcondition:
    query = "SELECT " + " AND ".join(["to_regclass(%s) IS NULL"] * len(rels))
    return Postcondition(query, tuple(rels), f"{', '.join(rels)} gone")


_COLUMN = ("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = "
           "to_regclass(%s) AND attname = %s AND attnum > 0 AND NOT attisdropped")
_CONSTRAINT = ("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = "
               "to_regclass(%s) AND conname = %s")


def for_statement(statement: str) -> Postcondition | None:
    """The postcondition of one DDL statement, or None if this module cannot tell."""
    try:
        return _for_statement(statement)
    except (_Unknown, MalformedIamStatement):
        return None


_ROLE = "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s)"
_MAPPING = ("SELECT EXISTS (SELECT 1 FROM sys.iam_pg_role_mappings WHERE pg_role_name = %s "
            "AND arn = %s)")


def _for_statement(statement: str) -> Postcondition | None:
    iam = parse_iam(statement)  # AWS IAM GRANT/REVOKE: not PostgreSQL syntax
    if iam is not None:
        return Postcondition(_MAPPING if iam.grant else f"SELECT NOT {_MAPPING[7:]}",
                             (iam.role, iam.arn), f"{iam.arn} {'' if iam.grant else 'not '}"
                             f"mapped to {iam.role}")
    try:
        parsed = pglast.parse_sql(statement)
    except pglast.parser.ParseError:
        return None
    if len(parsed) != 1:
        return None
    stmt = parsed[0].stmt
    if isinstance(stmt, ast.CreateRoleStmt) and stmt.role:
        return Postcondition(_ROLE, (stmt.role,), f"role {stmt.role} exists")
    if isinstance(stmt, ast.DropRoleStmt) and stmt.roles:
        names = [r.rolename for r in stmt.roles if getattr(r, "rolename", None)]
        return Postcondition("SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE "
                             "rolname = ANY(%s))", (names,), f"role {', '.join(names)} gone")
    if isinstance(stmt, ast.CreateStmt):
        return _exists(_rel(stmt.relation))
    if isinstance(stmt, ast.ViewStmt):
        # CREATE OR REPLACE VIEW is safe to run again; its effect cannot be told from existence
        return None if stmt.replace else _exists(_rel(stmt.view))
    if isinstance(stmt, ast.CreateSchemaStmt) and stmt.schemaname:
        return Postcondition("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace "
                             "WHERE nspname = %s)", (stmt.schemaname,),
                             f"schema {stmt.schemaname} exists")
    if isinstance(stmt, ast.IndexStmt) and stmt.idxname:
        schema = stmt.relation.schemaname if stmt.relation is not None else None
        return _exists(_qualified(schema, stmt.idxname))
    if isinstance(stmt, ast.DropStmt) and stmt.removeType in REL_OBJECTS and stmt.objects:
        names = [_qualified(*(s.sval for s in obj)) if len(obj) == 2
                 else _quote(obj[-1].sval) for obj in stmt.objects]
        return _absent(names)
    if isinstance(stmt, ast.RenameStmt):
        return _for_rename(stmt)
    if isinstance(stmt, ast.AlterTableStmt) and stmt.cmds and len(stmt.cmds) == 1:
        return _for_alter(_rel(stmt.relation), stmt.cmds[0])
    return None


def _for_rename(stmt: ast.RenameStmt) -> Postcondition | None:
    if stmt.relation is None:
        return None
    rel = _rel(stmt.relation)
    if stmt.renameType in REL_OBJECTS and stmt.newname:
        new = _qualified(stmt.relation.schemaname, stmt.newname)
        return Postcondition("SELECT to_regclass(%s) IS NULL AND to_regclass(%s) IS NOT NULL",
                             (rel, new), f"{rel} renamed to {new}")
    if stmt.renameType == ObjectType.OBJECT_COLUMN:
        return Postcondition(f"SELECT NOT ({_COLUMN})) AND ({_COLUMN}))",
                             (rel, stmt.subname, rel, stmt.newname),
                             f"column {stmt.subname} of {rel} renamed to {stmt.newname}")
    if stmt.renameType == ObjectType.OBJECT_TABCONSTRAINT:
        return Postcondition(f"SELECT NOT ({_CONSTRAINT})) AND ({_CONSTRAINT}))",
                             (rel, stmt.subname, rel, stmt.newname),
                             f"constraint {stmt.subname} renamed to {stmt.newname}")
    return None


def _for_alter(rel: str, cmd: ast.AlterTableCmd) -> Postcondition | None:
    kind = cmd.subtype
    if kind == AlterTableType.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef):
        return Postcondition(_COLUMN + ")", (rel, cmd.def_.colname),
                             f"column {cmd.def_.colname} exists")
    if kind == AlterTableType.AT_DropColumn:
        return Postcondition(f"SELECT NOT ({_COLUMN}))", (rel, cmd.name),
                             f"column {cmd.name} gone")
    # SET/DROP DEFAULT and DROP NOT NULL are safe to run again, and "has a default" cannot
    # tell a changed default from the old one: no check, the statement simply runs again
    if kind == AlterTableType.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint) \
            and cmd.def_.conname:
        return Postcondition(_CONSTRAINT + ")", (rel, cmd.def_.conname),
                             f"constraint {cmd.def_.conname} exists")
    if kind == AlterTableType.AT_DropConstraint:
        return Postcondition(f"SELECT NOT ({_CONSTRAINT}))", (rel, cmd.name),
                             f"constraint {cmd.name} gone")
    if kind == AlterTableType.AT_ValidateConstraint:
        return Postcondition(_CONSTRAINT + " AND convalidated)", (rel, cmd.name),
                             f"constraint {cmd.name} validated")
    return None
