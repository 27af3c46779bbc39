"""``dsql-migrate review``: what a change's new Alembic revisions will do, for a pull request."""

from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource

from ..local import DEFAULT_DIR
from ..review import FORMATS, Request, render, run_review
from ..review.model import DEFAULT_SECONDS_PER_BATCH
from ._common import AppContext, note
from ._plain import write_file

#: the format -o FILE implies when --format is not given
SUFFIXES = {".json": "json", ".sarif": "sarif", ".md": "markdown"}


@click.command()
@click.option("-c", "--alembic-ini", "ini", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("alembic.ini"), show_default=True,
              help="The Alembic configuration file of the project.")
@click.option("--base", metavar="REF",
              help="Git ref to compare with (default: the merge base of HEAD and the default "
              "branch: origin/HEAD, else main, else master).")
@click.option("--url", help="Also compile against this target's live schema, read only, with "
              "its table sizes for the estimates.")
@click.option("--format", "fmt", type=click.Choice(list(FORMATS)), default="markdown",
              show_default=True, help="markdown (a PR comment), json, or sarif (code scanning).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the review to FILE instead of stdout (.json, .sarif: that format "
              "unless --format says).")
@click.option("--approve-destructive", is_flag=True,
              help="Approve the destructive steps of every reviewed revision (or approve one "
              "revision in its file: '# dsql-migrate: approve-destructive').")
@click.option("--profile", help="Capability profile: current or classic (default: alembic.ini, "
              "then config).")
@click.option("--seconds-per-batch", type=click.FloatRange(min=0, min_open=True),
              default=DEFAULT_SECONDS_PER_BATCH, show_default=True,
              help="Time assumed per batch of a copy or backfill, for the time estimates.")
@click.option("--local-dir", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_DIR, envvar="DSQL_MIGRATE_LOCAL_DIR", show_default=True,
              help="State directory of the local target, when --url names it ('local').")
@click.pass_obj
def review(app: AppContext, *, ini: Path, base: str | None, url: str | None, fmt: str,
           output: Path | None, approve_destructive: bool, profile: str | None,
           seconds_per_batch: float, local_dir: Path) -> None:
    """Review what a change's new revisions will do.

    Compiles the Alembic revisions the change adds (compared with --base) on a fresh local
    emulator, and with --url against the target, read only. Exit 0 clean, 1 something refused,
    5 destructive steps not approved."""
    found = run_review(app.config, Request(ini=ini, base=base, url=url, profile=profile,
                                    approve_destructive=approve_destructive,
                                    seconds_per_batch=seconds_per_batch, local_dir=local_dir))
    ctx = click.get_current_context()
    if output is not None and ctx.get_parameter_source("fmt") == ParameterSource.DEFAULT:
        fmt = SUFFIXES.get(output.suffix.lower(), fmt)
    text = render(found, fmt)
    if output is not None:
        write_file(output, text)
        note(f"review written to {output}")
    else:
        click.echo(text, nl=False)
    code = found.exit_code()
    if found.upgrade_hash is not None:
        note(f"upgrade hash: {found.upgrade_hash} (computed against {found.hash_target})")
    note(f"review: {found.verdict()} (exit {int(code)})")
    if code:
        ctx.exit(int(code))


__all__ = ["review"]
