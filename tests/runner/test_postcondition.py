"""Postconditions: false before a DDL statement runs, true after (checked on a real server)."""

from __future__ import annotations

import random
import uuid
from typing import Any

import psycopg
import pytest

from dsql_migrate.runner import postcondition
from dsql_migrate.runner.faults import CrashPoints
from dsql_migrate.runner.retry import RetryPolicy

# each statement runs after the ones before it, on a table called {t}
SEQUENCE = [
    "CREATE TABLE {t} (id bigint PRIMARY KEY, a integer, b text)",
    "ALTER TABLE {t} ADD COLUMN c integer",
    "ALTER TABLE {t} ALTER COLUMN c SET DEFAULT 5",
    "ALTER TABLE {t} ALTER COLUMN c DROP DEFAULT",
    "ALTER TABLE {t} ALTER COLUMN a SET NOT NULL",
    "ALTER TABLE {t} ALTER COLUMN a DROP NOT NULL",
    "ALTER TABLE {t} ADD CONSTRAINT {t}_a_check CHECK (a > 0) NOT VALID",
    "ALTER TABLE {t} VALIDATE CONSTRAINT {t}_a_check",
    "ALTER TABLE {t} RENAME CONSTRAINT {t}_a_check TO {t}_a_positive",
    "ALTER TABLE {t} DROP CONSTRAINT {t}_a_positive",
    "ALTER TABLE {t} RENAME COLUMN b TO note",
    "ALTER TABLE {t} DROP COLUMN c",
    "CREATE INDEX {t}_note ON {t} (note)",
    "ALTER INDEX {t}_note RENAME TO {t}_note_idx",
    "DROP INDEX {t}_note_idx",
    "CREATE VIEW {t}_v AS SELECT id FROM {t}",
    "DROP VIEW {t}_v",
    "ALTER TABLE {t} RENAME TO {t}_renamed",
    "DROP TABLE {t}_renamed",
]
# no check: SET NOT NULL cannot be judged; the others are safe to run again, and "has a
# default" cannot tell a changed default from the old one
UNKNOWN = {"ALTER TABLE {t} ALTER COLUMN a SET NOT NULL",
           "ALTER TABLE {t} ALTER COLUMN c SET DEFAULT 5",
           "ALTER TABLE {t} ALTER COLUMN c DROP DEFAULT",
           "ALTER TABLE {t} ALTER COLUMN a DROP NOT NULL"}


def test_postconditions_turn_true_exactly_when_the_statement_ran(
        raw_conn: psycopg.Connection[Any]) -> None:
    name = f"pc_{uuid.uuid4().hex[:8]}"
    try:
        for template in SEQUENCE:
            statement = template.format(t=name)
            check = postcondition.for_statement(statement)
            if template in UNKNOWN:
                assert check is None, statement
                raw_conn.execute(statement)
                continue
            assert check is not None, statement

            def holds(check: postcondition.Postcondition = check) -> bool:
                row = raw_conn.execute(check.query, check.params).fetchone()
                return bool(row and row[0])
            assert not holds(), f"true before: {statement}"
            raw_conn.execute(statement)
            assert holds(), f"false after: {statement}"
    finally:
        raw_conn.execute(f"DROP TABLE IF EXISTS {name}, {name}_renamed CASCADE")


@pytest.mark.parametrize("statement", [
    "CREATE INDEX ASYNC i ON t (a)", "GRANT SELECT ON t TO PUBLIC", "not sql at all",
    "ALTER TABLE t ADD COLUMN a int, ADD COLUMN b int",
    "CREATE OR REPLACE VIEW v AS SELECT 1",
])
def test_statements_it_cannot_judge_give_none(statement: str) -> None:
    assert postcondition.for_statement(statement) is None


def test_backoff_is_jittered_and_capped() -> None:
    policy = RetryPolicy(attempts=5, base_seconds=0.05, cap_seconds=0.3)
    rng = random.Random(1)
    delays = [policy.delay(n, rng) for n in range(1, 20)]
    assert all(0 <= d <= 0.3 for d in delays) and len(set(delays)) > 10
    assert all(policy.delay(1, rng) <= 0.05 for _ in range(50))
    assert RetryPolicy.from_config({"attempts": 3}).attempts == 3
    with pytest.raises(Exception, match="unknown"):
        RetryPolicy.from_config({"tries": 3})


def test_crash_points_parse_and_count_without_firing() -> None:
    points = CrashPoints("batch.before_commit:3, *:1000")
    for _ in range(2):
        points.reach("batch.before_commit")
    points.reach("ddl.after_execute")
    assert CrashPoints(None)._targets == {}
