"""``dsql-migrate lint``: check SQL files against DSQL's rules, optionally fix them.

The body is :func:`dsql_migrate.cli._lintcmd.run_lint`, which the fast path (``cli/_fast.py``)
runs too without importing click; this module is the click command (options, ``--help``).
"""

from __future__ import annotations

from pathlib import Path

import click

from ._common import AppContext
from ._lintcmd import FORMATS, LintArgs, run_lint


@click.command("lint")
@click.argument("paths", nargs=-1)
@click.option("--fix", is_flag=True, help="Rewrite what can be rewritten safely.")
@click.option("--profile", "profile_name",
              help="Capability profile: current or classic (default: config, else current).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="Report format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the fixed SQL (with --fix) or else the report to this file.")
@click.option("--in-place", is_flag=True, help="With --fix: rewrite the input files.")
@click.option("--enable", multiple=True, metavar="RULE", help="Enable a rule (repeatable).")
@click.option("--disable", multiple=True, metavar="RULE", help="Disable a rule (repeatable).")
@click.option("--list-rules", is_flag=True, help="List every rule id and exit.")
@click.pass_obj
def lint(
    app: AppContext, paths: tuple[str, ...], fix: bool, profile_name: str | None,
         fmt: str, output: Path | None, in_place: bool, enable: tuple[str, ...],
         disable: tuple[str, ...], list_rules: bool) -> None:
    """Check SQL against DSQL's rules, and optionally fix it."""
    args = LintArgs(paths, fix, profile_name, fmt, output, in_place, enable, disable,
                    list_rules)
    raise SystemExit(run_lint(app.config_path, args))
