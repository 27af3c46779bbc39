"""``dsql-migrate inspect``: show the live schema, one table or all of them."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table as RichTable

from ..catalog import Table, snapshot, table_as_dict
from ..connect import connect, resolve_target
from ..errors import ConfigError
from ..local import DEFAULT_DIR
from ._common import AppContext, note, stdout_console


@click.command()
@click.argument("table", required=False)
@click.option("--url", help="Target URL (default: $DSQL_MIGRATE_URL, config, local emulator).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
@click.option("--exact-counts", is_flag=True, help="Count rows exactly (one extra query).")
@click.option("--local-dir", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_DIR, envvar="DSQL_MIGRATE_LOCAL_DIR", show_default=True,
              help="State directory of the local emulator.")
@click.pass_obj
def inspect(app: AppContext, *, table: str | None, url: str | None, fmt: str, exact_counts: bool,
            local_dir: Path) -> None:
    """Print the live schema: columns, keys, constraints, indexes and row estimates."""
    target = resolve_target(url, app.config, local_dir=local_dir)
    with connect(target, autocommit=True, on_start=note) as conn:
        snap = snapshot(conn, exact_counts=exact_counts)
    if table is not None:
        found = snap.table(table)
        if found is None:
            raise ConfigError(f"no table {table!r} in the live schema",
                              hint=f"tables: {', '.join(sorted(snap.tables)) or '(none)'}")
        if fmt == "json":
            click.echo(json.dumps(table_as_dict(found), indent=2, sort_keys=True))
        else:
            _print_table(found)
        return
    if fmt == "json":
        click.echo(json.dumps(snap.as_dict(), indent=2, sort_keys=True))
        return
    for item in snap.tables.values():
        _print_table(item)
    console = stdout_console()
    for view in snap.views:
        console.print(f"view {view.schema}.{view.name}", markup=False)
    for seq in snap.sequences:
        console.print(f"sequence {seq.schema}.{seq.name} {seq.data_type} CACHE {seq.cache}"
                      + (f" (owned by {seq.owned_by})" if seq.owned_by else ""), markup=False)


def _print_table(table: Table) -> None:
    console = stdout_console()
    rows = "unknown" if table.rows is None else str(table.rows)
    exact = "" if table.row_count is not None else " (estimate)"
    console.print(f"[bold]{table.qualified}[/bold]  rows: {rows}{exact}")
    grid = RichTable("column", "type", "null", "default", "identity", header_style="bold")
    for column in table.columns:
        identity = "" if column.identity is None else (
            f"{column.identity} (cache {column.identity_cache})")
        grid.add_row(column.name, column.type, "yes" if column.nullable else "no",
                     column.default or "", identity)
    console.print(grid)
    for constraint in table.constraints:
        state = "" if constraint.validated else " NOT VALID"
        console.print(f"  {constraint.kind} {constraint.name}: {constraint.definition}{state}"
                      .replace(" NOT VALID NOT VALID", " NOT VALID"), markup=False)
    for index in table.indexes:
        state = "" if index.valid else "  [not valid: building or failed]"
        console.print(f"  index {index.definition}{state}", markup=False)
