"""The one definition of tenant isolation, shared by the lint rules and the audit (no database)."""

from __future__ import annotations

import pytest

from dsql_migrate.audit.tenancy import (
    ProblemKind,
    audit_tenancy,
    column_of_key,
    key_problem,
    selected,
    table_problem,
)
from dsql_migrate.catalog import Column, Constraint, Index, Snapshot, Table
from dsql_migrate.lint import LintSettings, lint_script
from dsql_migrate.profiles import get_profile


def test_table_problem() -> None:
    assert table_problem("orders", ["tenant_id", "id"], "tenant_id") is None
    problem = table_problem("orders", ["id"], "tenant_id")
    assert problem is not None and problem.kind is ProblemKind.MISSING_COLUMN
    assert problem.message == "table orders has no tenant_id column"
    assert table_problem("orders", ["org"], "org") is None  # the column name is a parameter


@pytest.mark.parametrize(("keys", "ok"), [
    (["tenant_id"], True),
    (["tenant_id", "created_at"], True),
    (["created_at", "tenant_id"], False),  # present but not first: no use to tenant queries
    ([None, "tenant_id"], False),  # an expression first
    ([], False),
])
def test_key_problem(keys: list[str | None], ok: bool) -> None:
    problem = key_problem("index ix on t", keys, "tenant_id")
    assert (problem is None) is ok
    if problem is not None:
        assert problem.kind is ProblemKind.KEY_NOT_LEADING
        assert problem.message == "index ix on t does not lead with tenant_id"


@pytest.mark.parametrize(("key", "column"), [
    ("tenant_id", "tenant_id"), ('"Tenant"', "Tenant"), ('"a""b"', 'a"b'),
    ("lower(email)", None), ("(a + b)", None),
])
def test_column_of_key(key: str, column: str | None) -> None:
    assert column_of_key(key) == column


def test_selected_by_schema_and_pattern() -> None:
    assert selected("orders", "public", (), ())
    assert not selected("orders", "public", ("app",), ())
    assert not selected("alembic_version", "public", (), ("alembic_version",))
    assert not selected("audit_log", "app", (), ("app.audit_*",))
    assert selected("audit_log", "public", (), ("app.audit_*",))


def _table(name: str, columns: list[str], pk: tuple[str, ...],
           indexes: tuple[Index, ...] = ()) -> Table:
    pk_index = Index(name=f"{name}_pkey", unique=True, keys=pk, constraint=f"{name}_pkey")
    return Table(schema="public", name=name,
                 columns=tuple(Column(n, "uuid" if n == "tenant_id" else "bigint", False)
                               for n in columns),
                 constraints=(Constraint(f"{name}_pkey", "primary_key", pk, "PRIMARY KEY"),),
                 indexes=(pk_index, *indexes))


def test_audit_reports_each_table_and_key_with_a_fix() -> None:
    good = _table("items", ["tenant_id", "id"], ("tenant_id", "id"), (
        Index("ix_items_tenant_sku", False, ("tenant_id", "sku")),))
    bad_index = _table("carts", ["tenant_id", "id", "sku"], ("tenant_id", "id"), (
        Index("ix_carts_sku", False, ("sku", "tenant_id"), include=("id",)),
        Index("ux_carts_sku", True, ("sku",)),))
    bad_pk = _table("users", ["tenant_id", "id"], ("id",))
    missing = _table("orders", ["id"], ("id",))
    version = _table("alembic_version", ["version_num"], ("version_num",))
    snap = Snapshot(tables={t.qualified: t for t in (good, bad_index, bad_pk, missing, version)})

    report = audit_tenancy(snap, "tenant_id")
    assert not report.ok
    assert report.skipped == ("public.alembic_version",)
    assert "public.items" in report.tables
    found = {(f.table, f.kind, f.name) for f in report.findings}
    assert found == {
        ("public.carts", "index", "ix_carts_sku"),
        ("public.carts", "index", "ux_carts_sku"),
        ("public.users", "primary_key", "users_pkey"),
        ("public.orders", "missing_column", None),
        ("public.orders", "primary_key", "orders_pkey"),
    }
    fixes = {(f.table, f.name): f.fix for f in report.findings}
    assert fixes[("public.carts", "ix_carts_sku")][:2] == (
        "CREATE INDEX ASYNC ix_carts_sku_tenant ON carts (tenant_id, sku) INCLUDE (id);",
        "DROP INDEX ix_carts_sku;  -- once the new index is valid")
    unique = fixes[("public.carts", "ux_carts_sku")]
    assert unique[0] == "CREATE UNIQUE INDEX ASYNC ux_carts_sku_tenant ON carts (tenant_id, sku);"
    assert any("weaker rule" in line for line in unique)
    assert "PRIMARY KEY (tenant_id, id)" in fixes[("public.users", "users_pkey")][0]
    # the missing column's type is the one the other tables use
    assert fixes[("public.orders", None)][0] == "ALTER TABLE orders ADD COLUMN tenant_id uuid;"


def test_audit_all_good_and_filters() -> None:
    good = _table("items", ["tenant_id", "id"], ("tenant_id", "id"))
    other = _table("log", ["id"], ("id",))
    snap = Snapshot(tables={t.qualified: t for t in (good, other)})
    assert audit_tenancy(snap, exclude=("log",)).ok
    assert not audit_tenancy(snap).ok
    assert audit_tenancy(snap, schemas=("nothing",)).notes == (
        "no table matched: nothing was audited",)


@pytest.mark.parametrize(("sql", "rules"), [
    ("CREATE TABLE t (id bigint PRIMARY KEY);", {"tenant_id_missing"}),
    ("CREATE TABLE t (tenant_id uuid, id bigint PRIMARY KEY);", {"tenant_id_index_order"}),
    ("CREATE TABLE t (tenant_id uuid, id bigint, PRIMARY KEY (tenant_id, id));", set()),
    ("CREATE INDEX ASYNC ix ON t (a, tenant_id);", {"tenant_id_index_order"}),
    ("CREATE INDEX ASYNC ix ON t (tenant_id, a);", set()),
])
def test_lint_rules_apply_the_same_definition(sql: str, rules: set[str]) -> None:
    settings = LintSettings.build(get_profile("current"),
                                  enable=["tenant_id_missing", "tenant_id_index_order"])
    result = lint_script(sql, settings)
    assert {d.rule for d in result.diagnostics} == rules
