"""Roles in migrations without a database: reading the declarations, comparing them with a
live state, ordering the ops, one statement per step, the promise, and who may run them."""

from __future__ import annotations

import types
from typing import Any

import pytest
import sqlalchemy as sa

from dsql_migrate import roles
from dsql_migrate.catalog import Column, Grant, Snapshot, Table
from dsql_migrate.ops import (
    AwsIamGrantOp,
    AwsIamRevokeOp,
    CreateRoleOp,
    DropRoleOp,
    GrantOp,
    RevokeOp,
)
from dsql_migrate.plan import StepKind
from dsql_migrate.planner import plan
from dsql_migrate.profiles import CURRENT
from dsql_migrate.roles import LiveRoles, Privilege, Role, RolesError

ARN = "arn:aws:iam::111122223333:role/AppReadOnly"
OLD_ARN = "arn:aws:iam::111122223333:role/Legacy"

DESIRED = f"""
CREATE TABLE orders (id bigint PRIMARY KEY);
CREATE SCHEMA billing;
CREATE TABLE billing.invoices (id bigint PRIMARY KEY);
CREATE ROLE app_ro WITH LOGIN;
CREATE ROLE app_rw WITH LOGIN;
AWS IAM GRANT app_ro TO '{ARN}';
GRANT USAGE ON SCHEMA billing TO app_ro, app_rw;
GRANT SELECT ON orders TO app_ro;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA billing TO app_rw;
GRANT ALL ON orders TO app_rw;
REVOKE TRUNCATE, TRIGGER, REFERENCES ON orders FROM app_rw;
DROP ROLE IF EXISTS legacy;
"""


def statements(text: str) -> list[tuple[int, str]]:
    out, offset = [], 0
    for part in text.split(";"):
        if part.strip():
            out.append((offset + len(part) - len(part.lstrip()), part.strip()))
        offset += len(part) + 1
    return out


def spec_of(text: str) -> tuple[list[str], roles.RoleSpec]:
    load, found = roles.split_role_statements(statements(text))
    snapshot = types.SimpleNamespace(
        tables={"billing.invoices": types.SimpleNamespace(schema="billing", name="invoices")},
        views=())
    metadata = sa.MetaData()
    spec = roles.from_sql_file(metadata, found, snapshot, "desired.sql", text)
    assert roles.declared(metadata) is spec
    return [t for _, t in load], spec


def sql_of(ops: list[Any]) -> list[str]:
    return [roles.statement(op) for op in ops]


def test_role_statements_are_kept_out_of_the_loaded_file() -> None:
    loaded, spec = spec_of(DESIRED + "GRANT SELECT ON orders TO PUBLIC;")
    assert loaded == ["CREATE TABLE orders (id bigint PRIMARY KEY)", "CREATE SCHEMA billing",
                      "CREATE TABLE billing.invoices (id bigint PRIMARY KEY)",
                      "GRANT SELECT ON orders TO PUBLIC"]  # PUBLIC is not a managed role
    assert spec.roles == {"app_ro": True, "app_rw": True}
    assert spec.mappings == {("app_ro", ARN)}
    assert spec.dropped == {"legacy"}
    rw_orders = {p.privilege for p in spec.privileges
                 if p.role == "app_rw" and p.name == "orders"}
    assert rw_orders == {"DELETE", "INSERT", "SELECT", "UPDATE"}  # ALL minus the REVOKE


def test_a_new_state_in_dsql_order() -> None:
    _, spec = spec_of(DESIRED)
    live = LiveRoles(
        roles={"legacy": True},
        privileges={Privilege("legacy", "table", "public", "orders", "SELECT")},
        mappings={("legacy", OLD_ARN)})
    assert sql_of(roles.compare(spec, live)) == [
        "CREATE ROLE app_ro WITH LOGIN",
        "CREATE ROLE app_rw WITH LOGIN",
        f"AWS IAM GRANT app_ro TO '{ARN}'",
        "GRANT USAGE ON SCHEMA billing TO app_ro",
        "GRANT USAGE ON SCHEMA billing TO app_rw",
        "GRANT SELECT ON TABLE public.orders TO app_ro",
        "GRANT DELETE, INSERT, SELECT, UPDATE ON TABLE billing.invoices TO app_rw",
        "GRANT DELETE, INSERT, SELECT, UPDATE ON TABLE public.orders TO app_rw",
        # IAM revoke before DROP ROLE: a mapped role cannot be dropped
        "REVOKE SELECT ON TABLE public.orders FROM legacy",
        f"AWS IAM REVOKE legacy FROM '{OLD_ARN}'",
        "DROP ROLE legacy",
    ]


def test_in_step_nothing_to_do_and_only_the_difference() -> None:
    _, spec = spec_of(DESIRED)
    live = LiveRoles(roles={"app_ro": True, "app_rw": True},
                     privileges=set(spec.privileges), mappings=set(spec.mappings))
    assert roles.compare(spec, live) == []
    live.privileges.add(Privilege("app_ro", "table", "public", "orders", "DELETE"))
    live.privileges.add(Privilege("other", "table", "public", "orders", "DELETE"))
    live.mappings.add(("app_ro", OLD_ARN))
    live.mappings.discard(("app_ro", ARN))
    assert sql_of(roles.compare(spec, live)) == [
        f"AWS IAM GRANT app_ro TO '{ARN}'",
        "REVOKE DELETE ON TABLE public.orders FROM app_ro",  # not other's: not managed
        f"AWS IAM REVOKE app_ro FROM '{OLD_ARN}'",
    ]


def test_privileges_on_a_dropped_table_are_not_revoked() -> None:
    spec = roles.RoleSpec(dropped={"legacy"})
    live = LiveRoles(roles={"legacy": True},
                     privileges={Privilege("legacy", "table", "public", "gone", "SELECT")},
                     mappings=set())
    assert sql_of(roles.compare(spec, live, dropped_tables={("public", "gone")})) == [
        "DROP ROLE legacy"]


def test_a_role_with_unmanaged_dependencies_is_not_dropped() -> None:
    spec = roles.RoleSpec(dropped={"legacy"})
    live = LiveRoles(roles={"legacy": True}, privileges=set(), mappings=set(),
                     dependencies={"legacy": ["function f()"]})
    with pytest.raises(RolesError, match=r"cannot be dropped.*function f"):
        roles.compare(spec, live)


@pytest.mark.parametrize(("text", "message"), [
    ("CREATE ROLE admin WITH LOGIN;", "cannot be managed"),
    ("CREATE ROLE x WITH PASSWORD 'p';", "option 'password' is not managed"),
    ("CREATE ROLE x; GRANT SELECT ON orders TO x WITH GRANT OPTION;", "GRANT OPTION"),
    ("CREATE ROLE x; GRANT SELECT (id) ON orders TO x;", "column privileges"),
    ("CREATE ROLE x; GRANT EXECUTE ON FUNCTION f() TO x;", "function objects"),
    ("CREATE ROLE x; AWS IAM GRANT x TO 'not-an-arn';", "is not an IAM role or user ARN"),
    ("CREATE ROLE x; AWS IAM GRANT x FROM 'arn:aws:iam::111122223333:role/a';", "takes TO"),
    ("AWS IAM GRANT y TO 'arn:aws:iam::111122223333:role/a';", "does not create it"),
    ("CREATE ROLE x; GRANT x TO y;", "GrantRoleStmt"),
    ("CREATE ROLE x; GRANT SELECT ON orders TO x, PUBLIC;", "'PUBLIC' is granted"),
    ("CREATE ROLE x; ALTER ROLE x WITH NOLOGIN;", "AlterRoleStmt"),
])
def test_what_is_not_managed_is_said(text: str, message: str) -> None:
    with pytest.raises(RolesError, match=message) as info:
        spec_of(text)
    assert info.value.message.startswith("desired.sql:")


def test_declared_in_a_model() -> None:
    metadata = sa.MetaData()
    roles.declare_roles(metadata, Role("app_ro", iam=[ARN], schemas={"public": ["USAGE"]},
                                       tables={"orders": ["select"], "billing.invoices": ["ALL"]}),
                        drop=["legacy"])
    spec = roles.declared(metadata)
    assert spec is not None
    assert Privilege("app_ro", "table", "billing", "invoices", "TRUNCATE") in spec.privileges
    assert Privilege("app_ro", "table", "public", "orders", "SELECT") in spec.privileges
    assert Privilege("app_ro", "schema", None, "public", "USAGE") in spec.privileges
    with pytest.raises(RolesError, match="not a privilege"):
        roles.declare_roles(sa.MetaData(), Role("x", tables={"t": ["SELEKT"]}))
    with pytest.raises(RolesError, match="declared and dropped"):
        roles.declare_roles(sa.MetaData(), Role("x"), drop=["x"])


def _live() -> Snapshot:
    orders = Table(schema="public", name="orders",
                   columns=(Column(name="id", type="bigint", nullable=False, position=1),),
                   grants=(Grant(grantee="legacy", privilege="SELECT"),))
    return Snapshot(tables={"public.orders": orders})


def test_each_op_is_one_step_and_the_promise_carries_the_grants() -> None:
    op_list = [CreateRoleOp("app"), AwsIamGrantOp("app", ARN),
               GrantOp("app", ["SELECT", "INSERT"], table="orders"),
               RevokeOp("legacy", ["SELECT"], table="orders"),
               GrantOp("app", ["USAGE"], schema="public"),
               AwsIamRevokeOp("legacy", OLD_ARN), DropRoleOp("legacy")]
    result = plan(op_list, _live(), sa.MetaData(), CURRENT)
    assert [len(s.sql) for s in result.steps] == [1] * 7
    assert all(s.kind == StepKind.DDL for s in result.steps)
    assert [s.details.get("requires") for s in result.steps] == [
        "createrole", "admin", None, None, None, "admin", "createrole"]
    assert [s.destructive for s in result.steps] == [False] * 5 + [True, True]
    assert result.premise is not None and result.promise is not None
    assert result.premise["public.orders"]["grants"] == [
        {"column": None, "grantable": False, "grantee": "legacy", "privilege": "SELECT"}]
    assert result.promise["public.orders"]["grants"] == [
        {"column": None, "grantable": False, "grantee": "app", "privilege": "INSERT"},
        {"column": None, "grantable": False, "grantee": "app", "privilege": "SELECT"}]
    assert not any("not checked" in w for w in result.warnings)


def test_reverse_ops() -> None:
    assert CreateRoleOp("a", login=False).reverse() == DropRoleOp("a", login=False)
    assert GrantOp("a", "select", table="t").reverse() == RevokeOp("a", ["SELECT"], table="t")
    assert AwsIamGrantOp("a", ARN).reverse() == AwsIamRevokeOp("a", ARN)


@pytest.mark.parametrize(("needs", "user", "createrole", "refused"), [
    ({"admin"}, "admin", True, None),
    ({"admin"}, "migrator", True, "only the admin role may"),
    ({"createrole"}, "migrator", True, None),
    ({"createrole"}, "migrator", False, "needs admin"),
    (set(), "anyone", False, None),
])
def test_who_may_run_them(needs: set[str], user: str, createrole: bool,
                          refused: str | None) -> None:
    why = roles.refusal(needs, user, createrole)
    assert (why is None) if refused is None else (why is not None and refused in why)


def test_a_grant_on_what_does_not_exist_is_refused_before_planning() -> None:
    metadata = sa.MetaData()
    sa.Table("orders", metadata, sa.Column("id", sa.BigInteger, primary_key=True))
    roles.declare_roles(metadata, Role("app", schemas={"public": ["USAGE"], "nope": ["USAGE"]},
                                       tables={"orders": ["SELECT"], "live_only": ["SELECT"],
                                               "billing.missing": ["SELECT"]}))
    spec = roles.declared(metadata)
    assert spec is not None
    asked: list[dict[str, Any]] = []

    def fetch(sql: str, params: Any) -> list[tuple[Any, ...]]:
        asked.append(dict(params))
        return [(params["name"] == "public.live_only",)]

    with pytest.raises(RolesError, match=r"has: schema nope, table billing\.missing\n"):
        roles.check_objects(spec, metadata, fetch)
    # what the model has is not asked of the database
    assert {a["name"] for a in asked} == {"nope", "public.live_only", "billing.missing"}


def test_the_guard_knows_the_tables_the_plan_grants_on() -> None:
    from dsql_migrate.runner.guard import _tables_granted_by_steps

    result = plan([GrantOp("app", ["SELECT"], table="Orders", schema="billing"),
                   RevokeOp("app", ["SELECT"], table="orders"),
                   GrantOp("app", ["USAGE"], schema="public")],
                  _live(), sa.MetaData(), CURRENT)
    assert _tables_granted_by_steps(result) == {("billing", "Orders"), ("public", "orders")}
