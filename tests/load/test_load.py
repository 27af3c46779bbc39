"""``dsql-migrate load`` through the emulator: DSQL-sized batches, quoting, NULLs and unicode,
errors at file:line, a SIGKILL mid-load and a resume that loads every row once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from _support import run


@pytest.fixture
def state(raw_url: str) -> Iterator[str]:
    name = f"dm_load_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(raw_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def table(conn: psycopg.Connection[Any], raw_url: str) -> Iterator[str]:
    """A fresh table made through the emulator (so DSQL's row counting applies to it)."""
    name = f"l{uuid.uuid4().hex[:8]}"
    conn.execute(f"CREATE TABLE {name} (id bigint PRIMARY KEY, name text, qty integer, "
                 "note text)")
    yield name
    with psycopg.connect(raw_url, autocommit=True) as raw:
        raw.execute(f"DROP TABLE IF EXISTS {name}")


def rows(conn: psycopg.Connection[Any], table: str) -> list[tuple[Any, ...]]:
    return conn.execute(f"SELECT id, name, qty, note FROM {table} ORDER BY id").fetchall()


def numbered(path: Path, count: int) -> Path:
    path.write_text("id,name,qty,note\n" + "".join(
        f'{i},"name {i}",{i % 97},"line one\nline, two ""{i}"""\n' for i in range(1, count + 1)),
        encoding="utf-8")
    return path


def test_quoting_nulls_and_unicode(tmp_path: Path, dsql_url: str, state: str, table: str,
                                   conn: psycopg.Connection[Any]) -> None:
    data = tmp_path / "people.csv"
    data.write_text(
        'ID,Name,qty,"note"\n'  # a header's case need not match the table's
        '1,"Zoë ""the"" Ñandú",3,"two\nlines"\n'
        '2,,4,""\n'            # unquoted empty: NULL; quoted empty: ''
        '3,日本語,,"a,b"\n'
        '4,"emoji 🚀",7,\n', encoding="utf-8")
    code, _, err = run("load", table, str(data), "--url", dsql_url, "--state-schema", state)
    assert code == 0, err
    assert "Loaded 4 rows" in err and "rows/s" in err
    assert rows(conn, table) == [
        (1, 'Zoë "the" Ñandú', 3, "two\nlines"), (2, None, 4, ""), (3, "日本語", None, "a,b"),
        (4, "emoji 🚀", 7, None)]


def test_tsv_without_header_with_columns(tmp_path: Path, dsql_url: str, state: str,
                                         table: str, conn: psycopg.Connection[Any]) -> None:
    data = tmp_path / "rows.tsv"
    data.write_text("x\t1\ttab\\there\n\\N\t2\tnull name\n", encoding="utf-8")
    code, _, err = run("load", table, str(data), "--no-header", "--columns", "name,id,note",
                       "--url", dsql_url, "--state-schema", state)
    assert code == 0, err
    assert rows(conn, table) == [(1, "x", None, "tab\there"), (2, None, None, "null name")]


def test_batches_stay_within_the_row_limit(tmp_path: Path, dsql_url: str, state: str,
                                           table: str, conn: psycopg.Connection[Any],
                                           raw_url: str) -> None:
    data = numbered(tmp_path / "n.csv", 7000)
    code, out, err = run("load", table, str(data), "--url", dsql_url, "--state-schema", state,
                         "--log-format", "json")
    assert code == 0, err
    assert len(rows(conn, table)) == 7000
    with psycopg.connect(raw_url) as raw:
        sizes = [r[0] for r in raw.execute(
            f'SELECT rows FROM "{state}".load_batches ORDER BY start_offset').fetchall()]
    assert sum(sizes) == 7000 and max(sizes) <= 2995 and len(sizes) == 3
    assert '"rows": 7000' in out
    # the same load again: nothing to do
    code, _, err = run("load", table, str(data), "--url", dsql_url, "--state-schema", state)
    assert code == 0 and "Nothing to do" in err
    assert len(rows(conn, table)) == 7000


def test_a_type_error_names_file_line_and_column(tmp_path: Path, dsql_url: str, state: str,
                                                 table: str,
                                                 conn: psycopg.Connection[Any]) -> None:
    data = tmp_path / "bad.csv"
    good = "".join(f'{i},"n{i}",{i},"a\nb"\n' for i in range(1, 6))
    data.write_text("id,name,qty,note\n" + good + '6,"n6",many,x\n7,n7,7,x\n',
                    encoding="utf-8")
    code, _, err = run("load", table, str(data), "--url", dsql_url, "--state-schema", state,
                       "--batch-rows", "4", "--parallel", "1")
    assert code == 1
    # line 12 of the file: the header, five records of two lines each, then the bad one
    assert f"{data}:12: column qty:" in err and 'invalid input syntax for type integer' in err
    assert "rolled back" in err
    # the batch holding the bad row left nothing behind; the one before it is whole
    assert [r[0] for r in rows(conn, table)] == [1, 2, 3, 4]
    # fixed, the same command resumes: every row once
    data.write_text("id,name,qty,note\n" + good + '6,"n6",66,x\n7,n7,7,x\n', encoding="utf-8")
    code, _, err = run("load", table, str(data), "--url", dsql_url, "--state-schema", state,
                       "--batch-rows", "4", "--parallel", "1")
    assert code == 0, err
    assert "resuming" in err and "still match" in err
    assert [r[0] for r in rows(conn, table)] == [1, 2, 3, 4, 5, 6, 7]


def test_a_changed_file_is_refused(tmp_path: Path, dsql_url: str, state: str, table: str,
                                   conn: psycopg.Connection[Any]) -> None:
    data = tmp_path / "c.csv"
    data.write_text("id,name,qty,note\n1,a,1,x\n2,b,oops,x\n", encoding="utf-8")
    args = ("load", table, str(data), "--url", dsql_url, "--state-schema", state,
            "--batch-rows", "1")
    assert run(*args)[0] == 1
    data.write_text("id,name,qty,note\n9,z,1,x\n2,b,2,x\n", encoding="utf-8")
    code, _, err = run(*args)
    assert code == 5 and "changed since an earlier run" in err and "--restart" in err
    assert [r[0] for r in rows(conn, table)] == [1]


def test_missing_table_and_column(tmp_path: Path, dsql_url: str, state: str,
                                  table: str) -> None:
    data = tmp_path / "m.csv"
    data.write_text("id,colour\n1,red\n", encoding="utf-8")
    code, _, err = run("load", "no_such_table", str(data), "--url", dsql_url,
                       "--state-schema", state)
    assert code == 1 and "table no_such_table does not exist" in err
    code, _, err = run("load", table, str(data), "--url", dsql_url, "--state-schema", state)
    assert code == 1 and "the file's header" in err and "colour" in err
    assert "its columns: id, name, qty, note" in err
    code, _, err = run("load", table, str(tmp_path / "absent.csv"), "--url", dsql_url)
    assert code == 1 and "absent.csv: cannot read" in err
    code, _, err = run("load", table, str(tmp_path / "data.bin"), "--url", dsql_url)
    assert code == 2 and "--format" in err


def test_sigkill_mid_load_then_resume(tmp_path: Path, dsql_url: str, raw_url: str, state: str,
                                      table: str, conn: psycopg.Connection[Any]) -> None:
    total = 30_000
    data = numbered(tmp_path / "big.csv", total)
    command = [sys.executable, "-m", "dsql_migrate", "load", table, str(data), "--url",
               dsql_url, "--state-schema", state, "--batch-rows", "200", "--parallel", "3"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    kills = 0
    for _ in range(3):
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        seen = _loaded(raw_url, state)
        deadline = time.monotonic() + 60
        # kill once a few more batches committed in this run
        while time.monotonic() < deadline and proc.poll() is None \
                and _loaded(raw_url, state) < seen + 5:
            time.sleep(0.05)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
    assert kills >= 1, "the load finished before it could be killed"
    assert len(rows(conn, table)) < total
    code, _, err = run("load", table, str(data), "--url", dsql_url, "--state-schema", state)
    assert code == 0, err
    assert "resuming" in err
    loaded = rows(conn, table)
    expected = [(i, f"name {i}", i % 97, f'line one\nline, two "{i}"')
                for i in range(1, total + 1)]
    assert loaded == expected  # every row of the file, once (the primary key forbids twice)


def _loaded(raw_url: str, state: str) -> int:
    with psycopg.connect(raw_url, autocommit=True) as raw:
        try:
            row = raw.execute(f'SELECT count(*) FROM "{state}".load_batches').fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
        return int(row[0]) if row else 0


def test_help_is_one_line() -> None:
    code, out, _ = run("--help")
    assert code == 0
    assert "load" in out and "Bulk-load a CSV/TSV/Parquet file" in out


def test_a_batch_over_the_byte_limit_is_split(tmp_path: Path, dsql_url: str, state: str,
                                              table: str, conn: psycopg.Connection[Any]) -> None:
    """The emulator's byte limit lowered for these connections: the first batches meet 54000
    and are halved until they fit; every row arrives once."""
    from dsql_migrate.load import LoadRequest, run_load
    from dsql_migrate.load.source import get_format
    from dsql_migrate.profiles import CURRENT

    data = numbered(tmp_path / "wide.csv", 2000)

    def connect() -> psycopg.Connection[Any]:
        connection = psycopg.connect(dsql_url, autocommit=True)
        connection.execute("SET dsql.byte_limit = '40000'")
        return connection
    result = run_load(LoadRequest(table=table, location=str(data), format=get_format("csv"),
                                  parallel=2), connect, limits=CURRENT.limits,
                      state_schema=state)
    assert result.splits > 0 and result.rows == 2000
    assert [r[0] for r in rows(conn, table)] == list(range(1, 2001))


def test_parquet_with_nulls_unicode_and_resume(tmp_path: Path, dsql_url: str, raw_url: str,
                                               state: str, table: str,
                                               conn: psycopg.Connection[Any]) -> None:
    pa = pytest.importorskip("pyarrow")
    parquet = pytest.importorskip("pyarrow.parquet")
    count = 5000
    data = tmp_path / "rows.parquet"
    parquet.write_table(pa.table({
        "id": list(range(1, count + 1)),
        "name": [None if i % 7 == 0 else f'Zoë "{i}", 日本' for i in range(1, count + 1)],
        "qty": [None if i % 5 == 0 else i for i in range(1, count + 1)],
        "note": ["" if i % 3 == 0 else f"two\nlines {i}" for i in range(1, count + 1)],
    }), data, row_group_size=1000)
    args = ("load", table, str(data), "--url", dsql_url, "--state-schema", state,
            "--batch-rows", "700", "--parallel", "2")
    code, _, err = run(*args)
    assert code == 0, err
    assert f"Loaded {count:,} rows" in err
    expected = [(i, None if i % 7 == 0 else f'Zoë "{i}", 日本', None if i % 5 == 0 else i,
                 "" if i % 3 == 0 else f"two\nlines {i}") for i in range(1, count + 1)]
    assert rows(conn, table) == expected
    # forget a few batches and their rows, as a kill would leave it: the rest loads once
    with psycopg.connect(raw_url, autocommit=True) as raw:
        gone = raw.execute(
            f'DELETE FROM "{state}".load_batches WHERE start_offset >= 2100 '
            "RETURNING start_offset, end_offset").fetchall()
        for start, end in gone:
            raw.execute(f"DELETE FROM {table} WHERE id > %s AND id <= %s", (start, end))
        raw.execute(f"UPDATE \"{state}\".loads SET status = 'running'")
    assert gone
    code, _, err = run(*args)
    assert code == 0, err
    assert "resuming" in err
    assert rows(conn, table) == expected


def test_a_parquet_type_error_names_the_row(tmp_path: Path, dsql_url: str, state: str,
                                            table: str, conn: psycopg.Connection[Any]) -> None:
    pa = pytest.importorskip("pyarrow")
    parquet = pytest.importorskip("pyarrow.parquet")
    data = tmp_path / "bad.parquet"
    parquet.write_table(pa.table({"id": [1, 2, 3], "qty": ["4", "x", "6"]}), data)
    code, _, err = run("load", table, str(data), "--url", dsql_url, "--state-schema", state)
    assert code == 1
    assert f"{data}: row 2: column qty:" in err and "invalid input syntax" in err
    assert rows(conn, table) == []


def test_a_second_run_of_the_same_load_exits_4(tmp_path: Path, dsql_url: str, state: str,
                                               table: str) -> None:
    from dsql_migrate.load.state import LoadStore, load_key
    from dsql_migrate.runner import Session, StateStore
    from dsql_migrate.runner.lock import LeaseLock

    data = numbered(tmp_path / "n.csv", 10)
    store = StateStore(state)
    session = Session(lambda: psycopg.connect(dsql_url, autocommit=True))
    try:
        LoadStore(store).ensure(session)
        key = load_key(table, str(data.resolve()),
                       {"format": "csv", "header": True, "columns": None})
        lock = LeaseLock(store, session, name=key)
        lock.acquire()
        code, _, err = run("load", table, str(data), "--url", dsql_url, "--state-schema", state)
        assert code == 4 and "another runner holds the lock" in err
        lock.release()
        code, _, err = run("load", table, str(data), "--url", dsql_url, "--state-schema", state)
        assert code == 0, err
    finally:
        session.close()
