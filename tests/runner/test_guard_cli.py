"""The two bugs of issue 14 (premise and promise), as a user meets them with the CLI.

1. A plan made against one schema and applied where the table has an extra column
   ``important_zz text NOT NULL`` with 1,000 values: the run used to exit 0 and the column and
   its data were gone; now it refuses before anything runs (exit 5) and shows the column.
2. A plan applied (int -> bigint), reverted by hand, made again (same hash) and applied: the
   runner used to say "Nothing to do: this plan was already applied." (exit 0) while
   ``plan --check`` reported drift; now it says the schema changed since (exit 5).

A target of its own: a declarative plan owns the whole schema it is compared with.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from _support import PrivateTarget, run
from dsql_migrate.local import LocalInstance

pytestmark = pytest.mark.integration

DESIRED = "CREATE TABLE accounts (id int PRIMARY KEY, balance bigint);\n"


@pytest.fixture(scope="module")
def instance(private_target: PrivateTarget) -> Iterator[LocalInstance]:
    with private_target("guard") as local:
        yield local


@pytest.fixture
def target(instance: LocalInstance, workdir: Path) -> Iterator[tuple[str, str]]:
    """(DSQL url, direct url) of a schema holding ``accounts(id int PK, balance int)``."""
    raw_url = instance.raw_url()
    with psycopg.connect(raw_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE accounts (id int PRIMARY KEY, balance int)")
        conn.execute("INSERT INTO accounts SELECT g, g * 10 FROM generate_series(1, 1000) g")
    (workdir / "desired.sql").write_text(DESIRED)
    yield instance.url(), raw_url
    with psycopg.connect(raw_url, autocommit=True) as conn:
        for name in ("accounts", "accounts__new", "accounts__old"):
            conn.execute(f"DROP TABLE IF EXISTS {name} CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS dsql_migrate CASCADE")


def test_extra_column_on_the_target_refuses_before_anything_runs(
        target: tuple[str, str]) -> None:
    url, raw_url = target
    code, _, err = run("plan", "--url", url, "--target", "desired.sql", "-o", "plan.json")
    assert code == 0, err
    plan = json.loads(Path("plan.json").read_text())
    assert plan["premise"]["public.accounts"]["columns"]["balance"]["type"] == "integer"
    assert plan["promise"]["public.accounts"]["columns"]["balance"]["type"] == "bigint"

    # the database the plan is applied to has a column the plan's source had not
    with psycopg.connect(raw_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE accounts ADD COLUMN important_zz text NOT NULL DEFAULT ''")
        conn.execute("UPDATE accounts SET important_zz = 'value ' || id")
        conn.execute("ALTER TABLE accounts ALTER COLUMN important_zz DROP DEFAULT")

    code, _, err = run("apply", "plan.json", "--url", url, "--allow-destructive",
                       "--log-format", "json")
    assert code == 5, err
    assert "+ column important_zz text NOT NULL (not in the plan's source)" in err
    assert "nothing was run" in err
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    refused = [e for e in events if e["event"] == "plan.refused"]
    assert [e["differences"] for e in refused] == [
        ["+ column important_zz text NOT NULL (not in the plan's source)"]]
    assert not any(e["event"].startswith("step.") for e in events)
    assert "dsql-migrate plan" in err  # what to do
    with psycopg.connect(raw_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(important_zz), count(DISTINCT important_zz) "
                            "FROM accounts").fetchone() == (1000, 1000)
        assert conn.execute("SELECT to_regclass('accounts__new')").fetchone() == (None,)

    # planned again against this database, the plan carries the column over
    code, _, err = run("plan", "--url", url, "--target", "desired.sql", "-o", "again.json")
    assert code == 0, err
    code, _, err = run("apply", "again.json", "--url", url, "--allow-destructive")
    assert code == 0, err


def test_reverted_by_hand_is_not_already_applied(target: tuple[str, str]) -> None:
    url, raw_url = target
    code, _, err = run("plan", "--url", url, "--target", "desired.sql", "-o", "plan.json")
    assert code == 0, err
    code, _, err = run("apply", "plan.json", "--url", url, "--allow-destructive")
    assert code == 0, err
    code, _, err = run("apply", "plan.json", "--url", url)
    assert code == 0 and "already applied" in err  # the end state is there: nothing to do

    with psycopg.connect(raw_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE accounts ALTER COLUMN balance TYPE integer")
    code, _, _ = run("plan", "--url", url, "--target", "desired.sql", "--check")
    assert code == 1  # drift, as plan --check says
    code, _, err = run("plan", "--url", url, "--target", "desired.sql", "-o", "again.json")
    assert code == 0, err
    first = json.loads(Path("plan.json").read_text())["hash"]
    assert json.loads(Path("again.json").read_text())["hash"] == first  # the same plan

    code, _, err = run("apply", "again.json", "--url", url, "--allow-destructive")
    assert code == 5, err
    assert "already applied" not in err.replace("applied before", "")
    assert "schema changed since" in err
    assert "~ column balance: type bigint in the plan's promise, integer live" in err
    assert "--reapply" in err  # back to the plan's premise: it can run again

    code, _, err = run("apply", "again.json", "--url", url, "--allow-destructive", "--reapply")
    assert code == 0, err
    code, _, _ = run("plan", "--url", url, "--target", "desired.sql", "--check")
    assert code == 0
