"""``dsql-migrate mcp``: serve dsql-migrate's tools to an AI agent over stdio (MCP)."""

from __future__ import annotations

from pathlib import Path

import click

from ..local import DEFAULT_DIR
from ._common import AppContext, note


@click.command("mcp")
@click.option("--url", help="Target URL (default: $DSQL_MIGRATE_URL, config, local emulator).")
@click.option("--profile", help="Capability profile: current or classic (default: config).")
@click.option("--allow-writes", is_flag=True,
              help="Add the transact tool: statements outside a plan (off by default).")
@click.option("--max-rows", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Most rows readonly_query returns.")
@click.option("--scratch-url", envvar="DSQL_MIGRATE_SCRATCH_URL",
              help="Server where a desired .sql schema is loaded for plan (default: the local "
              "emulator).")
@click.option("--state-schema", help="Schema of the runner's state tables.")
@click.option("--local-dir", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_DIR, envvar="DSQL_MIGRATE_LOCAL_DIR", show_default=True,
              help="State directory of the local emulator.")
@click.pass_obj
def mcp(app: AppContext, url: str | None, profile: str | None, allow_writes: bool,
        max_rows: int, scratch_url: str | None, state_schema: str | None,
        local_dir: Path) -> None:
    """Run an MCP server on stdio: lint, schema, read-only queries, plan/apply, explain.

    Configure it in an agent (Claude, Cursor, VS Code) as the command 'dsql-migrate mcp'; see
    docs/mcp.md. Writes outside a plan need --allow-writes.
    """
    from ..connect import resolve_target
    from ..mcp.server import run_stdio  # the SDK is imported only when the server runs
    from ..mcp.service import Service, ServiceSettings

    target = resolve_target(url, app.config, local_dir=local_dir)
    settings = ServiceSettings(allow_writes=allow_writes, max_rows=max_rows,
                               scratch_url=scratch_url, local_dir=local_dir,
                               state_schema=state_schema)
    service = Service(app.config, target, app.config.profile(profile), settings, on_start=note)
    note(f"dsql-migrate MCP server on stdio: target {target.display}"
         + (", writes allowed (transact)" if allow_writes else ", read-only outside plans"))
    run_stdio(service)
