"""Optimistic concurrency (DSQL.md §2) and fault injection through the emulator."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import psycopg
import pytest
from psycopg import pq

from dsql_migrate.local import LocalInstance
from dsql_migrate.local.proxy import Faults


def _table(raw_conn: psycopg.Connection[Any]) -> str:
    name = f"occ_{uuid.uuid4().hex[:10]}"
    raw_conn.execute(f"CREATE TABLE {name} (id bigint PRIMARY KEY, v int)")
    raw_conn.execute(f"INSERT INTO {name} VALUES (1, 0)")
    return name


def test_write_write_conflict_is_oc000(dsql_url: str, raw_conn: psycopg.Connection[Any]) -> None:
    table = _table(raw_conn)
    with psycopg.connect(dsql_url) as first, psycopg.connect(dsql_url) as second:
        first.execute(f"UPDATE {table} SET v = 1 WHERE id = 1")
        second.execute(f"SELECT v FROM {table}")  # its snapshot predates first's commit
        errors: list[psycopg.Error] = []

        def update() -> None:
            try:
                second.execute(f"UPDATE {table} SET v = 2 WHERE id = 1")
            except psycopg.Error as exc:
                errors.append(exc)

        worker = threading.Thread(target=update)
        worker.start()
        time.sleep(0.2)
        first.commit()
        worker.join(10)
        assert len(errors) == 1
        assert errors[0].sqlstate == "40001"
        assert "(OC000)" in str(errors[0])
        second.rollback()
    assert raw_conn.execute(f"SELECT v FROM {table}").fetchone() == (1,)


def test_commit_after_concurrent_ddl_is_oc001(dsql_url: str, conn: psycopg.Connection[Any],
                                              raw_conn: psycopg.Connection[Any]) -> None:
    table = _table(raw_conn)
    with psycopg.connect(dsql_url) as writer:
        writer.execute(f"INSERT INTO {table} VALUES (2, 2)")
        conn.execute(f"CREATE TABLE {table}_other (id bigint PRIMARY KEY)")
        with pytest.raises(psycopg.errors.SerializationFailure, match=r"\(OC001\)"):
            writer.commit()
        assert writer.info.transaction_status == pq.TransactionStatus.IDLE
        # the next transaction is fine
        writer.execute(f"INSERT INTO {table} VALUES (3, 3)")
        writer.commit()
    ids = raw_conn.execute(f"SELECT id FROM {table} ORDER BY id").fetchall()
    assert ids == [(1,), (3,)]


def test_read_only_transaction_ignores_ddl(dsql_url: str, conn: psycopg.Connection[Any],
                                           raw_conn: psycopg.Connection[Any]) -> None:
    table = _table(raw_conn)
    with psycopg.connect(dsql_url) as reader:
        reader.execute(f"SELECT * FROM {table}")
        conn.execute(f"CREATE TABLE {table}_other (id bigint PRIMARY KEY)")
        reader.commit()


def test_injected_commit_failures(emulator: LocalInstance, dsql_url: str,
                                  raw_conn: psycopg.Connection[Any]) -> None:
    table = _table(raw_conn)
    emulator.set_faults(Faults(commit_failure_rate=1.0, seed=1))
    with psycopg.connect(dsql_url) as conn:
        conn.execute(f"SELECT * FROM {table}")
        conn.commit()  # read-only: never failed
        conn.execute(f"INSERT INTO {table} VALUES (10, 10)")
        with pytest.raises(psycopg.errors.SerializationFailure, match=r"\(OC000\)"):
            conn.commit()
    assert raw_conn.execute(f"SELECT count(*) FROM {table} WHERE id = 10").fetchone() == (0,)


def _pattern(emulator: LocalInstance, dsql_url: str, table: str, seed: int) -> list[bool]:
    emulator.set_faults(Faults(commit_failure_rate=0.5, seed=seed))
    outcome = []
    with psycopg.connect(dsql_url) as conn:
        for i in range(24):
            conn.execute(f"INSERT INTO {table} VALUES (%s, 0) ON CONFLICT (id) DO NOTHING",
                         (1000 + i,))
            try:
                conn.commit()
                outcome.append(True)
            except psycopg.errors.SerializationFailure:
                outcome.append(False)
    return outcome


def test_seed_replays_the_same_faults(emulator: LocalInstance, dsql_url: str,
                                      raw_conn: psycopg.Connection[Any]) -> None:
    table = _table(raw_conn)
    first = _pattern(emulator, dsql_url, table, seed=7)
    second = _pattern(emulator, dsql_url, table, seed=7)
    assert first == second
    assert True in first and False in first


def test_old_connections_are_closed(emulator: LocalInstance, dsql_url: str) -> None:
    emulator.set_faults(Faults(max_connection_age=0.5))
    with psycopg.connect(dsql_url, autocommit=True) as conn:
        conn.execute("SELECT 1")
        time.sleep(1.0)
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    emulator.set_faults(Faults())
    with psycopg.connect(dsql_url, autocommit=True) as conn:
        time.sleep(0.6)
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_injected_failure_on_an_extended_protocol_commit(emulator: LocalInstance, dsql_url: str,
                                                        raw_conn: psycopg.Connection[Any]) -> None:
    table = _table(raw_conn)
    emulator.set_faults(Faults(commit_failure_rate=1.0, seed=3))
    with psycopg.connect(dsql_url) as conn:
        conn.execute(f"INSERT INTO {table} VALUES (20, 20)")
        with pytest.raises(psycopg.errors.SerializationFailure, match=r"\(OC000\)"):
            conn.execute("COMMIT")  # psycopg sends this one as Parse/Bind/Execute
        conn.rollback()
    assert raw_conn.execute(f"SELECT count(*) FROM {table} WHERE id = 20").fetchone() == (0,)
