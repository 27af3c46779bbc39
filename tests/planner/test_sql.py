"""SQL helpers of the planner; cast pre-checks are checked against PostgreSQL's own casts."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from dsql_migrate.planner._sql import cast_failure_predicate, normalize_type, q, suffixed

VALUES: dict[str, list[str | None]] = {
    "text": ["12", " -7 ", "3.5", "abc", "", "99999999999", "2147483647", "t", "yes",
             "0e1", "1e400", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "toolongvalue", None],
    "numeric": ["12", "-7.5", "3", "99999999999", "2147483648", "12345.678"],
    "bigint": ["1", "-5", "3000000000", "32768"],
}
TARGETS = ["integer", "smallint", "bigint", "numeric", "numeric(5,2)", "double precision",
           "boolean", "uuid", "varchar(5)", "character varying(12)", "text", "date"]


@pytest.mark.parametrize("source", sorted(VALUES))
def test_cast_predicate_matches_what_postgres_accepts(raw_conn: psycopg.Connection[Any],
                                                      source: str) -> None:
    for target in TARGETS:
        predicate = cast_failure_predicate("v", source, target)
        for value in VALUES[source]:
            try:
                with raw_conn.transaction():
                    raw_conn.execute(f"SELECT CAST(CAST(%s AS {source}) AS {target})", [value])
                fails = False
            except psycopg.DataError:
                fails = True
            except psycopg.errors.CannotCoerce:
                break  # no cast at all: the copy fails loudly, no pre-check can help
            if value is None:
                continue
            if target.startswith(("varchar", "character varying")):
                # an explicit cast truncates silently; the pre-check reports what would be cut
                length = int(target.split("(")[1].rstrip(")"))
                fails = len(value) > length
            if predicate is None:
                assert not fails, (value, source, target)
                continue
            if target == "date":
                continue  # checked with pg_input_is_valid (PostgreSQL 16+, as DSQL)
            row = raw_conn.execute(
                f"SELECT {predicate} FROM (SELECT CAST(%s AS {source}) AS v) AS t",
                [value]).fetchone()
            assert row is not None and bool(row[0]) == fails, (value, source, target, predicate)


def test_names_and_types() -> None:
    assert q("users") == "users" and q("user") == '"user"' and q("Mixed") == '"Mixed"'
    assert len(suffixed("x" * 70, "__new").encode()) == 63
    assert suffixed("orders", "__old") == "orders__old"
    assert normalize_type("CHARACTER VARYING(20)") == normalize_type("VARCHAR(20)")
    assert normalize_type("integer") == normalize_type("INTEGER") != normalize_type("bigint")
    assert normalize_type("numeric(10, 2)") == normalize_type("NUMERIC(10,2)")


def test_long_names_put_aside_stay_distinct() -> None:
    """A 63-byte table and its primary key (PostgreSQL cuts ``<table>_pkey`` to 63 bytes) are
    both put aside by a recreation: their ``__old`` names must differ (issue 14, point 3)."""
    table = "x" * 63
    pkey = ("x" * 63)[:58] + "_pkey"
    assert suffixed(table, "__old") != suffixed(pkey, "__old")
    assert all(len(suffixed(n, s).encode()) == 63 for n in (table, pkey)
               for s in ("__old", "__new"))
    assert suffixed("é" * 40, "__new").endswith("__new")
    assert suffixed("orders", "__old") == "orders__old"


def test_a_name_with_a_percent_sign_is_refused_at_plan_time() -> None:
    """A plan's batched statements are run with parameters (``%`` doubled) and its DDL without
    (``%`` as is): one spelling of such a name cannot serve both, so the planner refuses it
    before anything runs rather than fail half-way (issue 14, point 3)."""
    from dsql_migrate.planner import PlanningError

    with pytest.raises(PlanningError) as info:
        q("100% sure")
    assert "'100% sure'" in info.value.message and "%" in (info.value.hint or "")
    assert q("sure") == "sure" and q("Mixed Case") == '"Mixed Case"'
