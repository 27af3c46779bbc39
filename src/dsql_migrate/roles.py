"""Database roles in migrations: declared roles, their privileges and IAM mappings, compared
with the live database (DSQL.md §5, the seed's workflow 5 "scoped roles").

**Declaring** the roles a schema needs:

- in a desired-state SQL file, with the statements themselves: ``CREATE ROLE app WITH LOGIN``,
  ``GRANT SELECT ON orders TO app``, ``GRANT USAGE ON SCHEMA billing TO app``,
  ``AWS IAM GRANT app TO 'arn:aws:iam::111122223333:role/App'`` and, to remove a role,
  ``DROP ROLE old_app``. They are taken out of the file before it is loaded (a role is global
  to a PostgreSQL server: created in the throwaway database it would exist on the server);
- in a SQLAlchemy model, with :func:`declare_roles` (kept in ``metadata.info["dsql_roles"]``).

A role named there is **managed**: its privileges on tables and schemas and its IAM mappings
are exactly the declared ones (others are revoked); a role not named is left alone.

**Comparing** (:func:`compare`) gives the ops of :mod:`dsql_migrate.ops` in the order DSQL
needs: roles created, mapped to IAM, granted; then revoked, unmapped (``AWS IAM REVOKE``
before ``DROP ROLE``: a mapped role cannot be dropped) and dropped. Each op is one statement,
planned as its own step (one DDL per transaction).

**Refusing**: only ``admin`` may run ``AWS IAM GRANT``/``REVOKE`` on DSQL, and creating or
dropping a role needs ``admin`` (or ``CREATEROLE``). :func:`check_connection` says so before a
plan changes anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from alembic.autogenerate.compare import comparators
from alembic.operations import ops as alembic_ops
from alembic.util import DispatchPriority

from .errors import DsqlMigrateError, ExitCode
from .ops import (
    AwsIamGrantOp,
    AwsIamRevokeOp,
    CreateRoleOp,
    DropRoleOp,
    GrantOp,
    RevokeOp,
    RoleOp,
)

if TYPE_CHECKING:
    from pglast import ast

# The SQL layer (dsql_migrate.sql, whose package imports pglast, the SQL parser) is imported
# where role statements are read or written, not here: the diff imports this module, and a
# model target is planned without parsing SQL.


def q(name: str) -> str:
    """``name`` as a SQL identifier (:func:`dsql_migrate.sql.quoting.quote_ident`)."""
    from .sql.quoting import quote_ident

    return quote_ident(name)


def literal(value: str) -> str:
    """``value`` as a SQL string literal (:func:`dsql_migrate.sql.quoting.quote_literal`)."""
    from .sql.quoting import quote_literal

    return quote_literal(value)


INFO_KEY = "dsql_roles"
ADMIN = "admin"
#: what ``ALL [PRIVILEGES]`` means, per object kind (PostgreSQL 16, which DSQL is)
ALL_PRIVILEGES = {
    "table": ("DELETE", "INSERT", "REFERENCES", "SELECT", "TRIGGER", "TRUNCATE", "UPDATE"),
    "schema": ("CREATE", "USAGE"),
}
#: roles that are never managed: DSQL's own and PostgreSQL's
RESERVED = re.compile(r"^(admin|public|pg_.*|sys|postgres)$", re.IGNORECASE)


class RolesError(DsqlMigrateError):
    """A role declaration that cannot be compared or planned."""

    exit_code = ExitCode.USAGE


class NotAdmin(DsqlMigrateError):
    """The connection may not run the plan's role statements (refused before any change)."""

    exit_code = ExitCode.REFUSED


# -- the declared state --------------------------------------------------------------------------


@dataclass(frozen=True)
class Role:
    """A role the schema needs: ``Role("app_ro", iam=["arn:..."], schemas={"public":
    ["USAGE"]}, tables={"orders": ["SELECT"], "billing.invoices": ["SELECT"]})``.

    ``tables`` keys are ``table`` (schema ``public``) or ``schema.table``; ``ALL`` stands for
    every privilege of the kind."""

    name: str
    login: bool = True
    iam: Sequence[str] = ()
    schemas: Mapping[str, Sequence[str]] = field(default_factory=dict)
    tables: Mapping[str, Sequence[str]] = field(default_factory=dict)


@dataclass(frozen=True, order=True)
class Privilege:
    """One privilege of a role: on a table (``kind`` "table", ``schema``.``name``) or on a
    schema (``kind`` "schema", ``name`` the schema, ``schema`` None)."""

    role: str
    kind: str
    schema: str | None
    name: str
    privilege: str


@dataclass
class RoleSpec:
    """The declared roles: managed roles (name → LOGIN), their privileges and IAM mappings
    ((role, arn)), and the roles that must not exist."""

    roles: dict[str, bool] = field(default_factory=dict)
    privileges: set[Privilege] = field(default_factory=set)
    mappings: set[tuple[str, str]] = field(default_factory=set)
    dropped: set[str] = field(default_factory=set)
    #: ("table" | "schema", schema, name) of the desired state's own objects, beyond the
    #: model's tables (a desired-state file's views and schemas)
    objects: set[tuple[str, str | None, str]] = field(default_factory=set)

    def add_role(self, role: Role) -> None:
        _check_name(role.name)
        self.roles[role.name] = role.login
        self.dropped.discard(role.name)
        for arn in role.iam:
            self.mappings.add((role.name, check_arn(arn)))
        for schema, privileges in role.schemas.items():
            for privilege in expand_privileges("schema", privileges):
                self.privileges.add(Privilege(role.name, "schema", None, schema, privilege))
        for table, privileges in role.tables.items():
            schema, _, name = table.rpartition(".")
            for privilege in expand_privileges("table", privileges):
                self.privileges.add(Privilege(role.name, "table", schema or "public", name,
                                              privilege))

    def __bool__(self) -> bool:
        return bool(self.roles or self.dropped)


def declare_roles(metadata: Any, *roles: Role, drop: Iterable[str] = ()) -> RoleSpec:
    """Declare the roles of ``metadata`` (a SQLAlchemy ``MetaData``): compared with the live
    roles by ``dsql-migrate plan`` and Alembic's autogenerate. ``drop``: roles that must not
    exist (their IAM mappings and privileges are revoked first)."""
    spec = RoleSpec()
    for role in roles:
        if role.name in spec.roles:
            raise RolesError(f"role {role.name!r} is declared twice")
        spec.add_role(role)
    for name in drop:
        _check_name(name)
        if name in spec.roles:
            raise RolesError(f"role {name!r} is declared and dropped")
        spec.dropped.add(name)
    metadata.info[INFO_KEY] = spec
    return spec


def declared(metadata: Any) -> RoleSpec | None:
    value = getattr(metadata, "info", {}).get(INFO_KEY)
    return value if isinstance(value, RoleSpec) and value else None


def expand_privileges(kind: str, privileges: Iterable[str]) -> list[str]:
    out: list[str] = []
    for privilege in privileges:
        word = " ".join(privilege.upper().split())
        if word in ("ALL", "ALL PRIVILEGES"):
            out.extend(ALL_PRIVILEGES[kind])
        elif word in ALL_PRIVILEGES[kind]:
            out.append(word)
        else:
            raise RolesError(f"{privilege!r} is not a privilege on a {kind}",
                             hint=f"use one of {', '.join(ALL_PRIVILEGES[kind])} or ALL")
    return out


_ARN = re.compile(r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:[A-Za-z0-9+=,.@_/:-]+$")


def check_arn(arn: str) -> str:
    if not _ARN.match(arn):
        raise RolesError(f"{arn!r} is not an IAM role or user ARN",
                         hint="write it as 'arn:aws:iam::111122223333:role/name'")
    return arn


def _check_name(name: str) -> None:
    if not name or RESERVED.match(name):
        raise RolesError(f"role {name!r} cannot be managed by a migration (DSQL's admin role "
                         "and PostgreSQL's own roles are fixed)")


# -- statements ------------------------------------------------------------------------------------


def on_clause(table: str | None, schema: str | None) -> str:
    if table is not None:
        return f"TABLE {q(schema or 'public')}.{q(table)}"
    if schema is None:
        raise RolesError("a grant names neither a table nor a schema")
    return f"SCHEMA {q(schema)}"


def statement(op: RoleOp) -> str:
    """The one SQL statement of a role op."""
    if isinstance(op, CreateRoleOp):
        return f"CREATE ROLE {q(op.role)} WITH {'LOGIN' if op.login else 'NOLOGIN'}"
    if isinstance(op, DropRoleOp):
        return f"DROP ROLE {q(op.role)}"
    if isinstance(op, GrantOp):
        return (f"GRANT {', '.join(op.privileges)} ON {on_clause(op.table, op.schema)} "
                f"TO {q(op.role)}")
    if isinstance(op, RevokeOp):
        return (f"REVOKE {', '.join(op.privileges)} ON {on_clause(op.table, op.schema)} "
                f"FROM {q(op.role)}")
    if isinstance(op, AwsIamGrantOp):
        return f"AWS IAM GRANT {q(op.role)} TO {literal(op.arn)}"
    if isinstance(op, AwsIamRevokeOp):
        return f"AWS IAM REVOKE {q(op.role)} FROM {literal(op.arn)}"
    raise RolesError(f"no statement for {type(op).__name__}")


def parse_iam(text: str) -> tuple[bool, str, str] | None:
    """(is grant, role, arn) of an ``AWS IAM GRANT/REVOKE`` statement; None if it is not one."""
    from .sql import aws_iam

    try:
        found = aws_iam.parse_iam(text)
    except aws_iam.MalformedIamStatement as exc:
        raise RolesError(str(exc)) from None
    return None if found is None else (found.grant, found.role, found.arn)


# -- the desired-state SQL file ------------------------------------------------------------------


_ROLE_WORDS = re.compile(r"^\s*(CREATE\s+(ROLE|USER)|DROP\s+(ROLE|USER)|AWS\s+IAM|GRANT|"
                         r"REVOKE|ALTER\s+(ROLE|USER))\b", re.IGNORECASE)


@dataclass
class SqlRoles:
    """The role statements of a desired-state file, kept aside from the rest."""

    statements: list[tuple[int, str]] = field(default_factory=list)  # (offset, text)


def split_role_statements(statements: Sequence[tuple[int, str]]) -> tuple[
        list[tuple[int, str]], SqlRoles]:
    """``statements`` (offset, text) → (the ones to load, the role statements). A GRANT or
    REVOKE is a role statement when its grantees are roles the file creates or drops."""
    from pglast import ast

    from .sql import aws_iam

    declared_roles: set[str] = set()
    for _, text in statements:
        for stmt in _parse(text):
            if isinstance(stmt, ast.CreateRoleStmt) and stmt.role:
                declared_roles.add(stmt.role)
            elif isinstance(stmt, ast.DropRoleStmt):
                declared_roles.update(_role_names(stmt.roles or ()))
    load: list[tuple[int, str]] = []
    roles = SqlRoles()
    for offset, text in statements:
        if not _ROLE_WORDS.match(text):
            load.append((offset, text))
            continue
        if aws_iam.IAM_PREFIX.match(text):
            roles.statements.append((offset, text))
            continue
        parsed = _parse(text)
        stmt = parsed[0] if len(parsed) == 1 else None
        if isinstance(stmt, ast.GrantStmt):
            names = set(_role_names(stmt.grantees or ()))
            if names & declared_roles:
                roles.statements.append((offset, text))
                continue
        elif isinstance(stmt, (ast.CreateRoleStmt, ast.DropRoleStmt, ast.AlterRoleStmt,
                               ast.GrantRoleStmt)):
            roles.statements.append((offset, text))
            continue
        load.append((offset, text))
    return load, roles


def _parse(text: str) -> list[Any]:
    import pglast

    try:
        return [raw.stmt for raw in pglast.parse_sql(text)]
    except pglast.parser.ParseError:
        return []


def _role_names(specs: Iterable[Any]) -> list[str]:
    from pglast import ast
    from pglast.enums import RoleSpecType

    out = []
    for spec in specs:
        if isinstance(spec, ast.RoleSpec) and spec.roletype == RoleSpecType.ROLESPEC_CSTRING \
                and spec.rolename:
            out.append(spec.rolename)
        elif isinstance(spec, ast.RoleSpec):
            out.append("PUBLIC" if spec.roletype == RoleSpecType.ROLESPEC_PUBLIC
                       else str(getattr(spec.roletype, "name", spec.roletype)))
    return out


def spec_from_sql(roles: SqlRoles, tables_in_schema: Callable[[str], list[str]],
                  where: Callable[[int], str]) -> RoleSpec:
    """The declared state of the role statements, in file order (a REVOKE removes what a
    GRANT before it gave). ``tables_in_schema``: the desired tables and views of a schema (for
    ``ON ALL TABLES IN SCHEMA``); ``where(offset)``: ``file:line:col`` for messages."""
    spec = RoleSpec()
    for offset, text in roles.statements:
        try:
            _apply_statement(spec, text, tables_in_schema)
        except RolesError as exc:
            raise RolesError(f"{where(offset)}: {exc.message}", hint=exc.hint) from None
    for role, _ in sorted(spec.mappings) + sorted((p.role, "") for p in spec.privileges):
        if role not in spec.roles:
            hint = (f"add CREATE ROLE {role} WITH LOGIN" if role != "PUBLIC" else
                    "split the GRANT: one to the roles the file creates, one to PUBLIC")
            raise RolesError(f"{where(roles.statements[0][0])}: role {role!r} is granted "
                             "privileges or IAM mappings but the file does not create it",
                             hint=hint)
    return spec


def _apply_statement(spec: RoleSpec, text: str,
                     tables_in_schema: Callable[[str], list[str]]) -> None:
    from pglast import ast

    iam = parse_iam(text)
    if iam is not None:
        grant, role, arn = iam
        check_arn(arn)
        (spec.mappings.add if grant else spec.mappings.discard)((role, arn))
        return
    parsed = _parse(text)
    if len(parsed) != 1:
        raise RolesError("cannot read this role statement")
    stmt = parsed[0]
    if isinstance(stmt, ast.CreateRoleStmt):
        name = str(stmt.role or "")
        _check_name(name)
        login = getattr(stmt.stmt_type, "name", None) == "ROLESTMT_USER"
        for option in stmt.options or ():
            if option.defname == "canlogin":
                login = bool(option.arg.boolval) if option.arg is not None else True
            else:
                raise RolesError(f"CREATE ROLE {name}: option {option.defname!r} is not "
                                 "managed (DSQL roles authenticate with IAM: only LOGIN/"
                                 "NOLOGIN)")
        spec.roles[name] = login
        spec.dropped.discard(name)
    elif isinstance(stmt, ast.DropRoleStmt):
        for name in _role_names(stmt.roles or ()):
            _check_name(name)
            spec.roles.pop(name, None)
            spec.dropped.add(name)
            spec.privileges = {p for p in spec.privileges if p.role != name}
            spec.mappings = {m for m in spec.mappings if m[0] != name}
    elif isinstance(stmt, ast.GrantStmt):
        for privilege in _grant_privileges(stmt, tables_in_schema):
            (spec.privileges.add if stmt.is_grant else spec.privileges.discard)(privilege)
    else:
        raise RolesError(f"{type(stmt).__name__}: this role statement is not managed "
                         "(CREATE ROLE, DROP ROLE, GRANT/REVOKE on tables and schemas, "
                         "AWS IAM GRANT/REVOKE are)")


def _grant_privileges(stmt: ast.GrantStmt,
                      tables_in_schema: Callable[[str], list[str]]) -> list[Privilege]:
    from pglast.enums import GrantTargetType, ObjectType

    if stmt.grant_option:
        raise RolesError("WITH GRANT OPTION is not managed")
    if stmt.objtype == ObjectType.OBJECT_SCHEMA:
        kind = "schema"
    elif stmt.objtype == ObjectType.OBJECT_TABLE:
        kind = "table"
    else:
        what = str(getattr(stmt.objtype, "name", stmt.objtype)).removeprefix("OBJECT_").lower()
        raise RolesError(f"privileges on {what} objects are not managed (tables and schemas "
                         "are)")
    names = [str(getattr(p, "priv_name", "")) for p in stmt.privileges or ()]
    if any(getattr(p, "cols", None) for p in stmt.privileges or ()):
        raise RolesError("column privileges are not managed")
    privileges = expand_privileges(kind, names or ["ALL"])
    objects: list[tuple[str | None, str]] = []
    if kind == "schema":
        objects = [(None, str(o.sval)) for o in stmt.objects or ()]
    elif stmt.targtype == GrantTargetType.ACL_TARGET_ALL_IN_SCHEMA:
        for schema in (str(o.sval) for o in stmt.objects or ()):
            objects.extend((schema, t) for t in tables_in_schema(schema))
    elif stmt.targtype == GrantTargetType.ACL_TARGET_OBJECT:
        objects = [(o.schemaname or "public", str(o.relname)) for o in stmt.objects or ()]
    else:
        raise RolesError("ALTER DEFAULT PRIVILEGES is not managed")
    out: list[Privilege] = []
    for role in _role_names(stmt.grantees or ()):
        for owner, name in objects:
            out.extend(Privilege(role, kind, owner, name, p) for p in privileges)
    return out


def from_sql_file(metadata: Any, roles: SqlRoles, snapshot: Any, path: Any,
                  text: str) -> RoleSpec:
    """Declare on ``metadata`` the roles of a desired-state file's role statements;
    ``snapshot``: the file's database (for ``ON ALL TABLES IN SCHEMA``)."""

    def tables_in_schema(schema: str) -> list[str]:
        names = [t.name for t in snapshot.tables.values() if t.schema == schema]
        return sorted(names + [v.name for v in snapshot.views if v.schema == schema])

    def where(offset: int) -> str:
        before = text[:offset]
        line, col = before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1
        return f"{path}:{line}:{col}"

    spec = spec_from_sql(roles, tables_in_schema, where)
    spec.objects = {("table", t.schema, t.name) for t in snapshot.tables.values()}
    spec.objects |= {("table", v.schema, v.name) for v in snapshot.views}
    spec.objects |= {("schema", None, name) for name in getattr(snapshot, "schemas", ())}
    metadata.info[INFO_KEY] = spec
    return spec


# -- the live state --------------------------------------------------------------------------------


Fetch = Callable[[str, Mapping[str, Any]], list[tuple[Any, ...]]]

LIVE_ROLES_SQL = "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY(%(roles)s)"
LIVE_PRIVILEGES_SQL = """
SELECT r.rolname, 'table', n.nspname, c.relname, g.privilege_type
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL aclexplode(c.relacl) g
JOIN pg_roles r ON r.oid = g.grantee
WHERE c.relkind IN ('r', 'p', 'v') AND r.rolname = ANY(%(roles)s)
  AND n.nspname NOT IN ('sys', 'pg_catalog', 'information_schema')
UNION ALL
SELECT r.rolname, 'schema', NULL, n.nspname, g.privilege_type
FROM pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) g
JOIN pg_roles r ON r.oid = g.grantee
WHERE r.rolname = ANY(%(roles)s)
"""
HAS_MAPPINGS_SQL = "SELECT to_regclass('sys.iam_pg_role_mappings') IS NOT NULL"
LIVE_MAPPINGS_SQL = ("SELECT pg_role_name, arn FROM sys.iam_pg_role_mappings "
                     "WHERE pg_role_name = ANY(%(roles)s)")
#: what the role owns or is granted beyond tables and schemas (DROP ROLE would fail on it)
LIVE_DEPENDENCIES_SQL = """
SELECT r.rolname, d.deptype, d.classid::regclass::text,
       pg_describe_object(d.classid, d.objid, d.objsubid)
FROM pg_shdepend d JOIN pg_roles r ON r.oid = d.refobjid
WHERE d.refclassid = 'pg_authid'::regclass AND r.rolname = ANY(%(roles)s)
  AND d.dbid IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
  AND NOT (d.deptype = 'a' AND d.classid IN ('pg_class'::regclass, 'pg_namespace'::regclass)
           AND d.objsubid = 0)
  -- the local emulator's marker of a mapped role (see local/server_sql.py)
  AND d.objid IS DISTINCT FROM to_regclass('sys._iam_mapped')::oid
"""


@dataclass
class LiveRoles:
    roles: dict[str, bool]
    privileges: set[Privilege]
    mappings: set[tuple[str, str]]
    #: role → what it owns or is granted that the comparison does not manage
    dependencies: dict[str, list[str]] = field(default_factory=dict)


def read_live(fetch: Fetch, names: Iterable[str]) -> LiveRoles:
    """The live state of the roles ``names``."""
    params = {"roles": sorted(set(names))}
    roles = {str(n): bool(login) for n, login in fetch(LIVE_ROLES_SQL, params)}
    privileges = {Privilege(str(r), str(k), s, str(n), str(p))
                  for r, k, s, n, p in fetch(LIVE_PRIVILEGES_SQL, params)}
    mappings: set[tuple[str, str]] = set()
    if fetch(HAS_MAPPINGS_SQL, {})[0][0]:
        mappings = {(str(r), str(a)) for r, a in fetch(LIVE_MAPPINGS_SQL, params)}
    dependencies: dict[str, list[str]] = {}
    for role, _deptype, _class, what in fetch(LIVE_DEPENDENCIES_SQL, params):
        dependencies.setdefault(str(role), []).append(str(what))
    return LiveRoles(roles, privileges, mappings, dependencies)


def psycopg_fetch(conn: Any) -> Fetch:
    def fetch(sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        return list(conn.execute(sql, dict(params) or None).fetchall())
    return fetch


def sqlalchemy_fetch(conn: Any) -> Fetch:
    def fetch(sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in conn.exec_driver_sql(sql, dict(params) or ())]
    return fetch


# -- the comparison --------------------------------------------------------------------------------


def compare(spec: RoleSpec, live: LiveRoles, *,
            dropped_tables: Iterable[tuple[str, str]] = ()) -> list[RoleOp]:
    """The ops that make the live roles what ``spec`` declares, in the order DSQL needs.
    ``dropped_tables``: (schema, table) the same migration drops (their privileges go with
    them: nothing to revoke)."""
    gone = set(dropped_tables)
    creates: list[RoleOp] = []
    grants: list[RoleOp] = []
    revokes: list[RoleOp] = []
    drops: list[RoleOp] = []
    for name, login in sorted(spec.roles.items()):
        if name not in live.roles:
            creates.append(CreateRoleOp(name, login=login))
        elif live.roles[name] != login:
            have, want = _login_word(live.roles[name]), _login_word(login)
            raise RolesError(f"role {name!r} exists with {have}; the declaration says {want}",
                             hint=f"change it by hand (ALTER ROLE {name} WITH {want}) or "
                             "change the declaration")
    managed = set(spec.roles)
    for role, arn in sorted(spec.mappings - live.mappings):
        grants.append(AwsIamGrantOp(role, arn))
    grants.extend(_grouped(spec.privileges - live.privileges, GrantOp))
    stale = {p for p in live.privileges - spec.privileges
             if p.role in managed | spec.dropped and (p.schema, p.name) not in gone}
    revokes.extend(_grouped(stale, RevokeOp))
    for role, arn in sorted(live.mappings - spec.mappings):
        if role in managed | spec.dropped:
            revokes.append(AwsIamRevokeOp(role, arn))
    for name in sorted(spec.dropped & set(live.roles)):
        unmanaged = live.dependencies.get(name)
        if unmanaged:
            raise RolesError(
                f"role {name!r} cannot be dropped: it owns or is granted what this "
                f"migration does not manage ({'; '.join(sorted(unmanaged)[:5])})",
                hint="reassign or revoke those by hand first (DROP ROLE fails while anything "
                "depends on the role)")
        drops.append(DropRoleOp(name, login=live.roles[name]))
    return creates + grants + revokes + drops


def _login_word(login: bool) -> str:
    return "LOGIN" if login else "NOLOGIN"


def _grouped(privileges: Iterable[Privilege], cls: type[GrantOp] | type[RevokeOp],
             ) -> list[RoleOp]:
    """One statement per (role, object), its privileges in alphabetical order."""
    by_object: dict[tuple[str, str, str | None, str], list[str]] = {}
    for p in sorted(privileges):
        by_object.setdefault((p.role, p.kind, p.schema, p.name), []).append(p.privilege)
    out: list[RoleOp] = []
    for (role, kind, schema, name), names in sorted(by_object.items(),
                                                    key=lambda kv: (kv[0][1] != "schema",
                                                                    kv[0])):
        if kind == "schema":
            out.append(cls(role, names, schema=name))
        else:
            out.append(cls(role, names, table=name, schema=schema))
    return out


def live_of(fetch: Fetch, spec: RoleSpec) -> LiveRoles:
    return read_live(fetch, set(spec.roles) | spec.dropped)


# -- who may run them ------------------------------------------------------------------------------


CURRENT_USER_SQL = ("SELECT current_user, rolcreaterole FROM pg_roles "
                    "WHERE rolname = current_user")


def required(op: RoleOp) -> str:
    """``admin`` (IAM mappings: DSQL lets only admin run them) or ``createrole``."""
    return "admin" if isinstance(op, (AwsIamGrantOp, AwsIamRevokeOp)) else (
        "createrole" if isinstance(op, (CreateRoleOp, DropRoleOp)) else "")


def refusal(needs: Iterable[str], user: str, createrole: bool) -> str | None:
    """Why ``user`` may not run statements that need ``needs``; None if it may."""
    needs = set(needs)
    if "admin" in needs and user != ADMIN:
        return (f"this plan maps roles to IAM identities (AWS IAM GRANT/REVOKE), which only "
                f"the admin role may do on Aurora DSQL; connected as {user!r}")
    if "createrole" in needs and user != ADMIN and not createrole:
        return (f"this plan creates or drops roles, which needs admin (or CREATEROLE) on "
                f"Aurora DSQL; connected as {user!r}")
    return None


def check_connection(fetch: Fetch, needs: Iterable[str]) -> None:
    """Refuse (:class:`NotAdmin`) when the connection may not run what ``needs`` says."""
    needs = [n for n in needs if n]
    if not needs:
        return
    rows = fetch(CURRENT_USER_SQL, {})
    user, createrole = (str(rows[0][0]), bool(rows[0][1])) if rows else ("?", False)
    why = refusal(needs, user, createrole)
    if why is not None:
        raise NotAdmin(why + "; nothing was changed",
                       hint="connect as admin (dsql://admin@<endpoint>, a DbConnectAdmin "
                       "token) to apply it")


__all__ = ["ADMIN", "INFO_KEY", "LiveRoles", "NotAdmin", "Privilege", "Role", "RoleSpec",
           "RolesError", "SqlRoles", "check_arn", "check_connection", "compare",
           "declare_roles", "declared", "live_of", "parse_iam", "psycopg_fetch", "read_live",
           "refusal", "required", "spec_from_sql", "split_role_statements",
           "sqlalchemy_fetch", "statement"]


# -- Alembic's autogenerate ------------------------------------------------------------------------


def _spec_of(metadata: Any) -> RoleSpec | None:
    if isinstance(metadata, (list, tuple)):
        specs = [s for s in (declared(m) for m in metadata) if s is not None]
        if len(specs) > 1:
            raise RolesError("roles are declared on more than one MetaData: declare them on one")
        return specs[0] if specs else None
    return declared(metadata)


def _dropped_tables(operations: Iterable[Any]) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for operation in operations:
        if isinstance(operation, alembic_ops.DropTableOp):
            out.add((operation.schema or "public", operation.table_name))
        elif isinstance(operation, alembic_ops.OpContainer):
            out |= _dropped_tables(operation.ops)
    return out


@comparators.dispatch_for("schema", priority=DispatchPriority.LAST)
def compare_roles(autogen_context: Any, upgrade_ops: Any, schemas: Any) -> None:
    """Alembic comparator: the role ops of the roles the target metadata declares, after the
    table ops (a grant needs its table; a table dropped takes its privileges along)."""
    spec = _spec_of(autogen_context.metadata)
    if spec is None or autogen_context.connection is None:
        return
    fetch = sqlalchemy_fetch(autogen_context.connection)
    check_objects(spec, autogen_context.metadata, fetch)
    live = live_of(fetch, spec)
    upgrade_ops.ops.extend(compare(spec, live,
                                   dropped_tables=_dropped_tables(upgrade_ops.ops)))


OBJECT_EXISTS_SQL = ("SELECT CASE WHEN %(kind)s = 'schema' THEN to_regnamespace(%(name)s) "
                     "IS NOT NULL ELSE to_regclass(%(name)s) IS NOT NULL END")


def check_objects(spec: RoleSpec, metadata: Any, fetch: Fetch) -> None:
    """Every table and schema a privilege names is in the desired state or in the database:
    else the GRANT would fail part-way through the plan. Refused here, before anything."""
    known = set(spec.objects)
    for md in metadata if isinstance(metadata, (list, tuple)) else [metadata]:
        for table in getattr(md, "tables", {}).values():
            known.add(("table", table.schema or "public", table.name))
            known.add(("schema", None, table.schema or "public"))
    missing = []
    for kind, schema, name in sorted({(p.kind, p.schema, p.name) for p in spec.privileges}):
        if (kind, schema, name) in known:
            continue
        qualified = q(name) if kind == "schema" else f"{q(schema or 'public')}.{q(name)}"
        if not fetch(OBJECT_EXISTS_SQL, {"kind": kind, "name": qualified})[0][0]:
            missing.append(f"{kind} {qualified}")
    if missing:
        raise RolesError(f"privileges are granted on what neither the desired state nor the "
                         f"database has: {', '.join(missing)}",
                         hint="add it to the desired state, or correct the grant")
