"""``dsql-migrate plan``: compare a desired schema with the live one and show the DSQL-safe plan."""

from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource

from ..catalog import Snapshot
from ..connect import LOCAL, Connector, Target, conninfo_for, redact_url, resolve_target
from ..diff import Desired, Renames, diff_live, load_target
from ..errors import ConfigError, ExitCode
from ..local import DEFAULT_DIR, LocalInstance
from ..plan import FORMATS, render, render_text
from ..planner import NOT_NULL_CHECK, NOT_NULL_RECREATE, WRITES_CHOICES, WRITES_PAUSE, Options
from ..planner import plan as make_plan
from ._common import AppContext, note, stdout_console
from ._plain import write_file


@click.command()
@click.option("--url", help="Target URL (default: $DSQL_MIGRATE_URL, config, local emulator).")
@click.option("--target", "target_spec", required=True, metavar="T",
              help="Desired schema: package.module:attr (MetaData or declarative base) or a "
              "desired-state .sql file; either may declare roles, grants and IAM mappings "
              "(docs/roles.md).")
@click.option("--profile", help="Capability profile: current or classic (default: config).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="Output format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the plan to FILE (.json: JSON, .md: Markdown unless --format says).")
@click.option("--check", is_flag=True,
              help="Exit 1 when the live schema differs from the target, 0 when it matches.")
@click.option("--rename", "renames", multiple=True, metavar="OLD=NEW",
              help="Declare a rename: old=new (a table) or table.old=new (a column). "
              "Repeatable.")
@click.option("--writes", type=click.Choice(WRITES_CHOICES), default=WRITES_PAUSE,
              show_default=True,
              help="During table copies: writes paused (verify blocks the swap if the source "
              "changed), resync (re-copy differing key ranges) or cdc (re-sync changed keys "
              "from a CDC stream; a short write freeze for the swap; apply needs --cdc-stream).")
@click.option("--not-null", "not_null", type=click.Choice([NOT_NULL_RECREATE, NOT_NULL_CHECK]),
              default=NOT_NULL_RECREATE, show_default=True,
              help="SET NOT NULL by table recreation, or (current profile) by a validated "
              "CHECK (c IS NOT NULL).")
@click.option("--batch-rows", type=click.IntRange(min=1),
              help="Rows per batch (default 1000; a recreation's copy: the row limit less 5).")
@click.option("--exact-counts", is_flag=True,
              help="Count rows exactly for estimates instead of using catalog statistics.")
@click.option("--scratch-url", envvar="DSQL_MIGRATE_SCRATCH_URL",
              help="Server on which a desired .sql target is loaded into a throwaway database "
              "(default: the local emulator).")
@click.option("--local-dir", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_DIR, envvar="DSQL_MIGRATE_LOCAL_DIR", show_default=True,
              help="State directory of the local emulator.")
@click.option("--apply", "apply_now", is_flag=True,
              help="Apply the plan right away with the runner (as 'dsql-migrate apply' does).")
@click.option("--allow-destructive", is_flag=True,
              help="Approve the destructive steps in the plan (and its hash): 'apply' runs them.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="With --apply: progress as text or JSON lines.")
@click.option("--cdc-stream", metavar="ARN|local",
              help="With --apply and --writes cdc: the Kinesis stream of the cluster's CDC "
              "('local': the local emulator's).")
@click.option("--cdc-endpoint", metavar="URL", envvar="DSQL_MIGRATE_CDC_ENDPOINT",
              help="With --apply: Kinesis endpoint of --cdc-stream (default: AWS's).")
@click.pass_obj
def plan(app: AppContext, *, url: str | None, target_spec: str, profile: str | None, fmt: str,
         output: Path | None, check: bool, renames: tuple[str, ...], writes: str,
         not_null: str, batch_rows: int | None, exact_counts: bool, scratch_url: str | None,
         local_dir: Path, apply_now: bool, allow_destructive: bool, log_format: str,
         cdc_stream: str | None, cdc_endpoint: str | None) -> None:
    """Show the DSQL-safe plan that turns the live schema into the target schema."""
    if check and apply_now:
        raise click.UsageError("--check and --apply exclude each other")
    chosen = app.config.profile(profile)
    options = Options(writes=writes, not_null=not_null, batch_rows=batch_rows)
    rename_specs = Renames.parse(renames)
    if target_spec.endswith(".sql") and not Path(target_spec).is_file():
        raise ConfigError(f"{target_spec}: no such file")
    target = resolve_target(url, app.config, local_dir=local_dir)
    # one connection first: an unreachable target is one line and a hint, before anything
    # (a scratch emulator for a .sql target) is started
    Connector(target, on_start=note).connect(autocommit=True).close()
    desired = _load_desired(target_spec, scratch_url, local_dir, target)
    conninfo = conninfo_for(target, on_start=note)
    result, live = diff_live(conninfo, desired, renames=rename_specs, exact_counts=exact_counts)
    _check_renames(rename_specs, live)
    warnings = list(result.warnings)
    if not desired.metadata.tables:
        warnings.insert(0, f"the target {target_spec} defines no tables: every table of the "
                        "live schema is dropped (destructive steps: apply needs "
                        "--allow-destructive)")
    planned = make_plan(result.ops, live, result.desired, chosen, options,
                        source={"target": target_spec, "url": redact_url(target.display)},
                        warnings=warnings)
    if allow_destructive:
        planned = planned.approved()
    ctx = click.get_current_context()
    if output is not None and ctx.get_parameter_source("fmt") == ParameterSource.DEFAULT:
        fmt = {".json": "json", ".md": "markdown"}.get(output.suffix.lower(), fmt)
    if fmt == "text" and output is None:
        console = stdout_console()
        text = render_text(planned, width=console.width, color=console.is_terminal)
    else:
        text = render(planned, fmt)
    if output is not None:
        write_file(output, text)
        note(f"plan written to {output} ({planned.hash})")
    else:
        click.echo(text, nl=False)
    if check and planned.steps:
        note(f"drift: the live schema differs from {target_spec} ({len(planned.steps)} steps)")
        click.get_current_context().exit(int(ExitCode.FAILED))
    if apply_now:
        if not planned.steps:
            note("nothing to apply: the live schema matches the target")
            return
        from .apply import cdc_overrides, connections, execute_plan

        target_connections = connections(app, url, local_dir)
        execute_plan(app, planned, target_connections, log_format=log_format,
                     allow_destructive=allow_destructive, label=f"plan --target {target_spec}",
                     **cdc_overrides(target_connections, planned, cdc_stream, cdc_endpoint))


def _load_desired(target_spec: str, scratch_url: str | None, local_dir: Path,
                  target: Target) -> Desired:
    """The desired schema; a .sql file is loaded on ``scratch_url``, else on the local emulator,
    which is stopped again afterwards when this command started it for nothing else (the
    target is not that emulator): a plan against a remote target leaves nothing running."""
    if not target_spec.endswith(".sql") or scratch_url:
        return load_target(target_spec, scratch_server=scratch_url)
    instance = LocalInstance(local_dir)
    started = not instance.status().running
    if started:
        note(f"starting the local emulator in {local_dir} to load {target_spec}")
    instance.start()
    try:
        return load_target(target_spec, scratch_server=instance.raw_url())
    finally:
        is_target = target.kind == LOCAL and target.local_dir is not None \
            and target.local_dir.resolve() == local_dir.resolve()
        if started and not is_target:
            instance.stop()
            note(f"stopped the local emulator in {local_dir}")


def _check_renames(renames: Renames, live: Snapshot) -> None:
    """Every declared rename names something the live schema has (or already has under the new
    name): a misspelt --rename must not silently turn into a drop and a create."""
    for old, new in renames.tables.items():
        if live.table(old) is not None:
            continue
        if live.table(new) is None:
            raise ConfigError(f"--rename {old}={new}: the live schema has no table {old}",
                              hint="check the spelling; 'dsql-migrate inspect' lists the tables")
        note(f"--rename {old}={new}: there is a table {new} and no table {old}: nothing to "
             "rename")
    for (table, old), new in renames.columns.items():
        live_name = next((o for o, n in renames.tables.items() if n == table), table)
        found = live.table(live_name) or live.table(table)
        if found is None:
            raise ConfigError(f"--rename {table}.{old}={new}: the live schema has no table "
                              f"{table}")
        if found.column(old) is not None:
            continue
        if found.column(new) is None:
            raise ConfigError(
                f"--rename {table}.{old}={new}: table {table} has no column {old}",
                hint=f"its columns: {', '.join(c.name for c in found.columns)}")
        note(f"--rename {table}.{old}={new}: table {table} has a column {new} and no column "
             f"{old}: nothing to rename")
