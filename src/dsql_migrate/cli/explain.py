"""``dsql-migrate explain``: the query-plan explainability report for one query."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..local import DEFAULT_DIR
from ._common import AppContext, note
from ._plain import write_file


@click.command()
@click.argument("query")
@click.option("--url", help="Target URL (default: $DSQL_MIGRATE_URL, config, local emulator).")
@click.option("--format", "fmt", type=click.Choice(["markdown", "json"]), default="markdown",
              show_default=True, help="Report format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report to FILE instead of stdout.")
@click.option("--profile", help="Capability profile for the index advice: current or classic "
              "(default: config).")
@click.option("--local-dir", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_DIR, envvar="DSQL_MIGRATE_LOCAL_DIR", show_default=True,
              help="State directory of the local emulator.")
@click.pass_obj
def explain(app: AppContext, query: str, url: str | None, fmt: str, output: Path | None,
            profile: str | None, local_dir: Path) -> None:
    """Explain a query's plan: EXPLAIN ANALYZE, full scans, estimate errors, index advice.

    QUERY is a SELECT, or an UPDATE/DELETE (explained as the equivalent SELECT); '-' reads it
    from stdin. It runs in a read-only transaction that is rolled back.
    """
    from ..connect import connect, resolve_target
    from ..explain import explain as explain_query
    from ..explain import explainable, plan_format_for
    from ..lint import LintSettings

    text = sys.stdin.read() if query == "-" else query
    explainable(text)  # refuse INSERT, DDL and procedural code before connecting
    settings = LintSettings.build(app.config.profile(profile), app.config.section("lint"))
    target = resolve_target(url, app.config, local_dir=local_dir)
    with connect(target, on_start=note) as conn:
        report = explain_query(conn, text, settings,
                               plan_format=plan_format_for(target.kind))
    rendered = report.render(fmt)
    if output is not None:
        write_file(output, rendered)
        note(f"report written to {output}")
    else:
        click.echo(rendered, nl=False)
