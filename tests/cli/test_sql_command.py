from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path

import pytest

from _support import run


def test_read_only_query_as_table(dsql_url: str) -> None:
    code, out, _ = run("sql", "--url", dsql_url, "select 1 as one, null as nothing")
    assert code == 0
    assert "one" in out and "nothing" in out and "NULL" in out and "(1 row)" in out


def test_write_needs_the_flag_and_commits_all_or_nothing(dsql_url: str) -> None:
    table = f"t_{uuid.uuid4().hex[:8]}"
    code, _, err = run("sql", "--url", dsql_url, f"create table {table} (id int primary key)")
    assert code == 1
    assert "read-only" in err and "--write" in err
    assert run("sql", "--url", dsql_url, "--write",
               f"create table {table} (id int primary key)")[0] == 0
    # the second statement fails: the first must not be committed
    code, _, err = run("sql", "--url", dsql_url, "--write",
                       f"insert into {table} values (1)", f"insert into {table} values (1)")
    assert code == 1
    assert "statement 2" in err and "23505" in err and "nothing was committed" in err
    code, out, _ = run("sql", "--url", dsql_url, "--format", "json",
                       f"select count(*) as n from {table}")
    assert json.loads(out)[0]["rows"] == [[0]]


def test_write_attempt_in_read_only_mode_is_refused(dsql_url: str) -> None:
    code, _, err = run("sql", "--url", dsql_url, "select 1", "create table nope_ro (a int)")
    assert code == 1
    assert err.startswith("error: statement 2 writes")


@pytest.mark.parametrize("smuggled", [
    ["select 1; commit; delete from {t}"],
    ["select 1", "commit", "delete from {t}"],
    ["set transaction read write", "delete from {t}"],
    ["set transaction_read_only = off; delete from {t}"],
    ["rollback; delete from {t}"],
    ["end", "delete from {t}"],
])
def test_read_only_mode_cannot_be_left(dsql_url: str, smuggled: list[str]) -> None:
    """A read-only run must not end its transaction (the DELETE then ran in autocommit) nor make
    it read-write before its first query (PostgreSQL allows that)."""
    table = f"ro_{uuid.uuid4().hex[:8]}"
    assert run("sql", "--url", dsql_url, "--write",
               f"create table {table} (id int primary key)")[0] == 0
    assert run("sql", "--url", dsql_url, "--write", f"insert into {table} values (1)")[0] == 0
    code, _, err = run("sql", "--url", dsql_url, *[s.format(t=table) for s in smuggled])
    assert code != 0, err
    assert err.startswith("error: statement "), err
    assert "Traceback" not in err
    _, out, _ = run("sql", "--url", dsql_url, "--format", "json", f"select count(*) from {table}")
    assert json.loads(out)[0]["rows"] == [[1]]


def test_write_mode_keeps_all_or_nothing(dsql_url: str) -> None:
    """A COMMIT among --write statements would commit the ones before it even when a later one
    fails: transaction control is refused before anything runs."""
    table = f"rw_{uuid.uuid4().hex[:8]}"
    assert run("sql", "--url", dsql_url, "--write",
               f"create table {table} (id int primary key)")[0] == 0
    code, _, err = run("sql", "--url", dsql_url, "--write", f"insert into {table} values (1)",
                       "commit", f"insert into {table} values (1)")
    assert code == 2 and "statement 2" in err and "COMMIT" in err, err
    _, out, _ = run("sql", "--url", dsql_url, "--format", "json", f"select count(*) from {table}")
    assert json.loads(out)[0]["rows"] == [[0]]


def test_several_statements_in_one_argument_run_one_by_one(dsql_url: str) -> None:
    code, out, _ = run("sql", "--url", dsql_url, "--format", "json", "select 1 as a; select 2 as b")
    assert code == 0
    assert [r["rows"] for r in json.loads(out)] == [[[1]], [[2]]]


def test_json_output_is_machine_readable(dsql_url: str) -> None:
    code, out, _ = run("sql", "--url", dsql_url, "--format", "json",
                       "select 1 as a, 'x'::text as b, 1.5::numeric as c", "select now() as t")
    assert code == 0
    first, second = json.loads(out)
    assert first["columns"] == ["a", "b", "c"]
    assert first["rows"] == [[1, "x", "1.5"]]
    assert first["status"] == "SELECT 1"
    assert isinstance(second["rows"][0][0], str)


def test_sql_error_has_position(dsql_url: str) -> None:
    code, _, err = run("sql", "--url", dsql_url, "select 1,\n  nope_col\nfrom pg_class")
    assert code == 1
    assert "statement 1, line 2, column 3" in err and "42703" in err


def test_unreachable_url_is_one_line_exit_1() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://admin:topsecret@127.0.0.1:{port}/postgres"
    code, out, err = run("sql", "--url", url, "select 1")
    assert code == 1
    assert out == ""
    first_line = err.splitlines()[0]
    assert first_line == f"error: could not connect to 127.0.0.1:{port}: connection refused"
    assert "topsecret" not in err


def test_url_from_environment(
    dsql_url: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DSQL_MIGRATE_URL", dsql_url)
    code, out, _ = run("sql", "--format", "json", "select 7 as n")
    assert code == 0 and json.loads(out)[0]["rows"] == [[7]]


def test_url_from_config_file(dsql_url: str, workdir: Path) -> None:
    (workdir / "dsql-migrate.toml").write_text(f'url = "{dsql_url}"\n')
    code, out, _ = run("sql", "--format", "json", "select 8 as n")
    assert code == 0 and json.loads(out)[0]["rows"] == [[8]]


def test_broken_config_file_is_exit_2(workdir: Path) -> None:
    (workdir / "dsql-migrate.toml").write_text("url = \n")
    code, _, err = run("sql", "select 1")
    assert code == 2 and "dsql-migrate.toml" in err and "invalid TOML" in err
