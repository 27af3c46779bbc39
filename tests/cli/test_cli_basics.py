from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from dsql_migrate import __version__
from dsql_migrate.cli import main


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_help_lists_commands_with_one_line_each() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("local", "sql"):
        assert f"  {command} " in result.output
    for sub in ("start", "stop", "status", "url", "serve"):
        assert f"  {sub} " in CliRunner().invoke(main, ["local", "--help"]).output


def test_unknown_command_and_flag_are_usage_errors() -> None:
    assert CliRunner().invoke(main, ["frobnicate"]).exit_code == 2
    assert CliRunner().invoke(main, ["sql", "--frob", "select 1"]).exit_code == 2
    assert CliRunner().invoke(main, ["local", "start", "--port", "0"]).exit_code == 2


def test_console_script_entry_point_runs() -> None:
    result = subprocess.run([sys.executable, "-m", "dsql_migrate", "--version"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0 and __version__ in result.stdout


def test_misspelt_config_key_stops_every_command_with_exit_2(workdir: Path) -> None:
    """``urll`` must not quietly fall back to starting a local emulator."""
    (workdir / "dsql-migrate.toml").write_text('urll = "postgresql://a@h/db"\n')
    result = CliRunner().invoke(main, ["status"])
    assert result.exit_code == 2
    assert "unknown key 'urll'" in result.stderr and "dsql-migrate.toml" in result.stderr
    assert "did you mean 'url'" in result.stderr
    assert not (workdir / ".dsql-migrate").exists()  # nothing was started


def test_an_output_path_that_cannot_be_written_is_a_usage_error(tmp_path: Path) -> None:
    """-o into a directory that does not exist: one line naming the path, exit 2, no
    traceback (explain and plan raised FileNotFoundError)."""
    script = tmp_path / "one.sql"
    script.write_text("CREATE TABLE t (id int PRIMARY KEY);\n", encoding="utf-8")
    missing = tmp_path / "no" / "such" / "dir" / "out.txt"
    for args in (["lint", str(script), "-o", str(missing)],
                 ["lint", "--fix", str(script), "-o", str(missing)],
                 ["convert", str(script), "-o", str(missing)]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert f"{missing}: cannot write" in result.stderr, result.stderr
        assert "Traceback" not in result.output
        assert not missing.exists()
