"""``dsql-migrate audit tenancy`` on the emulator (both profiles), in a schema of its own so the
session's other tables stay out of it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from dsql_migrate.cli import main

pytestmark = pytest.mark.integration


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output + result.stderr, result.stderr
    return result.exit_code, result.stdout, result.stderr


SCHEMA_SQL = [
    "CREATE TABLE {s}.good (tenant_id uuid NOT NULL, id bigint, sku text, "
    "PRIMARY KEY (tenant_id, id))",
    "CREATE INDEX ASYNC ix_good_sku ON {s}.good (tenant_id, sku)",
    "CREATE TABLE {s}.orders (id bigint PRIMARY KEY, total int)",
    "CREATE TABLE {s}.carts (tenant_id uuid NOT NULL, id bigint, sku text, "
    "PRIMARY KEY (tenant_id, id))",
    "CREATE INDEX ASYNC ix_carts_sku ON {s}.carts (sku, tenant_id)",
]


@pytest.fixture(params=["current", "classic"])
def schema(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    url = request.getfixturevalue("dsql_url" if request.param == "current" else "classic_url")
    name = f"tn_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
        for statement in SCHEMA_SQL:
            cur = conn.execute(statement.format(s=name))
            if "ASYNC" in statement:  # wait for the build: the audit reads finished indexes
                job = cur.fetchone()
                assert job is not None
                conn.execute("CALL sys.wait_for_job(%s)", (job[0],))
    try:
        yield url, name
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            for table in ("good", "orders", "carts"):
                conn.execute(f"DROP TABLE {name}.{table}")
            conn.execute(f"DROP SCHEMA {name}")


def test_findings_per_table_and_index(schema: tuple[str, str], workdir: Path) -> None:
    url, name = schema
    code, out, err = run("audit", "tenancy", "--url", url, "--column", "tenant_id",
                         "--schema", name, "--format", "json")
    assert code == 1, err
    report = json.loads(out)
    assert report["tables"] == [f"{name}.carts", f"{name}.good", f"{name}.orders"]
    found = {(f["table"], f["kind"], f["name"]): f["fix"] for f in report["findings"]}
    assert set(found) == {
        (f"{name}.orders", "missing_column", None),
        (f"{name}.orders", "primary_key", "orders_pkey"),
        (f"{name}.carts", "index", "ix_carts_sku"),
    }
    assert found[(f"{name}.carts", "index", "ix_carts_sku")][:2] == [
        f"CREATE INDEX ASYNC ix_carts_sku_tenant ON {name}.carts (tenant_id, sku);",
        f"DROP INDEX {name}.ix_carts_sku;  -- once the new index is valid"]
    assert found[(f"{name}.orders", "missing_column", None)][0] == (
        f"ALTER TABLE {name}.orders ADD COLUMN tenant_id uuid;")

    code, out, _ = run("audit", "tenancy", "--url", url, "--schema", name)
    assert code == 1
    assert f"index ix_carts_sku on {name}.carts does not lead with tenant_id" in out
    assert "## Fixes" in out and "```sql" in out


def test_fix_statement_is_legal_and_then_all_good(schema: tuple[str, str],
                                                  workdir: Path) -> None:
    url, name = schema
    code, out, _ = run("audit", "tenancy", "--url", url, "--schema", name, "--format", "json")
    fix = next(f["fix"] for f in json.loads(out)["findings"] if f["name"] == "ix_carts_sku")
    with psycopg.connect(url, autocommit=True) as conn:  # the suggested fix, as DSQL takes it
        job = conn.execute(fix[0]).fetchone()
        assert job is not None
        conn.execute("CALL sys.wait_for_job(%s)", (job[0],))
        conn.execute(fix[1].split(";")[0])
    code, out, err = run("audit", "tenancy", "--url", url, "--schema", name,
                         "--exclude", "orders")
    assert code == 0, out + err
    assert "2 table(s) audited · every table has it and every key leads with it" in out


def test_column_from_lint_config_and_usage_errors(schema: tuple[str, str],
                                                  workdir: Path) -> None:
    url, name = schema
    (workdir / "dsql-migrate.toml").write_text('[lint]\ntenant_column = "sku"\n')
    code, out, _ = run("audit", "tenancy", "--url", url, "--schema", name, "--format", "json")
    assert code == 1 and json.loads(out)["column"] == "sku"
    code, _, err = run("audit", "tenancy", "--url", url, "--schema", "no_such_schema_x")
    assert code == 2 and "no schema no_such_schema_x" in err
