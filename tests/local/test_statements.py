"""Every statement form of DSQL.md §1, per profile, through the emulator (data-driven).

The cases live in ``cases/*.cases`` (see cases/README.md); each runs on the simple and on the
extended protocol, inside a transaction block that is rolled back, and a rejection must leave
that transaction aborted, as a server error does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import pq

from dsql_migrate.local import LocalInstance

CASES_DIR = Path(__file__).parent / "cases"

SETUP = """
DROP SCHEMA IF EXISTS cases CASCADE;
DROP SCHEMA IF EXISTS cases2 CASCADE;
CREATE SCHEMA cases;
CREATE SCHEMA cases2;
CREATE TABLE cases.p (id bigint PRIMARY KEY);
CREATE TABLE cases.t (
    id bigint PRIMARY KEY, a int, b text, c int, n text NOT NULL DEFAULT '', j int,
    id2 int, a2 int, b2 int, CONSTRAINT t_chk CHECK (a > 0)
);
CREATE UNIQUE INDEX t_b_idx ON cases.t (b);
ALTER TABLE cases.t ADD CONSTRAINT t_b_uq UNIQUE (b, c);
ALTER TABLE cases.t ADD CONSTRAINT t_nv CHECK (c > 0) NOT VALID;
CREATE TABLE cases.nopk (id bigint);
CREATE TABLE cases.part (id bigint, d date) PARTITION BY RANGE (d);
INSERT INTO cases.t (id, a, b, c) VALUES (1, 1, 'one', 1);
CREATE STATISTICS cases.t_stats ON a, c FROM cases.t;
"""


@dataclass(frozen=True)
class Case:
    source: str
    profile: str
    expected: str
    sql: str
    #: the oldest PostgreSQL major version the case's syntax needs (``both@pg16``)
    min_server: int = 0


def load_cases() -> list[Case]:
    cases = []
    for path in sorted(CASES_DIR.glob("*.cases")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            profile, expected, sql = (part.strip() for part in line.split("|", 2))
            profile, _, minimum = profile.partition("@pg")
            assert profile in ("both", "current", "classic"), f"{path.name}:{number}"
            for name in ("current", "classic") if profile == "both" else (profile,):
                cases.append(Case(f"{path.name}:{number}", name, expected, sql,
                                  int(minimum or 0)))
    return cases


CASES = load_cases()


def _connect(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True, options="-c search_path=cases,public")


@pytest.fixture(scope="module")
def targets(local_instance: LocalInstance, classic_instance: LocalInstance
            ) -> Iterator[dict[str, psycopg.Connection[Any]]]:
    connections = {}
    for name, instance in (("current", local_instance), ("classic", classic_instance)):
        # prepared through the emulator would break the one-DDL rule: go raw
        with psycopg.connect(instance.raw_url(), autocommit=True) as raw:
            raw.execute(SETUP)
        connections[name] = _connect(instance.url())
    yield connections
    for conn in connections.values():
        conn.close()


@pytest.mark.parametrize("protocol", ["simple", "extended"])
@pytest.mark.parametrize("case", CASES, ids=[f"{c.source}-{c.profile}" for c in CASES])
def test_statement(case: Case, protocol: str,
                   targets: dict[str, psycopg.Connection[Any]]) -> None:
    conn = targets[case.profile]
    if conn.info.server_version < case.min_server * 10000:
        pytest.skip(f"needs PostgreSQL {case.min_server} syntax; the test emulator runs "
                    f"server_version_num {conn.info.server_version}")
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        conn.execute("ROLLBACK")
    cursor: psycopg.Cursor[Any] = (psycopg.ClientCursor(conn) if protocol == "simple"
                                   else conn.cursor())
    begins = case.sql.split()[0].upper() in ("BEGIN", "START")
    if not begins:
        cursor.execute("BEGIN")
    try:
        cursor.execute(case.sql)
    except psycopg.Error as exc:
        assert case.expected != "ok", f"{case.sql!r} rejected: {exc.sqlstate} {exc}"
        assert exc.sqlstate == case.expected, f"{case.sql!r}: got {exc.sqlstate} {exc}"
        if exc.sqlstate == "0A000":
            assert "not supported" in str(exc) or "requires" in str(exc)
        # a rejection aborts the transaction block exactly as a server error does
        expected_status = pq.TransactionStatus.IDLE if begins else pq.TransactionStatus.INERROR
        assert conn.info.transaction_status == expected_status
    else:
        assert case.expected == "ok", f"{case.sql!r} accepted, expected {case.expected}"
    finally:
        conn.execute("ROLLBACK")
