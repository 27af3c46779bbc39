"""``dsql-migrate --help`` lists the commands from the registry's kept short help, without
importing them (issue 18: start-up); these tests keep the kept text and the real one equal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from dsql_migrate.cli import COMMANDS
from dsql_migrate.cli._common import DsqlMigrateGroup, ini_target_url
from dsql_migrate.errors import ConfigError


def _group() -> DsqlMigrateGroup:
    """A fresh group (``main`` keeps the commands it has imported)."""
    return DsqlMigrateGroup(name="dsql-migrate", lazy_commands=COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_kept_short_help_is_the_commands_own(name: str) -> None:
    group = _group()
    command = group.get_command(click.Context(group), name)
    assert command is not None and not command.hidden and not command.deprecated
    assert COMMANDS[name][1] == command.get_short_help_str(limit=10**6), (
        f"update the short help of {name!r} in dsql_migrate/cli/__init__.py COMMANDS")


@pytest.mark.parametrize("width", [40, 80, 120, 200])
def test_listing_without_imports_equals_clicks_own(width: int) -> None:
    lazy, loaded = _group(), _group()
    for name in COMMANDS:
        loaded.get_command(click.Context(loaded), name)

    def listing(group: DsqlMigrateGroup) -> str:
        ctx = click.Context(group, terminal_width=width, max_content_width=width)
        return group.get_help(ctx)

    assert "Commands:" in listing(lazy)
    assert listing(lazy) == listing(loaded)
    assert not lazy.commands  # listed without importing a single command


def _modules_after(args: list[str]) -> set[str]:
    """The modules a fresh ``dsql-migrate ARGS`` process has imported when it exits."""
    code = ("import atexit, json, sys\n"
            "atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr))\n"
            "from dsql_migrate.cli import main\n"
            f"main({args!r}, prog_name='dsql-migrate')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_help_imports_no_command_and_no_database_library() -> None:
    modules = _modules_after(["--help"])
    heavy = {"psycopg", "sqlalchemy", "alembic", "pglast", "dsql_migrate.local"}
    assert not heavy & modules
    assert not {m for m in modules if m.startswith("dsql_migrate.cli.")} - {
        "dsql_migrate.cli._common", "dsql_migrate.cli._main", "dsql_migrate.cli._plain"}


def test_status_imports_neither_alembic_nor_sqlalchemy(dsql_url: str) -> None:
    modules = _modules_after(["status", "--url", dsql_url])
    assert not {"sqlalchemy", "alembic", "dsql_migrate.cli.migrations"} & modules


def test_ini_target_url_reads_alembic_ini_as_alembic_does(tmp_path: Path) -> None:
    ini = tmp_path / "alembic.ini"
    ini.write_text("[alembic]\nscript_location = %(here)s/migrations\n"
                   "sqlalchemy.url = postgresql+psycopg://admin@h:5432/postgres\n")
    assert ini_target_url(ini) == "postgresql://admin@h:5432/postgres"
    ini.write_text("[alembic]\nsqlalchemy.url = auroradsql+psycopg://admin@%(here)s\n")
    assert ini_target_url(ini) == f"postgresql://admin@{tmp_path.as_posix()}"
    ini.write_text("[alembic]\nsqlalchemy.url = driver://user:pass@localhost/dbname\n")
    assert ini_target_url(ini) is None  # Alembic's placeholder
    assert ini_target_url(tmp_path / "missing.ini") is None


@pytest.mark.parametrize("text", ["[loggers]\nkeys = root\n", "no section header\n"])
def test_ini_without_an_alembic_section_is_a_clear_error(tmp_path: Path, text: str) -> None:
    ini = tmp_path / "alembic.ini"
    ini.write_text(text)
    with pytest.raises(ConfigError, match=r"alembic\.ini"):
        ini_target_url(ini)
