"""What every command shares: error handling, the context object, output helpers."""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..config import Config, load_config
from ..errors import ConfigError, DsqlMigrateError, ExitCode
from ._plain import configure_logging, error_lines

if TYPE_CHECKING:  # rich is imported by the commands that print with it, not at start-up
    from rich.console import Console

log = logging.getLogger("dsql_migrate")


@dataclass
class AppContext:
    """Loaded once per invocation and passed to commands via ``click.pass_obj``."""

    config_path: Path | None = None
    verbose: int = 0
    _config: Config | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def stdout_console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def note(message: str) -> None:
    """A progress or status line for humans: on stderr, so stdout stays machine-readable."""
    click.echo(message, err=True)


def report_error(exc: DsqlMigrateError) -> None:
    for line in error_lines(exc):
        click.echo(line, err=True)


def database_error(exc: BaseException) -> DsqlMigrateError | None:
    """A database error no command turned into a message (a missing privilege, a limit): one
    line with the server's message and SQLSTATE, exit 1. None for anything else."""
    psycopg = sys.modules.get("psycopg")
    if psycopg is None or not isinstance(exc, psycopg.Error):
        return None
    from ..runner.retry import describe

    return DsqlMigrateError(f"the database refused: {describe(exc)}")


def ini_target_url(ini: Path) -> str | None:
    """The target ``alembic.ini`` names (its ``sqlalchemy.url``, as a plain PostgreSQL URL),
    for the commands that are not Alembic's (``status``, ``unlock``): the same database the
    migrations commands use. None without an ini, a URL or with Alembic's placeholder.

    Read as Alembic reads it (a ``ConfigParser`` with ``%(here)s``), without importing Alembic
    and SQLAlchemy, which those commands do not otherwise need (issue 18: start-up)."""
    if not ini.is_file():
        return None
    import configparser

    parser = configparser.ConfigParser({"here": ini.absolute().parent.as_posix()})
    try:
        parser.read(ini, encoding="utf-8")
        if not parser.has_section("alembic"):
            raise ConfigError(f"{ini} has no [alembic] section",
                              hint="pass --url, or -c with the project's alembic.ini")
        url = parser.get("alembic", "sqlalchemy.url", fallback=None)
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"{ini}: cannot read it: {exc}".splitlines()[0]) from None
    if not url or url.startswith("driver://"):
        return None
    scheme, sep, rest = url.partition("://")
    base = scheme.split("+", 1)[0]
    return f"{'postgresql' if base in ('postgresql', 'auroradsql') else base}{sep}{rest}"


class DsqlMigrateGroup(click.Group):
    """A click group that turns user errors into a message and an exit code, never a traceback.

    Subcommands named in ``lazy_commands`` (``name -> ("module:attribute", short help)``,
    modules relative to this package) are imported only when used, so ``dsql-migrate lint``
    does not pay for importing psycopg, SQLAlchemy and Alembic; ``--help`` lists a command not
    yet imported by its kept short help instead of importing it.
    """

    def __init__(self, *args: Any, lazy_commands: Mapping[str, tuple[str, str]] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands and cmd_name not in self.commands:
            target = self.lazy_commands[cmd_name][0]
            module_name, _, attribute = target.partition(":")
            module = importlib.import_module(module_name, package=__package__)
            command = getattr(module, attribute)
            if not isinstance(command, click.Command):  # a programming error, not a user one
                raise TypeError(f"{target} is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Click's listing, with a command not yet imported shown by its kept short help, cut
        to the width as click cuts a docstring (the listing is the same either way)."""
        rows: list[tuple[str, str | None]] = []  # (name, kept text), or None: ask the command
        for name in self.list_commands(ctx):
            loaded = self.commands.get(name)
            if loaded is not None:
                if not loaded.hidden:
                    rows.append((name, None))
            elif name in self.lazy_commands:
                rows.append((name, self.lazy_commands[name][1]))
        if not rows:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in rows)
        # a stand-in command with the kept text as its help cuts it exactly as click would
        lines = [(name, (click.Command(name, help=kept) if kept is not None
                         else self.commands[name]).get_short_help_str(limit))
                 for name, kept in rows]
        with formatter.section("Commands"):
            formatter.write_dl(lines)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DsqlMigrateError as exc:
            report_error(exc)
            ctx.exit(int(exc.exit_code))
        except Exception as exc:
            error = database_error(exc)
            if error is None:
                raise
            report_error(error)
            ctx.exit(int(error.exit_code))
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)

    def main(self, args: Sequence[str] | None = None, *a: Any, **kw: Any) -> Any:
        try:
            return super().main(args, *a, **kw)
        except DsqlMigrateError as exc:  # raised while parsing (e.g. in a callback)
            report_error(exc)
            sys.exit(int(exc.exit_code))


__all__ = [
    "AppContext",
    "DsqlMigrateGroup",
    "ExitCode",
    "configure_logging",
    "ini_target_url",
    "note",
    "report_error",
    "stderr_console",
    "stdout_console",
]
