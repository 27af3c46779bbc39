"""The ``dsql-migrate`` click group (imported only by the commands that are not fast-pathed:
``cli.run`` lints without importing click, see ``cli/_fast.py``)."""

from __future__ import annotations

from pathlib import Path

import click

from .. import __version__
from . import COMMANDS
from ._common import AppContext, DsqlMigrateGroup, configure_logging


@click.group(
    cls=DsqlMigrateGroup,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
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


__all__ = ["main"]
