"""The click-free path of ``dsql-migrate lint`` (cli/_fast.py) against click's: same output,
same exit codes, and the modules a lint run imports (issue 18: start-up; no timings here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dsql_migrate.alembic import example_revision
from dsql_migrate.cli._fast import parse

BAD = "CREATE INDEX ix ON t (a);\nTRUNCATE t;\n"
CLEAN = "CREATE INDEX ASYNC ix ON t (a);\n"


def _fast(args: list[str], cwd: Path, stdin: str | None = None) -> tuple[int, str, str]:
    """``python -m dsql_migrate ARGS``: the console script's own dispatch."""
    done = subprocess.run([sys.executable, "-m", "dsql_migrate", *args], cwd=cwd, input=stdin,
                          capture_output=True, text=True, check=False)
    return done.returncode, done.stdout, done.stderr


def _click(args: list[str], cwd: Path, stdin: str | None = None) -> tuple[int, str, str]:
    """The same command line through the click group only."""
    code = ("import sys\nfrom dsql_migrate.cli import main\n"
            f"main({args!r}, prog_name='dsql-migrate')\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, input=stdin,
                          capture_output=True, text=True, check=False)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "bad.sql").write_text(BAD, encoding="utf-8")
    (tmp_path / "clean.sql").write_text(CLEAN, encoding="utf-8")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a.sql").write_text(BAD, encoding="utf-8")
    (tmp_path / "empty").mkdir()
    (tmp_path / "quiet.toml").write_text('[lint]\ndisable = ["truncate"]\n', encoding="utf-8")
    (tmp_path / "wrong.toml").write_text('[lint]\nenabel = ["truncate"]\n', encoding="utf-8")
    (tmp_path / "good_rev.py").write_text(example_revision.text("DELETE FROM account"))
    (tmp_path / "bad_rev.py").write_text(example_revision.text(example_revision.REFUSED))
    (tmp_path / "other.py").write_text("x = 1\n")
    return tmp_path


SAME = [
    ["lint", "clean.sql"],
    ["lint", "bad.sql"],
    ["lint", "bad.sql", "clean.sql", "dir"],
    ["lint", "--format", "json", "bad.sql"],
    ["lint", "--format=sarif", "bad.sql"],
    ["lint", "bad.sql", "--format", "github"],
    ["lint", "--profile", "classic", "bad.sql"],
    ["lint", "--profile", "nonsense", "bad.sql"],
    ["lint", "--disable", "truncate", "--enable", "truncate", "bad.sql"],
    ["lint", "--enable", "no_such_rule", "bad.sql"],
    ["lint", "missing.sql"],
    ["lint", "empty"],
    ["lint"],
    ["lint", "-"],
    ["--config", "quiet.toml", "lint", "bad.sql"],
    ["--config=wrong.toml", "lint", "bad.sql"],
    ["--config", "missing.toml", "lint", "bad.sql"],
    ["-vv", "--verbose", "lint", "bad.sql"],
    ["lint", "lint"],
    ["ci", "lint-revisions", "good_rev.py"],
    ["ci", "lint-revisions", "good_rev.py", "bad_rev.py", "other.py"],
    ["ci", "lint-revisions", "--profile=classic", "bad_rev.py"],
    ["--config", "quiet.toml", "ci", "lint-revisions", "bad_rev.py"],
    ["ci", "lint-revisions"],
]


@pytest.mark.parametrize("args", SAME, ids=" ".join)
def test_fast_path_answers_as_click_does(project: Path, args: list[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    assert parse(args) is not None  # each of these is run without click
    fast = _fast(args, project, stdin=BAD)
    assert fast == _click(args, project, stdin=BAD)
    assert "Traceback" not in fast[2]


FALLBACK = [
    ["--help"],
    ["lint", "--help"],
    ["lint", "-h"],
    ["lint", "--fix", "bad.sql"],
    ["lint", "-o", "out.txt", "bad.sql"],
    ["lint", "--list-rules"],
    ["lint", "--format", "yaml", "bad.sql"],
    ["lint", "--format"],
    ["lint", "--profile", "--format", "json", "bad.sql"],
    ["lint", "--frobnicate", "bad.sql"],
    ["lint", "--", "bad.sql"],
    ["--config", "dir", "lint", "bad.sql"],
    ["--config"],
    ["--version"],
    ["local", "--help"],
    ["-x", "lint", "bad.sql"],
    ["ci", "lint-revisions", "missing.py"],
    ["ci", "lint-revisions", "dir"],
    ["ci", "lint-revisions", "-"],
    ["ci", "lint-revisions", "--help"],
    ["ci", "lint-revisions", "--format", "json", "good_rev.py"],
    ["ci", "comment"],
    ["ci"],
]


@pytest.mark.parametrize("args", FALLBACK, ids=" ".join)
def test_everything_else_goes_through_click(project: Path, args: list[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    assert parse(args) is None
    assert _fast(args, project)[0] == _click(args, project)[0]


def _modules_after_lint(cwd: Path, *args: str, command: tuple[str, ...] = ("lint",)
                        ) -> set[str]:
    code = ("import atexit, json, sys\n"
            "atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr))\n"
            f"sys.argv = ['dsql-migrate', *{list(command)!r}, *{list(args)!r}]\n"
            "from dsql_migrate.cli import run\nrun()\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, check=False)
    assert done.returncode in (0, 1, 3), done.stderr
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_lint_imports_only_what_linting_needs(project: Path) -> None:
    modules = _modules_after_lint(project, "bad.sql", "clean.sql")
    assert "dsql_migrate.lint.engine" in modules  # it did lint
    for heavy in ("click", "rich", "psycopg", "sqlalchemy", "alembic", "dsql_migrate.local",
                  "dsql_migrate.runner", "pglast.stream", "pglast.printers", "pglast.visitors",
                  "pglast.enums.nodes"):
        assert heavy not in modules, heavy


#: standard modules whose import (with what they import) costs more than a one-statement lint:
#: a plain lint without a configuration file imports none of them (issue 18: start-up)
STDLIB_NOT_NEEDED = ("dataclasses", "inspect", "logging", "pathlib", "tomllib", "difflib",
                     "textwrap", "urllib.parse")


def test_plain_lint_imports_no_costly_standard_module(project: Path) -> None:
    modules = _modules_after_lint(project, "bad.sql", "clean.sql")
    assert "dsql_migrate.lint.engine" in modules  # it did lint
    assert not set(STDLIB_NOT_NEEDED) & modules
    # the opt-in tenancy rules load their definition (the audit module) only when they run
    assert "dsql_migrate.audit.tenancy" not in modules


def test_lint_with_a_config_file_or_opt_in_rules_still_loads_them(project: Path) -> None:
    (project / "orders.sql").write_text("CREATE TABLE orders (id bigint PRIMARY KEY);\n")
    modules = _modules_after_lint(project, "--enable", "tenant_id_missing", "orders.sql",
                                  command=("--config", "quiet.toml", "lint"))
    assert {"tomllib", "pathlib", "dsql_migrate.audit.tenancy"} <= modules
    code, out, _ = _fast(["lint", "--enable", "tenant_id_missing", "--format", "json",
                          "orders.sql"], project)
    assert code == 0, out  # a warning
    assert [d["rule"] for f in json.loads(out)["files"] for d in f["diagnostics"]] == [
        "tenant_id_missing"]


def test_lint_fix_still_builds_pglast_trees(project: Path) -> None:
    """--fix (through click) loads pglast's deferred enums and node classes when it needs
    them, and the fix is made."""
    (project / "seq.sql").write_text("CREATE SEQUENCE s;\n", encoding="utf-8")
    modules = _modules_after_lint(project, "--fix", "--in-place", "seq.sql")
    assert {"click", "pglast.enums.nodes", "pglast.stream"} <= modules
    assert (project / "seq.sql").read_text() == "CREATE SEQUENCE s CACHE 1;\n"


def test_deferred_pglast_modules_are_the_complete_modules() -> None:
    code = ("from dsql_migrate.sql import parse_script\n"
            "parse_script('CREATE TABLE t (a int)')\n"
            "import sys, pglast\nfrom pglast import ast, enums\n"
            "from pglast.enums import SortByDir\n"
            "stmt = pglast.parse_sql('SELECT 1 ORDER BY 1 DESC')[0].stmt\n"
            "assert isinstance(stmt, ast.SelectStmt)\n"
            "assert stmt.sortClause[0].sortby_dir is SortByDir.SORTBY_DESC\n"
            "assert sys.modules['pglast.enums'] is enums and type(enums) is type(sys)\n"
            "assert 'SortByDir' in dir(enums)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr


def test_revision_hook_imports_no_database_driver(project: Path) -> None:
    """The offline check needs SQLAlchemy and Alembic (the revision imports them), not
    psycopg (no connection), click or rich."""
    modules = _modules_after_lint(project, "bad_rev.py", command=("ci", "lint-revisions"))
    assert "dsql_migrate.ci.revisions" in modules  # it did check
    for heavy in ("click", "rich", "psycopg", "dsql_migrate.local", "dsql_migrate.runner"):
        assert heavy not in modules, heavy
