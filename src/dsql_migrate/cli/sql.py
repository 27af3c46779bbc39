"""``dsql-migrate sql``: run statements against a target."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from ..connect import connect, resolve_target
from ..local import DEFAULT_DIR
from ..query import StatementResult, run_statements, to_jsonable
from ._common import AppContext, note, stdout_console


@click.command()
@click.argument("statements", nargs=-1, required=True)
@click.option("--url", help="Target URL (default: $DSQL_MIGRATE_URL, config, local emulator).")
@click.option("--write", is_flag=True,
              help="Run all statements in one read-write transaction (default: read-only).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Output format.")
@click.option("--local-dir", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_DIR, envvar="DSQL_MIGRATE_LOCAL_DIR", show_default=True,
              help="State directory of the local target, when that is the target.")
@click.pass_obj
def sql(app: AppContext, statements: tuple[str, ...], url: str | None, write: bool, fmt: str,
        local_dir: Path) -> None:
    """Run SQL statements: read-only by default, or in one transaction with --write."""
    target = resolve_target(url, app.config, local_dir=local_dir)
    with connect(target, on_start=note) as conn:
        results = run_statements(conn, statements, write=write)
    if fmt == "json":
        click.echo(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        _print_tables(results)


def _print_tables(results: list[StatementResult]) -> None:
    console = stdout_console()
    for result in results:
        if result.returns_rows:
            table = Table(*result.columns, show_lines=False, header_style="bold")
            for row in result.rows:
                table.add_row(*(_cell(v) for v in row))
            console.print(table)
            console.print(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})")
        else:
            console.print(result.status or "OK")


def _cell(value: object) -> Text:
    if value is None:
        return Text("NULL", style="dim")
    shown = to_jsonable(value)
    return Text(shown if isinstance(shown, str) else json.dumps(shown))
