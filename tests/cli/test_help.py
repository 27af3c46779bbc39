"""``dsql-migrate --help`` lists the commands from the registry's kept short help, without
importing them (issue 18: start-up); these tests keep the kept text and the real one equal."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from dsql_migrate.cli import COMMANDS
from dsql_migrate.cli._common import DsqlMigrateGroup


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
        "dsql_migrate.cli._common"}
