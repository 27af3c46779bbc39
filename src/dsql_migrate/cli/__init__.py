"""The ``dsql-migrate`` command line: argument handling and calls into the library, nothing else."""

from __future__ import annotations

from pathlib import Path

import click

from .. import __version__
from ._common import AppContext, DsqlMigrateGroup, configure_logging
from .apply import apply, status, unlock_command
from .demo import demo
from .inspect import inspect
from .lint import lint
from .local import local
from .migrations import COMMANDS as MIGRATION_COMMANDS
from .plan import plan
from .sql import sql


@click.group(cls=DsqlMigrateGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="dsql-migrate")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Configuration file (default: dsql-migrate.toml or pyproject.toml found upwards).",
)
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, verbose: int) -> None:
    """DSQL-safe schema migrations for Amazon Aurora DSQL.

    Targets: --url, then $DSQL_MIGRATE_URL, then 'url' in the config file, then the local
    emulator in .dsql-migrate/local (started on demand).
    """
    configure_logging(verbose)
    ctx.obj = AppContext(config_path=config_path, verbose=verbose)


main.add_command(lint)
main.add_command(local)
main.add_command(sql)
main.add_command(apply)
main.add_command(status)
main.add_command(unlock_command)
main.add_command(plan)
main.add_command(inspect)
main.add_command(demo)
for _command in MIGRATION_COMMANDS: main.add_command(_command)  # noqa: E701

__all__ = ["main"]
