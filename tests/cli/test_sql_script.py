"""``dsql-migrate sql -f``: a script run statement by statement through the runner, on the
emulator: DDL, async jobs, DML, a failure that stops at file:line, a resume after fixing it, a
SIGKILL mid-script, a 7,000-row INSERT split, stdin."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from _support import run


@pytest.fixture
def state(raw_url: str) -> Iterator[str]:
    name = f"dm_script_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(raw_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def t(raw_url: str) -> Iterator[str]:
    """A fresh table-name prefix; every table starting with it is dropped afterwards."""
    prefix = f"s{uuid.uuid4().hex[:8]}"
    yield prefix
    with psycopg.connect(raw_url, autocommit=True) as conn:
        names = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND "
                             "tablename LIKE %s", (prefix + "%",)).fetchall()
        for (name,) in names:
            conn.execute(f'DROP TABLE IF EXISTS "{name}" CASCADE')


def script(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def count(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def steps(conn: psycopg.Connection[Any], schema: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        f'SELECT s.step, s.kind, s.status, s.attempts FROM "{schema}".steps s JOIN '
        f'"{schema}".plans p ON p.hash = s.plan_hash ORDER BY p.created_at, s.step').fetchall()


def test_ddl_async_index_and_dml_each_in_its_own_transaction(
        dsql_url: str, state: str, t: str, tmp_path: Path,
        raw_conn: psycopg.Connection[Any]) -> None:
    file = script(tmp_path / "app.sql", f"""
SET statement_timeout = 0;
CREATE TABLE {t}_a (id int PRIMARY KEY, v text);
CREATE TABLE {t}_b (id int PRIMARY KEY, a_id int);
INSERT INTO {t}_a VALUES (1, 'x'), (2, 'y'), (3, 'é');
CREATE INDEX ASYNC {t}_a_v ON {t}_a (v);
ALTER TABLE {t}_b ADD CONSTRAINT {t}_fk FOREIGN KEY (a_id) REFERENCES {t}_a (id) NOT VALID;
ALTER TABLE ASYNC {t}_b VALIDATE CONSTRAINT {t}_fk;
BEGIN;
INSERT INTO {t}_b VALUES (1, 1);
UPDATE {t}_a SET v = 'z' WHERE id = 1;
COMMIT;
""")
    code, _, err = run("sql", "-f", file, "--url", dsql_url, "--state-schema", state)
    assert code == 0, err
    assert "skipped SET statement_timeout" in err
    assert f"{file}: 7 step(s) run" in err
    assert raw_conn.execute(f"SELECT indisvalid FROM pg_index WHERE indexrelid = "
                            f"'{t}_a_v'::regclass").fetchone() == (True,)
    assert raw_conn.execute("SELECT convalidated FROM pg_constraint WHERE conname = %s",
                            (f"{t}_fk",)).fetchone() == (True,)
    assert raw_conn.execute(f"SELECT v FROM {t}_a ORDER BY id").fetchall() == [
        ("z",), ("y",), ("é",)]
    assert [(s[1], s[2]) for s in steps(raw_conn, state)] == [
        ("ddl", "done"), ("ddl", "done"), ("dml", "done"), ("async_index", "done"),
        ("ddl", "done"), ("async_validate", "done"), ("dml", "done")]
    # the same command again: everything was committed, nothing runs twice
    code, _, err = run("sql", "-f", file, "--url", dsql_url, "--state-schema", state)
    assert code == 0 and "nothing to do" in err
    assert count(raw_conn, f"{t}_b") == 1


def test_a_failure_stops_at_file_line_and_a_fixed_rerun_resumes_after_the_committed(
        dsql_url: str, state: str, t: str, tmp_path: Path,
        raw_conn: psycopg.Connection[Any]) -> None:
    path = tmp_path / "load.sql"
    good = f"INSERT INTO {t} VALUES (2, 'two')"
    text = (f"CREATE TABLE {t} (id int PRIMARY KEY, v text);\n"
            f"INSERT INTO {t} VALUES (1, 'one');\n"
            f"-- a typo on the next line\n"
            f"INSERT INTO {t} VALUES (2, 'two', 'too many');\n"
            f"CREATE TABLE {t}_after (id int PRIMARY KEY);\n")
    file = script(path, text)
    code, _, err = run("sql", "-f", file, "--url", dsql_url, "--state-schema", state)
    assert code == 1
    assert f"error: {file}:4: statement 3: " in err
    assert "--from-statement 4 to skip it" in err
    assert "INSERT has more expressions than target columns" in err
    assert "sql: INSERT INTO" in err and "too many" in err  # the statement is shown
    assert "run the same command again" in err
    # nothing after it ran; what came before is committed
    assert raw_conn.execute("SELECT to_regclass(%s)", (f"{t}_after",)).fetchone() == (None,)
    assert count(raw_conn, t) == 1

    file = script(path, text.replace(f"INSERT INTO {t} VALUES (2, 'two', 'too many')", good))
    code, _, err = run("sql", "-f", file, "--url", dsql_url, "--state-schema", state)
    assert code == 0, err
    assert "resuming at statement 3 (line 4)" in err
    assert raw_conn.execute(f"SELECT id FROM {t} ORDER BY id").fetchall() == [(1,), (2,)]
    assert raw_conn.execute("SELECT to_regclass(%s) IS NOT NULL",
                            (f"{t}_after",)).fetchone() == (True,)

    # a statement that was committed and then edited: no guessing
    script(path, text.replace("(1, 'one')", "(1, 'uno')").replace(
        f"INSERT INTO {t} VALUES (2, 'two', 'too many')", good))
    code, _, err = run("sql", "-f", file, "--url", dsql_url, "--state-schema", state)
    assert code == 1 and "before statement 3 was committed by a previous run" in err
    assert "--from-statement" in err
    # appended statements run alone, after the committed ones
    file = script(path, text.replace(f"INSERT INTO {t} VALUES (2, 'two', 'too many')", good)
                  + f"INSERT INTO {t} VALUES (3, 'three');\n")
    code, _, err = run("sql", "-f", file, "--url", dsql_url, "--state-schema", state)
    assert code == 0, err
    assert count(raw_conn, t) == 3


def test_lint_refuses_illegal_statements_before_anything_runs(
        dsql_url: str, state: str, t: str, tmp_path: Path,
        raw_conn: psycopg.Connection[Any]) -> None:
    file = script(tmp_path / "bad.sql", f"CREATE TABLE {t} (id int PRIMARY KEY, v text);\n"
                  f"CREATE INDEX {t}_v ON {t} (v);\n")
    code, _, err = run("sql", "-f", file, "--url", dsql_url, "--state-schema", state)
    assert code == 1
    assert f"{file}:2:1: " in err and "nothing was run" in err
    assert raw_conn.execute("SELECT to_regclass(%s)", (t,)).fetchone() == (None,)


def test_destructive_statements_need_the_flag(
        dsql_url: str, state: str, t: str, tmp_path: Path,
        raw_conn: psycopg.Connection[Any]) -> None:
    file = script(tmp_path / "drop.sql", f"CREATE TABLE {t} (id int PRIMARY KEY);\n"
                  f"DROP TABLE {t};\n")
    code, _, err = run("sql", "-f", file, "--url", dsql_url, "--state-schema", state)
    assert code == 5 and "destructive" in err
    assert raw_conn.execute("SELECT to_regclass(%s) IS NOT NULL", (t,)).fetchone() == (True,)
    code, _, err = run("sql", "-f", file, "--url", dsql_url, "--state-schema", state,
                       "--allow-destructive")
    assert code == 0, err
    assert raw_conn.execute("SELECT to_regclass(%s)", (t,)).fetchone() == (None,)


def test_a_7000_row_insert_is_split_into_dsql_sized_transactions(
        dsql_url: str, state: str, t: str, tmp_path: Path,
        raw_conn: psycopg.Connection[Any]) -> None:
    rows = ",\n".join(f"({i}, 'row {i}')" for i in range(1, 7001))
    file = script(tmp_path / "big.sql", f"CREATE TABLE {t} (id int PRIMARY KEY, v text);\n"
                  f"INSERT INTO {t} (id, v) VALUES\n{rows};\n")
    code, _, err = run("sql", "-f", file, "--url", dsql_url, "--state-schema", state)
    assert code == 0, err
    assert "split into 3 transactions" in err
    assert count(raw_conn, t) == 7000
    assert raw_conn.execute(f"SELECT sum(id) FROM {t}").fetchone() == (7000 * 7001 // 2,)
    assert [s[1] for s in steps(raw_conn, state)] == ["ddl", "dml", "dml", "dml"]


def test_stdin(dsql_url: str, state: str, t: str, raw_conn: psycopg.Connection[Any]) -> None:
    code, _, err = run("sql", "-f", "-", "--url", dsql_url, "--state-schema", state,
                       stdin=f"CREATE TABLE {t} (id int PRIMARY KEY);\n"
                       f"INSERT INTO {t} VALUES (1), (2);\nINSERT INTO {t} VALUES (3);\n")
    assert code == 0, err
    assert "<stdin>: 3 step(s) run" in err
    assert count(raw_conn, t) == 3


def test_usage_errors(tmp_path: Path) -> None:
    code, _, err = run("sql", "-f", str(tmp_path / "missing.sql"))
    assert code == 1 and "missing.sql: cannot read" in err
    code, _, err = run("sql", "-f", "x.sql", "select 1")
    assert code == 2 and "-f runs a script" in err
    code, _, err = run("sql", "--from-statement", "3", "select 1")
    assert code == 2 and "with -f FILE" in err


# -- a SIGKILL mid-script, then the same command again -----------------------------------------


def _cli(file: str, url: str, schema: str, cwd: Path, crash: str = "") -> \
        subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSQL_MIGRATE_")}
    if crash:
        env["DSQL_MIGRATE_CRASH_AT"] = crash
    return subprocess.run(
        [sys.executable, "-m", "dsql_migrate", "sql", "-f", file, "--url", url,
         "--state-schema", schema, "--log-format", "json"],
        check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("crash", [
    "dml.before_commit:2",      # inside the transaction of the second INSERT batch
    "ddl.after_execute:2",      # the second CREATE TABLE ran, its done mark did not
    "async.after_submit:1",     # the index job was submitted, its id not recorded
    "step.after_mark_running:5",
])
def test_sigkill_mid_script_then_rerun_applies_nothing_twice(
        crash: str, dsql_url: str, state: str, t: str, tmp_path: Path,
        raw_conn: psycopg.Connection[Any]) -> None:
    rows = ",".join(f"({i})" for i in range(1, 4501))
    file = script(tmp_path / "k.sql", f"CREATE TABLE {t} (id int PRIMARY KEY);\n"
                  f"INSERT INTO {t} VALUES {rows};\n"
                  f"CREATE TABLE {t}_log (id int PRIMARY KEY, note text);\n"
                  f"CREATE INDEX ASYNC {t}_log_note ON {t}_log (note);\n"
                  f"INSERT INTO {t}_log VALUES (1, 'once');\n"
                  f"UPDATE {t}_log SET note = note || '+' WHERE id = 1;\n")
    killed = _cli(file, dsql_url, state, tmp_path, crash)
    assert killed.returncode == -9, killed.stderr
    again = _cli(file, dsql_url, state, tmp_path)
    assert again.returncode == 0, again.stderr
    assert count(raw_conn, t) == 4500
    # the UPDATE appends once: run twice, the note would read 'once++'
    assert raw_conn.execute(f"SELECT note FROM {t}_log").fetchall() == [("once+",)]
    assert raw_conn.execute(f"SELECT indisvalid FROM pg_index WHERE indexrelid = "
                            f"'{t}_log_note'::regclass").fetchone() == (True,)
    assert {s[2] for s in steps(raw_conn, state)} == {"done"}


def test_a_failing_block_names_the_line_of_its_failing_statement_and_commits_none_of_it(
        dsql_url: str, state: str, t: str, tmp_path: Path,
        raw_conn: psycopg.Connection[Any]) -> None:
    file = script(tmp_path / "block.sql", f"CREATE TABLE {t} (id int PRIMARY KEY, v text);\n"
                  "BEGIN;\n"
                  f"INSERT INTO {t} VALUES (1, 'a');\n"
                  f"UPDATE {t} SET nope = 1;\n"
                  "COMMIT;\n"
                  f"INSERT INTO {t} VALUES (2, 'b');\n")
    code, _, err = run("sql", "-f", file, "--url", dsql_url, "--state-schema", state)
    assert code == 1
    assert f"error: {file}:4: in the BEGIN ... COMMIT block at line 2 (statement 2" in err
    assert "--from-statement 6 to skip it" in err
    assert count(raw_conn, t) == 0


def test_a_copy_block_loads_the_same_rows_as_copy_itself(
        dsql_url: str, state: str, t: str, tmp_path: Path,
        raw_conn: psycopg.Connection[Any]) -> None:
    # pg_dump's text format: tabs, \N, backslash escapes (octal, hex, \t, \n, \\), UTF-8
    rows = [f"{i}\t" + ("\\N" if i % 7 == 0 else f"r{i}\\ttab\\nnl\\\\bs\\303\\251\\x41 'q'")
            + f"\t{i * 1.5}\t{{{i},{i + 1}}}\t2024-01-{i % 28 + 1:02d}" for i in range(1, 3501)]
    data = "\n".join(rows) + "\n"
    columns = "id int PRIMARY KEY, v text, n numeric(10, 2), a text, d date"
    file = script(tmp_path / "copy.sql", f"CREATE TABLE {t} ({columns});\n"
                  f"COPY public.{t} (id, v, n, a, d) FROM stdin;\n{data}\\.\n")
    code, _, err = run("sql", "-f", file, "--url", dsql_url, "--state-schema", state)
    assert code == 0, err
    assert "the COPY block's 3500 rows run as INSERT statements in 2 transaction(s)" in err
    raw_conn.execute(f"CREATE TABLE {t}_ref ({columns})")
    with raw_conn.cursor() as cur, cur.copy(f"COPY {t}_ref (id, v, n, a, d) FROM STDIN") as copy:
        copy.write(data)
    raw_conn.commit()
    diff = raw_conn.execute(f"SELECT count(*) FROM ((TABLE {t} EXCEPT ALL TABLE {t}_ref) "
                            f"UNION ALL (TABLE {t}_ref EXCEPT ALL TABLE {t})) x").fetchone()
    assert diff == (0,)
    assert count(raw_conn, t) == 3500


def test_each_script_resumes_on_its_own(
        dsql_url: str, state: str, t: str, tmp_path: Path,
        raw_conn: psycopg.Connection[Any]) -> None:
    a = script(tmp_path / "a.sql", f"CREATE TABLE {t}_a (id int PRIMARY KEY);\n"
               f"INSERT INTO {t}_a VALUES (1);\n")
    b = script(tmp_path / "b.sql", f"CREATE TABLE {t}_b (id int PRIMARY KEY);\n")
    for file in (a, b):
        assert run("sql", "-f", file, "--url", dsql_url, "--state-schema", state)[0] == 0
    code, _, err = run("sql", "-f", a, "--url", dsql_url, "--state-schema", state)
    assert code == 0 and "nothing to do" in err
    assert count(raw_conn, f"{t}_a") == 1
    # two different scripts on stdin are two scripts
    for n in (1, 2):
        code, _, err = run("sql", "-f", "-", "--url", dsql_url, "--state-schema", state,
                           stdin=f"INSERT INTO {t}_b VALUES ({n});\n")
        assert code == 0, err
    assert count(raw_conn, f"{t}_b") == 2


def test_from_statement_skips_the_ones_before_it(
        dsql_url: str, state: str, t: str, tmp_path: Path,
        raw_conn: psycopg.Connection[Any]) -> None:
    file = script(tmp_path / "skip.sql", f"CREATE TABLE {t} (id int PRIMARY KEY);\n"
                  f"INSERT INTO {t} VALUES (1, 'extra');\n"
                  f"INSERT INTO {t} VALUES (2);\n")
    code, _, err = run("sql", "-f", file, "--url", dsql_url, "--state-schema", state)
    assert code == 1 and "--from-statement 3 to skip it" in err
    code, _, err = run("sql", "-f", file, "--url", dsql_url, "--state-schema", state,
                       "--from-statement", "3")
    assert code == 0, err
    assert raw_conn.execute(f"SELECT id FROM {t}").fetchall() == [(2,)]
    code, _, err = run("sql", "-f", file, "--url", dsql_url, "--state-schema", state)
    assert code == 0 and "nothing to do" in err
