"""Fingerprints of tables (canonical form, normalisation, readable differences) and the plan's
premise/promise in its JSON and hash. Unit tests: no database."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pytest

from dsql_migrate.catalog import Column, Constraint, Index, Table
from dsql_migrate.fingerprint import (
    RENAMED_FROM,
    UNCHECKED,
    Difference,
    diff,
    diff_table,
    matches,
    normalise_default,
    normalise_type,
    table_fingerprint,
)
from dsql_migrate.plan import Plan, PlanError, Step, StepKind, canonical_json


def accounts(**changes: object) -> Table:
    base = {
        "schema": "public", "name": "accounts",
        "columns": (Column("id", "integer", False, position=1),
                    Column("balance", "integer", True, default="0", position=2)),
        "constraints": (Constraint("accounts_pkey", "primary_key", ("id",),
                                   "PRIMARY KEY (id)", index="accounts_pkey"),),
        "indexes": (Index("accounts_pkey", True, ("id",), constraint="accounts_pkey",
                          definition="CREATE UNIQUE INDEX accounts_pkey ON public.accounts "
                          "USING btree (id)"),),
        "row_estimate": 1000,
    }
    base.update(changes)
    return Table(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("a, b", [
    ("VARCHAR(20)", "character varying(20)"),
    ("INTEGER", "integer"),
    ("int4", "integer"),
    ("BIGINT", "bigint"),
    ("NUMERIC(12, 2)", "numeric(12,2)"),
    ("TIMESTAMP WITHOUT TIME ZONE", "timestamp without time zone"),
    ("timestamptz", "timestamp with time zone"),
    ("TIMESTAMP(3) WITH TIME ZONE", "timestamp(3) with time zone"),
    ("DOUBLE PRECISION", "double precision"),
    ("FLOAT", "double precision"),
    # PostgreSQL: FLOAT(p) is real for p <= 24 and double precision for 25..53 (optuna's
    # Float(precision=53) came out as "double precision(53)" and broke a promise)
    ("FLOAT(53)", "double precision"),
    ("float(25)", "double precision"),
    ("FLOAT(24)", "real"),
    ("float(1)", "float4"),
    ("FLOAT(53)[]", "double precision[]"),
    ("INTEGER[]", "integer[]"),
    ("BOOLEAN", "bool"),
])
def test_type_spellings_compare_equal(a: str, b: str) -> None:
    assert normalise_type(a) == normalise_type(b)


def test_type_spellings_that_differ_stay_different() -> None:
    assert normalise_type("varchar(20)") != normalise_type("varchar(30)")
    assert normalise_type("integer") != normalise_type("bigint")
    assert normalise_type("timestamp") != normalise_type("timestamptz")


@pytest.mark.parametrize("a, b", [
    ("'new'::text", "'new'"),
    ("'open'::character varying", "'open'"),
    ("'0'", "0"),
    ("(now())", "now()"),
    ("CURRENT_TIMESTAMP", "current_timestamp"),
    ("'It''s'::text", "'It''s'"),
])
def test_default_spellings_compare_equal(a: str, b: str) -> None:
    assert normalise_default(a) == normalise_default(b)


def test_default_literal_case_is_kept() -> None:
    assert normalise_default("'New'::text") != normalise_default("'new'")


def test_fingerprint_leaves_out_what_changes_without_a_schema_change() -> None:
    one = accounts()
    other = accounts(
        row_estimate=5, row_count=7, row_bytes=40,
        columns=(Column("balance", "integer", True, default="0", position=7),
                 Column("id", "integer", False, position=3)),
        indexes=(Index("accounts_pkey", True, ("id",), constraint="accounts_pkey", valid=False,
                       definition="CREATE UNIQUE INDEX accounts_pkey ON public.accounts "
                       "USING btree (id)"),),
        constraints=(Constraint("accounts_pkey", "primary_key", ("id",),
                                "PRIMARY KEY (id) NOT VALID", index="accounts_pkey",
                                validated=False),))
    assert table_fingerprint(one) == table_fingerprint(other)
    assert canonical_json(table_fingerprint(one)) == canonical_json(table_fingerprint(other))


def test_fingerprint_keys_objects_by_name() -> None:
    fp = table_fingerprint(accounts())
    # every field of the snapshot's table but the volatile ones (names, row counts and widths)
    assert set(fp) == {"columns", "constraints", "indexes", "comment", "reloptions", "grants",
                       "statistics", "views"}
    balance = fp["columns"]["balance"]
    assert {k: balance[k] for k in ("type", "nullable", "default", "identity",
                                    "identity_cache")} == {
        "type": "integer", "nullable": True, "default": "0", "identity": None,
        "identity_cache": None}
    assert balance["comment"] is None  # and every other field a snapshot column has
    assert fp["constraints"]["accounts_pkey"]["kind"] == "primary_key"
    assert table_fingerprint(Table("public", "empty")) == {
        "columns": {}, "constraints": {}, "indexes": {}, "comment": None, "reloptions": [],
        "grants": [], "statistics": {}, "views": []}


@dataclass(frozen=True)
class Grant:
    role: str
    privilege: str


@dataclass(frozen=True)
class Statistics:
    name: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class RicherTable(Table):
    """What a later snapshot may add to a table: the fingerprint takes it without a change."""

    comment: str | None = None
    grants: tuple[Grant, ...] = ()
    statistics: tuple[Statistics, ...] = ()


def test_fields_added_to_the_snapshot_are_fingerprinted_generically() -> None:
    table = RicherTable("public", "accounts", columns=accounts().columns, comment="money",
                        grants=(Grant("app", "SELECT"), Grant("app", "INSERT")))
    fp = table_fingerprint(table)
    assert fp["comment"] == "money"
    assert fp["grants"] == [{"privilege": "INSERT", "role": "app"},
                            {"privilege": "SELECT", "role": "app"}]  # a set: sorted
    assert fp["statistics"] == {}  # named items, none yet: an empty mapping
    fewer = table_fingerprint(RicherTable("public", "accounts", columns=accounts().columns,
                                          comment="money", grants=(Grant("app", "SELECT"),)))
    [difference] = diff_table("public.accounts", fp, fewer)
    assert difference.kind == "grants" and difference.sign == "~"


def test_an_extra_column_reads_as_the_issue_shows() -> None:
    planned = table_fingerprint(accounts())
    live = table_fingerprint(accounts(columns=(
        *accounts().columns, Column("important_zz", "text", False, position=3))))
    [difference] = diff({"public.accounts": planned}, {"public.accounts": live})
    assert difference.text() == ("+ column important_zz text NOT NULL "
                                 "(not in the plan's source)")


def test_changed_and_missing_objects_read_as_such() -> None:
    planned = table_fingerprint(accounts())
    live = table_fingerprint(accounts(
        columns=(Column("id", "integer", False), Column("balance", "bigint", True, "0")),
        indexes=()))
    texts = [d.text(expected_as="the plan's promise")
             for d in diff({"public.accounts": planned}, {"public.accounts": live})]
    assert texts == [
        "~ column balance: type integer in the plan's promise, bigint live",
        "- index accounts_pkey CREATE UNIQUE INDEX accounts_pkey ON public.accounts USING "
        "btree (id) (in the plan's promise; missing live)",
    ]


def test_missing_and_unexpected_tables() -> None:
    planned = table_fingerprint(accounts())
    assert [d.text() for d in diff({"public.accounts": planned}, {"public.accounts": None})] == [
        "- table public.accounts (in the plan's source; missing live)"]
    assert [d.sign for d in diff({"public.new": None}, {"public.new": planned})] == ["+"]
    assert diff({"public.gone": None}, {"public.gone": None}) == []


def test_expected_objects_may_state_fewer_fields() -> None:
    live = table_fingerprint(accounts())["columns"]["balance"]
    assert matches({"type": "integer", "nullable": True}, live)
    assert not matches({"type": "bigint"}, live)
    assert not matches({"no_such_field": 1}, live)


def test_reserved_keys_are_not_compared() -> None:
    planned = {**table_fingerprint(accounts()), RENAMED_FROM: "public.clients"}
    assert diff({"public.accounts": planned},
                {"public.accounts": table_fingerprint(accounts())}) == []
    assert diff({"public.accounts": {UNCHECKED: "raw SQL"}}, {"public.accounts": None}) == []


def test_difference_path_names_the_object() -> None:
    difference = Difference("public.t", "+", "index", "ix")
    assert difference.path == ("public.t", "index", "ix")


# -- the plan ------------------------------------------------------------------------------------

STEP = Step(id=1, kind=StepKind.DDL, summary="s", sql=("ALTER TABLE accounts ADD COLUMN x int",),
            table="accounts")


def test_a_plan_without_premise_keeps_its_hash() -> None:
    plan = Plan(profile="current", steps=(STEP,))
    expected = hashlib.sha256(canonical_json([STEP.executed()]).encode()).hexdigest()
    assert plan.hash == f"sha256:{expected}"
    assert Plan.from_json(plan.to_json()).premise is None


def test_premise_and_promise_are_in_the_json_and_the_hash() -> None:
    fp = table_fingerprint(accounts())
    plan = Plan(profile="current", steps=(STEP,), premise={"public.accounts": fp},
                promise={"public.accounts": fp, "public.gone": None})
    loaded = Plan.from_json(plan.to_json())
    assert loaded.premise == plan.premise and loaded.promise == plan.promise
    assert loaded.hash == plan.hash
    assert plan.hash != Plan(profile="current", steps=(STEP,)).hash
    other = Plan(profile="current", steps=(STEP,), premise={"public.accounts": None},
                 promise=plan.promise)
    assert other.hash != plan.hash


def test_an_edited_premise_fails_the_hash() -> None:
    plan = Plan(profile="current", steps=(STEP,),
                premise={"public.accounts": table_fingerprint(accounts())}, promise={})
    text = plan.to_json().replace('"type": "integer"', '"type": "bigint"', 1)
    with pytest.raises(PlanError, match="does not match"):
        Plan.from_json(text)


def test_a_malformed_premise_is_a_clear_error() -> None:
    data = Plan(profile="current", steps=(STEP,)).as_dict()
    data["premise"] = ["public.accounts"]
    with pytest.raises(PlanError, match="premise must map each table"):
        Plan.from_dict(data, verify=False)
