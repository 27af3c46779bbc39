"""``dsql-migrate demo``: scaffold an example Alembic project and run it on the local emulator."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from ..alembic.demo_project import REVISIONS, write_revisions
from ..connect import conninfo_for, resolve_target
from ..runner.api import read_status
from ..runner.progress import status_text
from ._common import AppContext, note
from .apply import connection_factory
from .migrations import scaffold, upgrade_with_progress


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path),
                default=Path("dsql-migrate-demo"))
@click.option("--url", help="Run on this target instead of the demo's own local emulator.")
@click.option("--profile", help="Capability profile: current or classic.")
@click.pass_obj
def demo(app: AppContext, directory: Path, url: str | None, profile: str | None) -> None:
    """Run an example Alembic project on a local emulator."""
    started = time.monotonic()
    local_dir = directory / ".dsql-migrate" / "local"
    ini = directory / "alembic.ini"
    if ini.exists():
        note(f"{directory}: the demo project exists; running its pending revisions")
    else:
        directory.mkdir(parents=True, exist_ok=True)
        scaffold(directory, "migrations")
        written = write_revisions(directory / "migrations" / "versions")
        note(f"Created the demo project in {directory}/ with {len(written)} revisions:")
        for path, (_, (doc, _)) in zip(written, REVISIONS.items(), strict=True):
            note(f"  migrations/versions/{path.name:<32} {doc}")
    # the demo's own emulator unless --url says otherwise: never $DSQL_MIGRATE_URL or config
    url = url or "local"
    conninfo_for(resolve_target(url, app.config, local_dir=local_dir),
                 on_start=lambda message: note(message + " ..."))
    note("\n== dsql-migrate upgrade: each revision is compiled to a DSQL-safe plan and run "
         "step by step ==")
    upgrade_with_progress(app, ini, "head", url=url, local_dir=local_dir, profile=profile)
    note("\n== dsql-migrate status ==")
    data = read_status(connection_factory(app, url, local_dir))
    sys.stdout.write(status_text(data))
    note(f"\nDone in {time.monotonic() - started:.1f}s. Try next:\n"
         f"  cd {directory}\n"
         f"  dsql-migrate history                # the revisions\n"
         f"  dsql-migrate downgrade -1           # undo 0004 (another table recreation)\n"
         f"  dsql-migrate upgrade --dry-run      # the plan, nothing executed\n"
         f"  dsql-migrate local stop             # stop the demo's emulator")


__all__ = ["demo"]
