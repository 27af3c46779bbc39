"""Roles in a declarative plan, end to end on the emulator: planned from a desired-state file,
applied, compared again (nothing left to do), changed, and refused on a connection that is not
admin."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from _support import PrivateTarget, run

pytestmark = pytest.mark.integration

ARN = "arn:aws:iam::111122223333:role/AppReadOnly"
RW_ARN = "arn:aws:iam::111122223333:role/AppReadWrite"

DOCS = Path(__file__).parents[2] / "docs" / "roles.md"


def docs_block(language: str) -> str:
    """The first ``language`` code block of docs/roles.md (its example is this test's)."""
    text = DOCS.read_text()
    body = text.split(f"```{language}\n", 1)[1].split("```", 1)[0]
    return "\n".join(line for line in body.splitlines() if not line.startswith("-- "))


DESIRED = docs_block("sql")


# app_rw goes: its IAM mapping and privileges are revoked first, then the role is dropped
CHANGED = f"""
CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(12, 2));
CREATE SCHEMA billing;
CREATE TABLE billing.invoices (id bigint PRIMARY KEY, order_id bigint);

CREATE ROLE app_ro WITH LOGIN;
AWS IAM GRANT app_ro TO '{ARN}';
GRANT USAGE ON SCHEMA billing TO app_ro;
GRANT SELECT, INSERT ON orders TO app_ro;
DROP ROLE app_rw;
"""


@pytest.fixture(scope="module")
def private_url(private_target: PrivateTarget) -> Iterator[str]:
    """A target of its own: roles are global to a server, and a declarative plan owns the
    whole schema it is compared with."""
    with private_target("roles") as instance:
        yield instance.url()


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


MAPPINGS = "SELECT pg_role_name, arn FROM sys.iam_pg_role_mappings ORDER BY 1"
PRIVILEGES = """
SELECT grantee, table_schema || '.' || table_name,
       string_agg(privilege_type, ',' ORDER BY privilege_type)
FROM information_schema.role_table_grants WHERE grantee LIKE 'app_%' GROUP BY 1, 2 ORDER BY 1, 2
"""
SCHEMA_USAGE = """
SELECT r.rolname FROM pg_roles r WHERE r.rolname LIKE 'app_%'
  AND has_schema_privilege(r.rolname, 'billing', 'USAGE') ORDER BY 1
"""


def test_declared_roles_planned_applied_and_converged(private_url: str, workdir: Path) -> None:
    (workdir / "desired.sql").write_text(DESIRED)
    code, _, err = run("plan", "--url", private_url, "--target", "desired.sql",
                       "--format", "json", "-o", "plan.json")
    assert code == 0, err
    plan = json.loads((workdir / "plan.json").read_text())
    sql = [s for step in plan["steps"] for s in step["sql"]]
    assert all(len(step["sql"]) == 1 for step in plan["steps"])
    role_sql = [s for s in sql if "ROLE" in s or "GRANT" in s]
    assert role_sql == docs_block("text").splitlines()  # what docs/roles.md shows
    assert role_sql == [
        "CREATE ROLE app_ro WITH LOGIN",
        "CREATE ROLE app_rw WITH LOGIN",
        f"AWS IAM GRANT app_ro TO '{ARN}'",
        f"AWS IAM GRANT app_rw TO '{RW_ARN}'",
        "GRANT USAGE ON SCHEMA billing TO app_ro",
        "GRANT USAGE ON SCHEMA billing TO app_rw",
        "GRANT SELECT ON TABLE billing.invoices TO app_ro",
        "GRANT SELECT ON TABLE public.orders TO app_ro",
        "GRANT DELETE, INSERT, SELECT, UPDATE ON TABLE billing.invoices TO app_rw",
        "GRANT DELETE, INSERT, SELECT, UPDATE ON TABLE public.orders TO app_rw",
    ]
    # the tables are created before the grants on them
    assert sql.index(next(s for s in sql if s.startswith("CREATE TABLE orders"))) < \
        sql.index("GRANT SELECT ON TABLE public.orders TO app_ro")

    code, _, err = run("apply", "plan.json", "--url", private_url)
    assert code == 0, err
    assert query(private_url, MAPPINGS) == [("app_ro", ARN), ("app_rw", RW_ARN)]
    assert query(private_url, PRIVILEGES) == [
        ("app_ro", "billing.invoices", "SELECT"), ("app_ro", "public.orders", "SELECT"),
        ("app_rw", "billing.invoices", "DELETE,INSERT,SELECT,UPDATE"),
        ("app_rw", "public.orders", "DELETE,INSERT,SELECT,UPDATE")]
    assert query(private_url, SCHEMA_USAGE) == [("app_ro",), ("app_rw",)]
    # the emulator lets the roles in (as an IAM-mapped role would be on DSQL)
    reader = private_url.replace("//admin@", "//app_ro@", 1)
    assert query(reader, "SELECT count(*) FROM orders") == [(0,)]

    code, _, err = run("plan", "--url", private_url, "--target", "desired.sql", "--check")
    assert code == 0, err  # converged: nothing left to do

    # changed: app_rw dropped (IAM revoke and REVOKEs before DROP ROLE), app_ro may INSERT
    (workdir / "desired.sql").write_text(CHANGED)
    code, _, err = run("plan", "--url", private_url, "--target", "desired.sql",
                       "--format", "json", "-o", "plan2.json")
    assert code == 0, err
    steps = json.loads((workdir / "plan2.json").read_text())["steps"]
    assert [s["sql"][0] for s in steps] == [
        "GRANT INSERT ON TABLE public.orders TO app_ro",
        "REVOKE USAGE ON SCHEMA billing FROM app_rw",
        "REVOKE SELECT ON TABLE billing.invoices FROM app_ro",
        "REVOKE DELETE, INSERT, SELECT, UPDATE ON TABLE billing.invoices FROM app_rw",
        "REVOKE DELETE, INSERT, SELECT, UPDATE ON TABLE public.orders FROM app_rw",
        f"AWS IAM REVOKE app_rw FROM '{RW_ARN}'",
        "DROP ROLE app_rw",
    ]
    code, _, err = run("apply", "plan2.json", "--url", private_url, "--allow-destructive")
    assert code == 0, err
    assert query(private_url, MAPPINGS) == [("app_ro", ARN)]
    assert query(private_url, "SELECT count(*) FROM pg_roles WHERE rolname = 'app_rw'") == [(0,)]
    assert query(private_url, PRIVILEGES) == [("app_ro", "public.orders", "INSERT,SELECT")]
    code, _, err = run("plan", "--url", private_url, "--target", "desired.sql", "--check")
    assert code == 0, err


def test_not_admin_is_refused_before_anything_changes(private_url: str, workdir: Path) -> None:
    with psycopg.connect(private_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS migrator")
        conn.execute("CREATE ROLE migrator WITH LOGIN CREATEROLE")
        conn.execute("GRANT CREATE ON DATABASE postgres TO migrator")
    (workdir / "desired.sql").write_text(
        "CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(12, 2));\n"
        "CREATE SCHEMA billing;\n"
        "CREATE TABLE billing.invoices (id bigint PRIMARY KEY, order_id bigint);\n"
        "CREATE ROLE app_ro WITH LOGIN;\n"
        f"AWS IAM GRANT app_ro TO '{ARN}';\n"
        "GRANT USAGE ON SCHEMA billing TO app_ro;\n"
        "GRANT SELECT, INSERT ON orders TO app_ro;\n"
        "CREATE ROLE app_audit WITH NOLOGIN;\n"
        f"AWS IAM GRANT app_audit TO '{RW_ARN}';\n")
    code, _, err = run("plan", "--url", private_url, "--target", "desired.sql",
                       "--format", "json", "-o", "plan3.json")
    assert code == 0, err
    migrator = private_url.replace("//admin@", "//migrator@", 1)
    before = query(private_url, "SELECT rolname FROM pg_roles ORDER BY 1")
    code, _, err = run("apply", "plan3.json", "--url", migrator)
    assert code == 5, err
    assert "only the admin role may do on Aurora DSQL" in err
    assert "connected as 'migrator'" in err and "nothing was changed" in err
    assert query(private_url, "SELECT rolname FROM pg_roles ORDER BY 1") == before
    assert query(private_url, "SELECT count(*) FROM pg_namespace "
                 "WHERE nspowner = 'migrator'::regrole") == [(0,)]
    code, _, err = run("apply", "plan3.json", "--url", private_url)
    assert code == 0, err
    assert ("app_audit", RW_ARN) in query(private_url, MAPPINGS)


MODEL = f'''
import sqlalchemy as sa
from dsql_migrate.roles import Role, declare_roles

metadata = sa.MetaData()
sa.Table("orders", metadata,
         sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
         sa.Column("total", sa.Numeric(12, 2)))
sa.Table("invoices", metadata,
         sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
         sa.Column("order_id", sa.BigInteger), schema="billing")
declare_roles(metadata, Role("app_model", iam=["{RW_ARN}"], schemas={{"billing": ["USAGE"]}},
                             tables={{"billing.invoices": ["SELECT"]}}))
'''


def test_roles_declared_in_a_model(private_url: str, workdir: Path) -> None:
    (workdir / "models_roles.py").write_text(MODEL)
    code, _, err = run("plan", "--url", private_url, "--target", "models_roles:metadata",
                       "--format", "json", "-o", "plan4.json")
    assert code == 0, err
    steps = json.loads((workdir / "plan4.json").read_text())["steps"]
    assert [s["sql"][0] for s in steps] == [
        "CREATE ROLE app_model WITH LOGIN",
        f"AWS IAM GRANT app_model TO '{RW_ARN}'",
        "GRANT USAGE ON SCHEMA billing TO app_model",
        "GRANT SELECT ON TABLE billing.invoices TO app_model"]
    code, _, err = run("apply", "plan4.json", "--url", private_url)
    assert code == 0, err
    code, _, err = run("plan", "--url", private_url, "--target", "models_roles:metadata",
                       "--check")
    assert code == 0, err
    assert ("app_model", RW_ARN) in query(private_url, MAPPINGS)
