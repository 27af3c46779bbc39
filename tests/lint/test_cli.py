from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dsql_migrate.cli import main
from dsql_migrate.lint import REGISTRY

BAD = "CREATE INDEX ix ON t (a);\nTRUNCATE t;\n"
FIXABLE = "CREATE INDEX ix ON t (a);\n"
SAFE_FIX = "CREATE SEQUENCE s;\n"
CLEAN = "CREATE INDEX ASYNC ix ON t (a);\n"


def run(tmp_path: Path, *args: str, stdin: str | None = None, config: str | None = None):
    cfg = tmp_path / "dsql-migrate.toml"
    cfg.write_text(config or "", encoding="utf-8")
    runner = CliRunner()
    return runner.invoke(main, ["--config", str(cfg), "lint", *args], input=stdin,
                         catch_exceptions=False)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_text_format_and_exit_code_1(tmp_path: Path) -> None:
    f = write(tmp_path, "a.sql", BAD)
    r = run(tmp_path, str(f))
    assert r.exit_code == 1
    assert f"{f}:1:1: error index_async: " in r.output
    assert f"{f}:2:1: error truncate: " in r.output


def test_clean_exit_0(tmp_path: Path) -> None:
    f = write(tmp_path, "a.sql", CLEAN)
    r = run(tmp_path, str(f))
    assert r.exit_code == 0, r.output
    assert "no problems found" in r.output


def test_fix_stdin_to_stdout_exit_3_with_warning(tmp_path: Path) -> None:
    r = run(tmp_path, "--fix", "-", stdin=FIXABLE)
    assert r.exit_code == 3
    assert r.stdout == "CREATE INDEX ASYNC ix ON t (a);\n"
    assert "fixed_with_warning" in r.stderr


def test_fix_safe_only_exit_0(tmp_path: Path) -> None:
    r = run(tmp_path, "--fix", "-", stdin=SAFE_FIX)
    assert r.exit_code == 0
    assert r.stdout == "CREATE SEQUENCE s CACHE 1;\n"


def test_fix_with_unfixable_exit_1_and_output_file(tmp_path: Path) -> None:
    f = write(tmp_path, "a.sql", BAD)
    out = tmp_path / "out.sql"
    r = run(tmp_path, "--fix", str(f), "-o", str(out))
    assert r.exit_code == 1
    assert out.read_text() == "CREATE INDEX ASYNC ix ON t (a);\nTRUNCATE t;\n"
    assert f.read_text() == BAD


def test_fix_in_place_over_directory(tmp_path: Path) -> None:
    a = write(tmp_path, "m/001.sql", FIXABLE)
    b = write(tmp_path, "m/sub/002.sql", CLEAN)
    write(tmp_path, "m/readme.txt", "CREATE INDEX x ON t (a);")
    r = run(tmp_path, "--fix", "--in-place", str(tmp_path / "m"))
    assert r.exit_code == 3
    assert a.read_text() == "CREATE INDEX ASYNC ix ON t (a);\n"
    assert b.read_text() == CLEAN


def test_json_schema(tmp_path: Path) -> None:
    f = write(tmp_path, "a.sql", BAD)
    r = run(tmp_path, "--format", "json", str(f))
    doc = json.loads(r.stdout)
    assert doc["schema_version"] == 1 and doc["mode"] == "lint" and doc["profile"] == "current"
    assert doc["exit_code"] == r.exit_code == 1
    d = doc["files"][0]["diagnostics"][0]
    assert set(d) == {"rule", "severity", "line", "column", "message", "suggestion",
                      "fix_result", "statement_preview"}
    assert d["fix_result"]["status"] == "fixed_with_warning"
    assert doc["summary"]["errors"] == 2 and doc["summary"]["unfixable"] == 1


def test_json_fix_carries_fixed_sql(tmp_path: Path) -> None:
    r = run(tmp_path, "--fix", "--format", "json", "-", stdin=FIXABLE)
    doc = json.loads(r.stdout)
    assert doc["files"][0]["fixed_sql"] == "CREATE INDEX ASYNC ix ON t (a);\n"
    assert doc["exit_code"] == 3


def test_sarif_shape(tmp_path: Path) -> None:
    f = write(tmp_path, "a.sql", BAD)
    r = run(tmp_path, "--format", "sarif", str(f))
    doc = json.loads(r.stdout)
    assert doc["version"] == "2.1.0" and "sarif-2.1.0" in doc["$schema"]
    run0 = doc["runs"][0]
    rules = run0["tool"]["driver"]["rules"]
    assert {x["id"] for x in rules} == set(REGISTRY.rules)
    res = run0["results"][0]
    assert rules[res["ruleIndex"]]["id"] == res["ruleId"] == "index_async"
    region = res["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 1, "startColumn": 1}
    assert res["level"] == "error"


def test_github_annotations(tmp_path: Path) -> None:
    f = write(tmp_path, "a,b.sql", "UPDATE t SET a = 1;\n")
    r = run(tmp_path, "--format", "github", str(f))
    assert r.exit_code == 0  # warnings only
    line = r.stdout.strip()
    assert line.startswith("::warning file=")
    assert "a%2Cb.sql,line=1,col=1,title=unbatched_dml::" in line


def test_profile_option_and_config(tmp_path: Path) -> None:
    f = write(tmp_path, "a.sql", "CREATE TABLE t (id bigint PRIMARY KEY, doc jsonb);\n")
    assert run(tmp_path, str(f)).exit_code == 0
    assert run(tmp_path, "--profile", "classic", str(f)).exit_code == 1
    assert run(tmp_path, str(f), config='profile = "classic"\n').exit_code == 1
    assert run(tmp_path, str(f), config='profile = "classic"\n[lint]\ndisable = ["jsonb_type"]\n'
               ).exit_code == 0


def test_config_enables_opt_in_rule_and_limits(tmp_path: Path) -> None:
    f = write(tmp_path, "a.sql", "CREATE TABLE t (id bigint PRIMARY KEY);\n")
    r = run(tmp_path, str(f), config='[lint]\nenable = ["tenant_id_missing"]\n')
    assert "tenant_id_missing" in r.output
    g = write(tmp_path, "b.sql", "CREATE INDEX ASYNC ix ON t (a, b, c);\n")
    assert run(tmp_path, str(g), config="[limits]\nkey_columns_per_index = 2\n").exit_code == 1


@pytest.mark.parametrize(
    ("args", "config", "needle"),
    [
        (["missing.sql"], "", "no such file"),
        ([], "", "no input"),
        (["--in-place", "-"], "", "--in-place needs --fix"),
        (["--profile", "future", "-"], "", "unknown profile"),
        (["-"], "[lint]\ndisable = [\"nope\"]\n", "unknown rule id"),
        (["-"], "[lint]\ncolour = 1\n", "unknown key"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], config: str, needle: str) -> None:
    r = run(tmp_path, *args, stdin="", config=config)
    assert r.exit_code == 2
    assert needle in r.output
    assert "Traceback" not in r.output


def test_suppression_with_unknown_rule_is_an_error(tmp_path: Path) -> None:
    r = run(tmp_path, "-", stdin="-- dsql-migrate: ignore truncat\nTRUNCATE t;\n")
    assert r.exit_code == 1
    assert "invalid_suppression" in r.output and "error truncate" in r.output


def test_list_rules(tmp_path: Path) -> None:
    r = run(tmp_path, "--list-rules")
    assert r.exit_code == 0
    assert "index_async" in r.output and "(opt-in)" in r.output
