"""``dsql-migrate apply``, ``status`` and ``unlock``: run a saved plan, see where it is, free the
lock."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import ConfigError
from ..local import DEFAULT_DIR
from ._common import AppContext, ini_target_url, note

# what only apply uses is imported where it is used: status and unlock start faster without it
if TYPE_CHECKING:
    import psycopg

    from ..plan import Plan
    from ..runner import RetryPolicy, RunOptions

url_option = click.option(
    "--url", help="Target URL (default: $DSQL_MIGRATE_URL, config, local emulator).")
schema_option = click.option(
    "--state-schema", help="Schema of the runner's state tables (default: [runner] "
    "state_schema, else dsql_migrate).")
local_dir_option = click.option(
    "--local-dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_DIR,
    envvar="DSQL_MIGRATE_LOCAL_DIR", show_default=True,
    help="State directory of the local target, when that is the target.")


cdc_stream_option = click.option(
    "--cdc-stream", metavar="ARN|local",
    help="--writes=cdc plans: the Kinesis data stream the cluster's CDC stream delivers to; "
    "'local': the local emulator's (local start --cdc; endpoint and dummy keys from it).")
cdc_endpoint_option = click.option(
    "--cdc-endpoint", metavar="URL", envvar="DSQL_MIGRATE_CDC_ENDPOINT",
    help="Kinesis endpoint of --cdc-stream (default: AWS's regional endpoint; required "
    "for any other target, e.g. the local emulator's Kinesis).")


@dataclass(frozen=True)
class Connections:
    """How the runner opens connections: a factory, and when to recycle them."""

    factory: Callable[[], psycopg.Connection[Any]]
    max_connection_seconds: float | None = None
    #: the target's kind ("local", "postgresql", "dsql") and, for dsql, the cluster id
    kind: str = "postgresql"
    cluster: str | None = None
    #: the local emulator's state directory, when that is the target
    local_dir: Path | None = None


def cdc_overrides(target: Connections, plan: Plan, stream: str | None,
                  endpoint: str | None) -> dict[str, Any]:
    """The runner options of a ``--writes=cdc`` plan's stream. The endpoint defaults to AWS's
    regional one only for a dsql:// target: any other target (the local emulator) names its
    own, and none given is refused, never a silent fall-back to AWS."""
    from ..runner.cdc.cutover import uses_cdc
    from ..runner.cdc.stream import parse_arn

    if stream is None and endpoint is None:
        return {}
    if stream is not None and stream.strip() == LOCAL_STREAM:
        return local_stream(target, endpoint)
    if stream is not None:
        parse_arn(stream)
    if stream is not None and uses_cdc(plan) and not endpoint and target.kind != "dsql":
        raise ConfigError(
            "--cdc-stream: the target is not an Aurora DSQL cluster (it is the local emulator "
            "or a PostgreSQL URL), so the stream is not on AWS's Kinesis endpoint",
            hint="pass --cdc-endpoint URL (or set $DSQL_MIGRATE_CDC_ENDPOINT): the Kinesis "
            "endpoint that serves the stream, e.g. the local emulator's when it runs with CDC")
    return {"cdc_stream": stream, "cdc_endpoint": endpoint or None,
            "cdc_cluster": target.cluster if target.kind == "dsql" else None}


#: ``--cdc-stream local``: the stream of the local emulator that is the target
LOCAL_STREAM = "local"


def local_stream(target: Connections, endpoint: str | None) -> dict[str, Any]:
    """``--cdc-stream local``: everything about the stream from the running emulator's
    ``cdc_info()`` (Kinesis endpoint, stream ARN, its dummy credentials, and its fake DSQL
    control plane for the ACTIVE-for-this-cluster check), only when the target is that
    emulator: a stream that is not the target's own would say nothing about its writes."""
    from ..local import LocalInstance

    if target.kind != "local" or target.local_dir is None:
        raise ConfigError(
            "--cdc-stream local: the target is not the local emulator, so it has no local "
            "CDC stream",
            hint="for an Aurora DSQL cluster pass the ARN of its CDC stream's Kinesis data "
            "stream; for the emulator use --url local (and --local-dir if it is elsewhere)")
    if endpoint:
        raise ConfigError("--cdc-stream local takes the endpoint from the emulator: drop "
                          "--cdc-endpoint (and $DSQL_MIGRATE_CDC_ENDPOINT)")
    info = LocalInstance(target.local_dir).cdc_info()
    return {"cdc_stream": str(info["cdc_stream_arn"]),
            "cdc_endpoint": str(info["cdc_kinesis_endpoint"]),
            "cdc_cluster": str(info["cdc_cluster_id"]),
            "cdc_dsql_endpoint": str(info["cdc_dsql_endpoint"]),
            "cdc_credentials": (str(info["cdc_access_key_id"]),
                                str(info["cdc_secret_access_key"]))}


def connections(app: AppContext, url: str | None, local_dir: Path) -> Connections:
    """Connections to the resolved target: a fresh IAM token per connection for dsql://
    targets, and the age after which to recycle a connection (before DSQL's 60 minutes)."""
    from ..connect import Connector, resolve_target

    target = resolve_target(url, app.config, local_dir=local_dir)
    connector = Connector(target, on_start=note)
    cluster = target.dsql.host.split(".", 1)[0] if target.dsql is not None else None
    return Connections(lambda: connector.connect(autocommit=True),
                       connector.max_connection_seconds, kind=target.kind, cluster=cluster,
                       local_dir=target.local_dir)


def connection_factory(app: AppContext, url: str | None,
                       local_dir: Path) -> Callable[[], psycopg.Connection[Any]]:
    """A callable opening a new connection to the resolved target each time it is called."""
    return connections(app, url, local_dir).factory


def load_plan(path: Path, expect_hash: str | None) -> Plan:
    from ..plan import Plan, PlanError, PlanHashMismatch

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"{path}: cannot read: {exc.strerror}") from None
    plan = Plan.from_json(text, where=str(path))
    if expect_hash is not None and plan.hash != expect_hash.strip():
        raise PlanHashMismatch(
            f"{path}: the plan's hash is {plan.hash}, not the expected {expect_hash}",
            hint="apply the plan that was reviewed, or update --expect-hash after review")
    return plan


def _state_schema(app: AppContext, override: str | None) -> str:
    from ..runner.api import state_schema

    return state_schema(app.config.section("runner"), override)


def run_options(app: AppContext, **overrides: Any) -> tuple[RunOptions, RetryPolicy, str]:
    from ..runner import RetryPolicy, RunOptions
    from ..runner.api import state_schema

    section = app.config.section("runner")
    retry = section.get("retry", {})
    if not isinstance(retry, dict):
        raise ConfigError("[runner.retry] must be a table")
    schema = state_schema(section, overrides.pop("state_schema", None))
    limits = app.config.profile().limits
    options = RunOptions.from_config(section, limits=limits, **overrides)
    return options, RetryPolicy.from_config(retry), schema


def execute_plan(app: AppContext, plan: Plan, target: Connections, *, log_format: str,
                 **overrides: Any) -> None:
    """Apply ``plan`` with progress on stderr; shared with ``plan --apply``."""
    from ..runner.api import apply_plan
    from ..runner.progress import make_reporter

    options, retry, schema = run_options(app, **overrides)
    reporter = make_reporter(log_format, sys.stderr)
    try:
        result = apply_plan(plan, target.factory, options=options, schema=schema, retry=retry,
                            max_connection_seconds=target.max_connection_seconds,
                            on_event=reporter)
    finally:
        reporter.close()
    if log_format != "json":
        if result.status == "nothing":
            note("Nothing to do: this plan was already applied.")
        else:
            note(f"Applied plan {plan.hash}: {len(result.steps_run)} step(s) run, "
                 f"{len(result.steps_skipped)} already done.")


@click.command()
@click.argument("plan_file", metavar="[PLAN.json]", required=False,
                type=click.Path(dir_okay=False, path_type=Path))
@url_option
@click.option("--expect-hash", metavar="H", help="Refuse the plan unless its hash is H.")
@click.option("--allow-destructive", is_flag=True,
              help="Run destructive steps too (otherwise the run stops before them, exit 5).")
@click.option("--wait-lock", type=click.FloatRange(min=0), default=0.0, metavar="SECONDS",
              help="Wait this long for another runner's lock instead of exiting 4.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Progress as text (a bar on a terminal) or JSON lines.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Rows per batch to start from.")
@click.option("--parallel", type=click.IntRange(min=1), metavar="N",
              help="Lanes a large batched step is split into, walked at once (default 4).")
@click.option("--abandon-previous", is_flag=True,
              help="Leave a different, partially applied plan as it is and apply this one.")
@click.option("--reapply", is_flag=True,
              help="Run an applied plan again whose tables were reverted to its premise.")
@cdc_stream_option
@cdc_endpoint_option
@schema_option
@local_dir_option
@click.pass_obj
def apply(app: AppContext, plan_file: Path | None, url: str | None, expect_hash: str | None,
          allow_destructive: bool, wait_lock: float, log_format: str, batch_size: int | None,
          parallel: int | None, abandon_previous: bool, reapply: bool, cdc_stream: str | None,
          cdc_endpoint: str | None, state_schema: str | None, local_dir: Path) -> None:
    """Apply a saved plan (or, with no file, finish the one a run left unfinished)."""
    from ..plan import PlanHashMismatch
    from ..runner.api import unfinished_plan

    target = connections(app, url, local_dir)
    if plan_file is not None:
        plan = load_plan(plan_file, expect_hash)
        label = plan_file.name
    else:
        schema = _state_schema(app, state_schema)
        stored = unfinished_plan(target.factory, schema=schema)
        if stored is None:
            raise ConfigError(
                "no plan file given, and no partially applied plan to finish",
                hint="pass the PLAN.json to apply, or make one with 'dsql-migrate plan -o'")
        if expect_hash is not None and stored.hash != expect_hash.strip():
            raise PlanHashMismatch(
                f"the unfinished plan is {stored.hash}, not the expected {expect_hash}")
        note(f"finishing the partially applied plan {stored.hash}")
        plan, label = stored, None
    execute_plan(app, plan, target, log_format=log_format,
                 allow_destructive=allow_destructive, wait_lock_seconds=wait_lock,
                 batch_size=batch_size, parallel=parallel, abandon_previous=abandon_previous,
                 reapply=reapply or None, state_schema=state_schema, label=label,
                 **cdc_overrides(target, plan, cdc_stream, cdc_endpoint))


ini_option = click.option(
    "-c", "--alembic-ini", "ini", type=click.Path(path_type=Path), default=Path("alembic.ini"),
    show_default=True, help="An Alembic project's ini: its sqlalchemy.url is the target when "
    "no --url, $DSQL_MIGRATE_URL or config URL is given.")


def url_or_ini(app: AppContext, url: str | None, ini: Path) -> str | None:
    """``--url``, else (with no $DSQL_MIGRATE_URL or config target) the Alembic project's
    ``sqlalchemy.url``: the database the migrations commands use, not a new local emulator."""
    import os

    from ..connect import ENV_URL

    if url or os.environ.get(ENV_URL) or app.config.url or app.config.section("dsql"):
        return url
    return ini_target_url(ini)


@click.command()
@url_option
@ini_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
@schema_option
@local_dir_option
@click.pass_obj
def status(app: AppContext, url: str | None, ini: Path, fmt: str, state_schema: str | None,
           local_dir: Path) -> None:
    """Show the lock and the current or last plan, step by step."""
    from ..runner.api import read_status
    from ..runner.progress import status_text

    schema = _state_schema(app, state_schema)
    data = read_status(connection_factory(app, url_or_ini(app, url, ini), local_dir),
                       schema=schema)
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(status_text(data), nl=False)


@click.command("unlock")
@url_option
@ini_option
@click.option("--force", is_flag=True, help="Free the lock even if its lease has not expired.")
@schema_option
@local_dir_option
@click.pass_obj
def unlock_command(app: AppContext, url: str | None, ini: Path, force: bool,
                   state_schema: str | None, local_dir: Path) -> None:
    """Free the runner's lock (only an expired one, unless --force)."""
    from ..runner.api import unlock

    schema = _state_schema(app, state_schema)
    holder = unlock(connection_factory(app, url_or_ini(app, url, ini), local_dir),
                    schema=schema, force=force)
    if holder is None:
        click.echo("The lock was free.")
    else:
        click.echo(f"Released the lock held by {holder.describe()}.")
