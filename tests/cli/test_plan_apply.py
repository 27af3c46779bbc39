"""The declarative workflow in one go: ``plan --apply``, and finishing a stopped plan with
``apply`` and no file (the plan is read back from the state table)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from _support import PrivateTarget, run
from dsql_migrate.plan import Plan, Step, StepKind

pytestmark = pytest.mark.integration

DESIRED = """
CREATE TABLE orders (
  id bigint PRIMARY KEY,
  email varchar(200),
  status text DEFAULT 'new' NOT NULL
);
CREATE UNIQUE INDEX ASYNC orders_email_key ON orders (email);
"""


@pytest.fixture(scope="module")
def private_url(private_target: PrivateTarget) -> Iterator[str]:
    """A target of its own: a declarative plan owns the whole schema it is compared with."""
    with private_target("plan-apply") as instance:
        yield instance.url()


def test_plan_apply_then_finish_the_destructive_step(private_url: str, workdir: Path) -> None:
    with psycopg.connect(private_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id bigint PRIMARY KEY, email varchar(50))")
        conn.execute("INSERT INTO orders SELECT g, 'u' || g FROM generate_series(1, 2500) g")
    (workdir / "desired.sql").write_text(DESIRED)

    code, _, err = run("plan", "--url", private_url, "--target", "desired.sql", "--apply",
                       "--log-format", "json")
    assert code == 5, err  # the recreation's backup drop is destructive: stopped before it
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["lock.acquired", "plan.start"]
    done = [e["step"] for e in events if e["event"] == "step.done"]
    assert done == list(range(1, len(done) + 1)) and len(done) >= 8  # all but the backup drop
    assert "--allow-destructive" in err

    with psycopg.connect(private_url, autocommit=True) as conn:  # usable already
        assert conn.execute("SELECT count(*), min(status) FROM orders").fetchone() == (2500, "new")
        assert conn.execute("SELECT to_regclass('orders__old') IS NOT NULL").fetchone() == (True,)

    code, _, err = run("apply", "--url", private_url, "--allow-destructive")
    assert code == 0, err
    assert "finishing the partially applied plan" in err
    code, _, _ = run("plan", "--url", private_url, "--target", "desired.sql", "--check")
    assert code == 0  # converged
    with psycopg.connect(private_url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('orders__old')").fetchone() == (None,)
        valid = conn.execute("SELECT indisvalid FROM pg_index "
                             "WHERE indexrelid = 'orders_email_key'::regclass").fetchone()
        assert valid == (True,)

    code, _, err = run("apply", "--url", private_url)
    assert code == 2 and "no partially applied plan" in err  # nothing to apply: usage


def test_plan_apply_with_nothing_to_do(private_url: str, workdir: Path) -> None:
    (workdir / "same.sql").write_text(DESIRED)
    run("plan", "--url", private_url, "--target", "same.sql", "--apply", "--allow-destructive")
    code, _, err = run("plan", "--url", private_url, "--target", "same.sql", "--apply")
    assert code == 0 and "nothing to apply" in err


def test_check_and_apply_exclude_each_other(private_url: str, workdir: Path) -> None:
    (workdir / "d.sql").write_text(DESIRED)
    code, _, err = run("plan", "--url", private_url, "--target", "d.sql", "--check", "--apply")
    assert code == 2 and "exclude each other" in err


def test_plan_approved_with_allow_destructive_applies_without_the_flag(
        private_url: str, workdir: Path) -> None:
    """``plan --allow-destructive -o`` records the approval in the plan and its hash: the
    reviewed file then runs its destructive steps with a plain ``apply``; the same plan
    without the approval stops before them, and an approval edited into a file is refused."""
    with psycopg.connect(private_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS orders, orders__old, orders__new CASCADE")
        conn.execute("CREATE TABLE orders (id bigint PRIMARY KEY, email varchar(50))")
        conn.execute("INSERT INTO orders SELECT g, 'u' || g FROM generate_series(1, 500) g")
    (workdir / "desired.sql").write_text(DESIRED)
    code, _, err = run("plan", "--url", private_url, "--target", "desired.sql", "-o", "plain.json")
    assert code == 0, err
    code, _, err = run("plan", "--url", private_url, "--target", "desired.sql",
                       "--allow-destructive", "-o", "approved.json")
    assert code == 0, err
    plain = json.loads((workdir / "plain.json").read_text())
    approved = json.loads((workdir / "approved.json").read_text())
    assert plain["approved_destructive"] is False and approved["approved_destructive"] is True
    assert plain["steps"] == approved["steps"] and plain["hash"] != approved["hash"]
    assert plain["summary"]["destructive"] >= 1

    forged = dict(plain, approved_destructive=True)  # the flag without a new hash
    (workdir / "forged.json").write_text(json.dumps(forged))
    code, _, err = run("apply", "forged.json", "--url", private_url)
    assert code == 5 and "does not match" in err

    code, out, err = run("plan", "--url", private_url, "--target", "desired.sql",
                         "--allow-destructive")
    assert code == 0 and "destructive (approved)" in out
    code, _, err = run("apply", "approved.json", "--url", private_url,
                       "--expect-hash", approved["hash"])
    assert code == 0, err
    code, _, _ = run("plan", "--url", private_url, "--target", "desired.sql", "--check")
    assert code == 0
    with psycopg.connect(private_url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('orders__old')").fetchone() == (None,)


def test_apply_does_not_retry_a_refused_login(dsql_url: str, workdir: Path) -> None:
    """A role the server does not know is refused at once, one line, no retries (waiting does
    not fix credentials)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(dsql_url)
    nobody = urlunsplit(parts._replace(netloc=f"nobody_{parts.port}@{parts.hostname}:"
                                              f"{parts.port}"))
    plan = Plan(profile="current", steps=(
        Step(1, StepKind.DDL, "create", ("CREATE TABLE never_made (id bigint PRIMARY KEY)",)),))
    (workdir / "plan.json").write_text(plan.to_json())
    started = time.monotonic()
    code, _, err = run("apply", "plan.json", "--url", nobody, "--log-format", "json")
    assert code == 1 and "could not connect" in err, err
    assert '"retry"' not in err and "retry" not in err.lower()
    assert time.monotonic() - started < 5
