"""``dsql-migrate audit references`` on the emulator, both profiles: orphans found page by page,
NULL keys left alone, composite keys, and a clean relationship's plan applied end to end."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from dsql_migrate.cli import main
from dsql_migrate.plan import Plan

pytestmark = pytest.mark.integration


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output + result.stderr, result.stderr
    return result.exit_code, result.stdout, result.stderr


def execute(url: str, *statements: str) -> None:
    """Each statement in its own transaction (DSQL: one DDL per transaction)."""
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def names() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return f"par_{suffix}", f"chi_{suffix}"


def make_pair(url: str, orphans: list[int], rows: int = 130) -> tuple[str, str]:
    """A parent with ids 1..20 and a child of ``rows`` rows: every 7th has a NULL parent, the
    ids in ``orphans`` point to parent 999 (absent), the rest to a real parent."""
    parent, child = names()
    execute(url,
            f"CREATE TABLE {parent} (id bigint PRIMARY KEY, name text)",
            f"CREATE TABLE {child} (id bigint PRIMARY KEY, parent_id bigint)",
            f"INSERT INTO {parent} SELECT g, 'p' || g FROM generate_series(1, 20) g",
            f"INSERT INTO {child} SELECT g, CASE WHEN g % 7 = 0 THEN NULL "
            f"WHEN g = ANY(ARRAY{orphans or [0]}::bigint[]) THEN 999 ELSE g % 20 + 1 END "
            f"FROM generate_series(1, {rows}) g")
    return parent, child


def test_orphans_found_across_pages_and_nulls_are_not_orphans(dsql_url: str,
                                                              workdir: Path) -> None:
    parent, child = make_pair(dsql_url, orphans=[10, 75, 129])
    code, out, err = run("audit", "references", "--url", dsql_url, "--profile", "current",
                         "--relationship", f"{child}.parent_id={parent}.id",
                         "--batch-rows", "50", "--format", "json")
    assert code == 1, err
    report = json.loads(out)
    assert report["ok"] is False and report["orphans"] == 3
    (rel,) = report["relationships"]
    assert rel["enforcement"] == "missing"
    assert (rel["rows_scanned"], rel["pages"]) == (130, 3)  # 50 + 50 + 30: three pages
    assert rel["orphans"] == 3  # 18 rows with a NULL parent_id are not orphans
    assert [s["key"]["id"] for s in rel["samples"]] == [10, 75, 129]
    assert all(s["reference"] == {"parent_id": 999} for s in rel["samples"])

    code, out, _ = run("audit", "references", "--url", dsql_url, "--profile", "current",
                       "--relationship", f"{child}.parent_id={parent}.id", "--samples", "1",
                       "--batch-rows", "130")
    assert code == 1
    assert "**3 orphaned row(s)**" in out and "no: no foreign key" in out
    assert "| 130 (1) | 3 |" in out  # one full page (the empty read after it is no page)
    assert "| 10 | 999 |" in out and "| 75 | 999 |" not in out  # --samples 1


def test_composite_keys(dsql_url: str, workdir: Path) -> None:
    parent, child = names()
    execute(dsql_url,
            f"CREATE TABLE {parent} (tenant_id int, id int, PRIMARY KEY (tenant_id, id))",
            f"CREATE TABLE {child} (tenant_id int, id int, parent_id int, "
            "PRIMARY KEY (tenant_id, id))",
            f"INSERT INTO {parent} VALUES (1, 1), (1, 2), (2, 1)",
            # (2, 2) names parent (2, 2): absent, though tenant 1 has a parent 2;
            # (1, 5) has no parent_id: not an orphan; (3, 1) names tenant 3: absent
            f"INSERT INTO {child} VALUES (1, 1, 1), (1, 2, 2), (1, 5, NULL), (2, 1, 1), "
            "(2, 2, 2), (2, 3, 1), (3, 1, 1)")
    code, out, err = run("audit", "references", "--url", dsql_url, "--profile", "current",
                         "--relationship",
                         f"{child}.tenant_id,parent_id={parent}.tenant_id,id",
                         "--batch-rows", "2", "--format", "json")
    assert code == 1, err
    (rel,) = json.loads(out)["relationships"]
    assert (rel["rows_scanned"], rel["pages"], rel["orphans"]) == (7, 4, 2)
    assert [s["key"] for s in rel["samples"]] == [{"tenant_id": 2, "id": 2},
                                                  {"tenant_id": 3, "id": 1}]
    assert rel["key"] == ["tenant_id", "id"]


def test_classic_profile_finds_orphans_and_refuses_a_plan(classic_url: str,
                                                          workdir: Path) -> None:
    parent, child = make_pair(classic_url, orphans=[3], rows=40)
    spec = f"{child}.parent_id={parent}.id"
    code, out, err = run("audit", "references", "--url", classic_url, "--profile", "classic",
                         "--relationship", spec, "--batch-rows", "15")
    assert code == 1, err
    assert "no: the classic profile has no foreign keys" in out
    assert "| 40 (3) | 1 |" in out

    execute(classic_url, f"DELETE FROM {child} WHERE id = 3")
    code, out, err = run("audit", "references", "--url", classic_url, "--profile", "classic",
                         "--relationship", spec, "--write-plan", "plan.json")
    assert code == 2
    assert out == ""  # refused before reading anything
    assert "FOREIGN KEY constraint is not supported" in err and "classic" in err
    assert "lint rule foreign_key" in err
    assert not (workdir / "plan.json").exists()
    code, out, _ = run("audit", "references", "--url", classic_url, "--profile", "classic",
                       "--relationship", spec)
    assert code == 0 and "no orphaned rows" in out


def test_clean_relationship_plan_applies(dsql_url: str, workdir: Path) -> None:
    parent, child = make_pair(dsql_url, orphans=[])
    spec = f"{child}.parent_id={parent}.id"
    code, out, err = run("audit", "references", "--url", dsql_url, "--profile", "current",
                         "--relationship", spec, "--write-plan", "plan.json")
    assert code == 0, err
    assert "no orphaned rows" in out and "plan written to plan.json" in err
    plan = Plan.from_json((workdir / "plan.json").read_text())
    assert [s.kind.value for s in plan.steps] == ["verify", "ddl", "async_validate"]
    assert "NOT VALID" in plan.steps[1].sql[0]

    code, _, err = run("apply", "plan.json", "--url", dsql_url)
    assert code == 0, err
    assert query(dsql_url, f"SELECT conname, convalidated FROM pg_constraint WHERE conrelid = "
                 f"'{child}'::regclass AND contype = 'f'") == [(f"{child}_parent_id_fkey", True)]

    code, out, err = run("audit", "references", "--url", dsql_url, "--profile", "current",
                         "--relationship", spec, "--write-plan", "again.json")
    assert code == 0, err
    assert f"yes: foreign key {child}_parent_id_fkey (validated), not read" in out
    assert "nothing to add or validate" in err and not (workdir / "again.json").exists()


def test_not_valid_foreign_key_is_audited_then_validated(dsql_url: str, workdir: Path) -> None:
    parent, child = make_pair(dsql_url, orphans=[5], rows=30)
    execute(dsql_url, f"ALTER TABLE {child} ADD CONSTRAINT {child}_fk FOREIGN KEY (parent_id) "
            f"REFERENCES {parent} (id) NOT VALID")
    spec = f"{child}.parent_id={parent}.id"
    code, out, err = run("audit", "references", "--url", dsql_url, "--profile", "current",
                         "--relationship", spec, "--write-plan", "plan.json")
    assert code == 1
    assert f"new writes only: foreign key {child}_fk is NOT VALID" in out
    assert "no plan written: 1 orphaned row(s)" in err and not (workdir / "plan.json").exists()

    execute(dsql_url, f"DELETE FROM {child} WHERE id = 5")
    code, out, err = run("audit", "references", "--url", dsql_url, "--profile", "current",
                         "--relationship", spec, "--write-plan", "plan.json")
    assert code == 0, err
    plan = Plan.from_json((workdir / "plan.json").read_text())
    assert [s.kind.value for s in plan.steps] == ["async_validate"]
    code, _, err = run("apply", "plan.json", "--url", dsql_url)
    assert code == 0, err
    assert query(dsql_url, f"SELECT convalidated FROM pg_constraint WHERE conname = "
                 f"'{child}_fk'") == [(True,)]


MODELS = '''
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, foreign, relationship


class Base(DeclarativeBase):
    pass


class Parent(Base):
    __tablename__ = "{parent}"
    id = sa.Column(sa.BigInteger, primary_key=True)


class Child(Base):
    __tablename__ = "{child}"
    id = sa.Column(sa.BigInteger, primary_key=True)
    parent_id = sa.Column(sa.BigInteger, sa.ForeignKey("{parent}.id"))
    # a relationship with no ForeignKey in the schema, only in the ORM's join
    other_id = sa.Column(sa.BigInteger)
    other = relationship(Parent, primaryjoin=foreign(other_id) == Parent.id)
'''


def test_model_target_foreign_keys_and_relationships(dsql_url: str, workdir: Path) -> None:
    parent, child = names()
    execute(dsql_url,
            f"CREATE TABLE {parent} (id bigint PRIMARY KEY)",
            f"CREATE TABLE {child} (id bigint PRIMARY KEY, parent_id bigint, other_id bigint)",
            f"INSERT INTO {parent} VALUES (1)",
            f"INSERT INTO {child} VALUES (1, 1, 1), (2, 1, 7), (3, NULL, NULL)")
    module = f"models_{child}"
    (workdir / f"{module}.py").write_text(MODELS.format(parent=parent, child=child))
    code, out, err = run("audit", "references", "--url", dsql_url, "--profile", "current",
                         "--target", f"{module}:Base", "--format", "json")
    assert code == 1, err
    found = {r["relationship"]: (r["source"], r["orphans"])
             for r in json.loads(out)["relationships"]}
    assert found == {
        f"{child} (parent_id) -> {parent} (id)": ("model ForeignKey", 0),
        f"{child} (other_id) -> {parent} (id)": ("model relationship Child.other", 1),
    }
    execute(dsql_url, f"DELETE FROM {child} WHERE id = 2")
    code, _, err = run("audit", "references", "--url", dsql_url, "--profile", "current",
                       "--target", f"{module}:Base", "--write-plan", "plan.json")
    assert code == 0, err
    # the ForeignKey is planned; the relationship() without one is left out, and says why
    assert f"{child} (other_id) -> {parent} (id) is not in the plan" in err
    plan = Plan.from_json((workdir / "plan.json").read_text())
    assert [s.summary for s in plan.steps if s.kind.value == "ddl"] == [
        f"add foreign key {child}_parent_id_fkey on {child} (NOT VALID)"]


@pytest.mark.parametrize(("args", "needle"), [
    ([], "no relationship to audit"),
    (["--relationship", "orders.customer_id"], "is not a relationship"),
    (["--relationship", "orders.a,b=customers.id"], "pairs 2 child column(s) with 1"),
    (["--relationship", "no_such_child_t.a=no_such_parent_t.id"],
     "the live schema has no table no_such_child_t"),
    (["--relationships-file", "missing.txt"], "cannot read the relationships file"),
    (["--target", "no_such_module:Base"], "no such module"),
])
def test_usage_errors(dsql_url: str, workdir: Path, args: list[str], needle: str) -> None:
    code, _, err = run("audit", "references", "--url", dsql_url, *args)
    assert code == 2, err
    assert needle in err


def test_relationships_file_and_unknown_column(dsql_url: str, workdir: Path) -> None:
    parent, child = make_pair(dsql_url, orphans=[2], rows=10)
    (workdir / "refs.txt").write_text(f"# checked nightly\n{child}.parent_id={parent}.id\n")
    code, out, _ = run("audit", "references", "--url", dsql_url, "--relationships-file",
                       "refs.txt", "--format", "json")
    assert code == 1
    assert json.loads(out)["relationships"][0]["source"] == "refs.txt:2"
    (workdir / "bad.txt").write_text(f"{child}.nope={parent}.id\n")
    code, _, err = run("audit", "references", "--url", dsql_url, "--relationships-file",
                       "bad.txt")
    assert code == 2 and f"bad.txt:1: {child} (nope) -> {parent} (id): table " in err
    assert "has no column nope" in err
