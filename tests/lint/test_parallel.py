"""Linting a large script in two processes (``workers=2``, what the command does): the same
diagnostics in the same order as one process, including what looks across statements
(transaction blocks, counts, suppressions, types created earlier in the script)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dsql_migrate.lint import REGISTRY, LintSettings, _parallel, engine, lint_script
from dsql_migrate.profiles import CLASSIC, CURRENT, Profile

SAMPLES = Path(__file__).resolve().parents[1] / "convert" / "samples"
#: one of every kind of trouble, with names made unique per copy
TROUBLE = """\
-- dsql-migrate: ignore truncate
TRUNCATE t{i};
CREATE TYPE mood{i} AS ENUM ('a');
CREATE TABLE d{i} (id serial PRIMARY KEY, m mood{i}, tags text[], name text COLLATE "C");
CREATE INDEX ix_d{i} ON d{i} (name DESC);
BEGIN;
CREATE TABLE e{i} (a int);
INSERT INTO e{i} VALUES (1);
COMMIT;
ALTER TABLE d{i} ADD CONSTRAINT fk{i} FOREIGN KEY (id) REFERENCES e{i} (a);
SELEC broken{i};
-- dsql-migrate: ignore no_such_rule
CREATE SEQUENCE s{i} CACHE 10;
"""

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork here")


def _script(copies: int) -> str:
    return "".join(TROUBLE.format(i=i) for i in range(copies))


def _rows(script: str, workers: int, profile: Profile = CURRENT) -> list[tuple[object, ...]]:
    result = lint_script(script, LintSettings.build(profile), "x.sql", workers=workers)
    return [(d.rule, d.severity, d.line, d.column, d.message, d.suggestion, d.statement_index,
             d.statement_preview, d.fix_result, d.path) for d in result.diagnostics]


@needs_fork
@pytest.mark.parametrize("profile", [CURRENT, CLASSIC], ids=lambda p: p.name)
def test_two_processes_find_what_one_finds_in_the_same_order(
        profile: Profile, monkeypatch: pytest.MonkeyPatch) -> None:
    forks: list[int] = []
    real_fork = os.fork

    def counted_fork() -> int:
        forks.append(1)
        return real_fork()

    monkeypatch.setattr(os, "fork", counted_fork)
    script = _script(250)  # 3,000 statements: above the threshold
    assert script.count(";") >= engine.PARALLEL_MIN_STATEMENTS
    one = _rows(script, 1, profile)
    assert {r[0] for r in one} >= {"parse_error", "invalid_suppression", "serial_type",
                                   "mixed_ddl_dml_transaction", "sequence_cache"}
    assert not forks
    assert _rows(script, 2, profile) == one
    assert forks == [1]


@needs_fork
def test_a_real_dump_lints_the_same_in_two_processes() -> None:
    dump = (SAMPLES / "northwind-pg_dump.sql").read_text(encoding="utf-8") * 6
    assert _rows(dump, 2) == _rows(dump, 1)


@needs_fork
def test_a_child_that_fails_leaves_its_half_to_the_parent(
        monkeypatch: pytest.MonkeyPatch) -> None:
    script = _script(200)
    one = _rows(script, 1)

    def die(fd: int, number: int, found: object) -> None:
        os._exit(3)  # as if killed: nothing written

    monkeypatch.setattr(_parallel, "_send", die)
    assert _rows(script, 2) == one


@needs_fork
def test_a_rule_bug_raises_as_in_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(p: object, ctx: object) -> object:
        raise RuntimeError("rule bug")

    rule = REGISTRY.rules["sequence_cache"]
    monkeypatch.setattr(rule, "check", broken)
    engine._dispatch.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="rule bug"):
            _rows(_script(200), 2)
    finally:
        engine._dispatch.cache_clear()


def test_small_scripts_do_not_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fork() -> int:
        raise AssertionError("forked for a small script")

    monkeypatch.setattr(os, "fork", no_fork, raising=False)
    script = _script(10)
    assert _rows(script, 2) == _rows(script, 1)


@pytest.mark.parametrize("count", [0, 1, 63, 64, 65, 2000, 16_320, 16_321, 100_000])
def test_chunks_cover_every_statement_once_in_order(count: int) -> None:
    spans = _parallel.chunks_of(count)
    assert len(spans) <= _parallel.MAX_CHUNKS  # one byte per ticket
    assert [i for start, stop in spans for i in range(start, stop)] == list(range(count))


@pytest.mark.parametrize(("cpus", "load", "workers"), [
    (2, 0.3, 2), (2, 0.99, 2), (2, 1.2, 1), (2, 4.0, 1), (1, 0.0, 1), (8, 6.5, 2), (8, 7.5, 1)])
def test_the_command_forks_only_with_an_idle_cpu(monkeypatch: pytest.MonkeyPatch, cpus: int,
                                                 load: float, workers: int) -> None:
    from dsql_migrate.cli import _lintcmd

    monkeypatch.delenv("DSQL_MIGRATE_LINT_WORKERS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    assert _lintcmd._workers() == workers


@pytest.mark.parametrize(("value", "workers"), [("1", 1), ("2", 2), (" 2 ", 2)])
def test_the_environment_can_fix_the_processes(monkeypatch: pytest.MonkeyPatch, value: str,
                                               workers: int) -> None:
    from dsql_migrate.cli import _lintcmd

    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    monkeypatch.setenv("DSQL_MIGRATE_LINT_WORKERS", value)
    assert _lintcmd._workers() == workers


@pytest.mark.parametrize("value", ["", "3", "two", "0"])
def test_a_bad_process_count_is_a_clear_error(tmp_path: Path, value: str) -> None:
    import subprocess
    import sys

    (tmp_path / "a.sql").write_text("SELECT 1;\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "dsql_migrate", "lint", "a.sql"], cwd=tmp_path,
                          env={**os.environ, "DSQL_MIGRATE_LINT_WORKERS": value},
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2, done.stderr
    assert "DSQL_MIGRATE_LINT_WORKERS" in done.stderr and "must be 1 or 2" in done.stderr
    assert "Traceback" not in done.stderr
