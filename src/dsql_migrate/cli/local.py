"""``dsql-migrate local ...``: the embedded local DSQL target (PostgreSQL behind DSQL's rules)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..local import DEFAULT_DIR, LocalInstance
from ..local.binaries import ENV_ALLOW_OLD, MIN_MAJOR, OLD_SERVER_DIFFERENCES
from ..local.settings import CdcSettings, Faults
from ..profiles import PROFILES
from ._common import note

F = TypeVar("F", bound=Callable[..., Any])

_UNITS = {"ms": 0.001, "s": 1.0}


if TYPE_CHECKING:  # generic from click 8.2 on; the project supports 8.1 too
    _FloatParam = click.ParamType[float, Any]
else:
    _FloatParam = click.ParamType


class Duration(_FloatParam):
    """A duration with its unit, ``10ms`` or ``0.5s``, as seconds (a bare number is refused:
    the neighbouring options count seconds, a latency is usually said in milliseconds)."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        text = str(value).strip().lower()
        unit = "ms" if text.endswith("ms") else "s" if text.endswith("s") else ""
        try:
            seconds = float(text[:len(text) - len(unit)]) * _UNITS[unit] if unit else None
        except ValueError:
            seconds = None
        if seconds is None or not 0 <= seconds <= 60:
            self.fail(f"{value!r} is not a duration from 0 to 60 s with its unit, "
                      "such as 10ms or 0.5s", param, ctx)
        return seconds


def dir_option(func: F) -> F:
    return click.option(
        "--dir",
        "directory",
        type=click.Path(file_okay=False, path_type=Path),
        default=DEFAULT_DIR,
        show_default=True,
        envvar="DSQL_MIGRATE_LOCAL_DIR",
        help="Where the local target keeps its state and data.",
    )(func)


def emulator_options(func: F) -> F:
    """Options of the emulator itself, shared by ``start`` and ``serve``."""
    options = [
        click.option("--port", type=click.IntRange(1, 65535),
                     help="Port of the emulator, the URL users connect to (default: free)."),
        click.option("--profile", type=click.Choice(sorted(PROFILES)), default=None,
                     help="DSQL capability profile to emulate (default: the stored one, "
                          "else current)."),
        click.option("--fail-commits", type=click.FloatRange(0.0, 1.0), default=None,
                     metavar="FRACTION",
                     help="Fault injection: fail this fraction of write-transaction commits "
                          "with 40001 (OC000)."),
        click.option("--max-connection-age", type=click.FloatRange(min=0.1), default=None,
                     metavar="SECONDS",
                     help="Fault injection: close connections older than this (DSQL: 3600)."),
        click.option("--commit-latency", type=Duration(), default=None, metavar="DURATION",
                     help="Add this latency to every commit that wrote (e.g. 10ms: a DSQL "
                          "commit across availability zones)."),
        click.option("--seed", type=int, default=None,
                     help="Seed of the injected faults, to replay a faulty run."),
        click.option("--transaction-age", type=click.FloatRange(min=0.1), default=None,
                     metavar="SECONDS",
                     help="Transaction age limit (DSQL: 300); shorten it for tests."),
        click.option("--iam/--no-iam", default=None,
                     help="Act as a cluster endpoint: TLS only, IAM auth tokens as passwords "
                          "(signed with this environment's AWS credentials); prints a dsql:// "
                          "URL."),
        click.option("--cdc/--no-cdc", default=None,
                     help="Stream every committed row change, as DSQL's CDC, to a local Kinesis "
                          "stream (see 'local status' for its endpoint and ARN)."),
        click.option("--cdc-chaos", is_flag=True, default=None,
                     help="With --cdc: duplicate, delay and reorder some records (--seed "
                          "replays a run)."),
        click.option("--cdc-shards", type=click.IntRange(1, 64), default=None,
                     help="With --cdc: shards of the Kinesis stream (default 4)."),
        click.option("--allow-old-postgres", is_flag=True, default=None,
                     envvar=ENV_ALLOW_OLD,
                     help=f"Run a PostgreSQL server older than {MIN_MAJOR} (DSQL's version) "
                          "if no newer one is found, and say what then differs."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _instance(directory: Path, *, port: int | None, profile: str | None,
              fail_commits: float | None, max_connection_age: float | None,
              commit_latency: float | None, seed: int | None, transaction_age: float | None,
              iam: bool | None, allow_old_postgres: bool | None, cdc: bool | None = None,
              cdc_chaos: bool | None = None, cdc_shards: int | None = None) -> LocalInstance:
    faults = None
    if (fail_commits is not None or max_connection_age is not None or seed is not None
            or commit_latency is not None):
        faults = Faults(commit_failure_rate=fail_commits or 0.0,
                        max_connection_age=max_connection_age,
                        commit_latency=commit_latency or 0.0, seed=seed)
    return LocalInstance(directory, port=port, profile=profile, faults=faults,
                         transaction_age=transaction_age, iam=iam,
                         allow_old_postgres=allow_old_postgres,
                         cdc=_cdc_settings(cdc, cdc_chaos, cdc_shards, seed))


def _cdc_settings(cdc: bool | None, chaos: bool | None, shards: int | None,
                  seed: int | None) -> CdcSettings | None:
    """What --cdc, --cdc-chaos and --cdc-shards ask for; None when none of them is given."""
    if cdc is None and not chaos and shards is None:
        return None
    if cdc is False and (chaos or shards is not None):
        raise click.UsageError("--cdc-chaos and --cdc-shards go with --cdc")
    settings = CdcSettings(enabled=True, shards=shards or 4, seed=seed) if cdc is not False \
        else CdcSettings()
    if chaos:
        settings = replace(settings, **CdcSettings.CHAOS)  # type: ignore[arg-type]
    return settings


def _warn_if_old(instance: LocalInstance) -> None:
    """Say what differs from DSQL when the server is older than DSQL's PostgreSQL."""
    major = instance.status().server.major
    if major is not None and major < MIN_MAJOR:
        note(f"warning: the local target runs PostgreSQL {major}, not {MIN_MAJOR} as DSQL; "
             "what differs:")
        for difference in OLD_SERVER_DIFFERENCES:
            note(f"  - {difference}")


@click.group()
def local() -> None:
    """Run the local DSQL target (embedded PostgreSQL behind DSQL's rules) on this machine."""


@local.command()
@dir_option
@emulator_options
@click.option("--timeout", type=float, default=60.0, show_default=True,
              help="Seconds to wait for the target to accept connections.")
def start(directory: Path, timeout: float, **options: Any) -> None:
    """Start the local target in the background and print its URL on stdout."""
    instance = _instance(directory, **options)
    url = instance.start(timeout=timeout)
    _warn_if_old(instance)
    click.echo(url)


@local.command()
@dir_option
def stop(directory: Path) -> None:
    """Stop the local target (a stopped one is left as is)."""
    stopped = LocalInstance(directory).stop()
    note("stopped" if stopped else "not running")


@local.command()
@dir_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
def status(directory: Path, fmt: str) -> None:
    """Say whether the local target runs, with its pids, profile and URLs."""
    current = LocalInstance(directory).status()
    if fmt == "json":
        click.echo(json.dumps(current.as_dict(), indent=2))
        return
    version = f"PostgreSQL {current.server.major}" if current.server.major else "PostgreSQL ?"
    if current.running:
        click.echo(f"running  profile {current.profile}  emulator pid {current.emulator_pid}  "
                   f"{current.url}")
        click.echo(f"         {version} pid {current.server.pid}  {current.raw_url} (raw; "
                   "'local url --raw' adds the password)")
        if current.cdc:
            click.echo(f"         CDC: Kinesis {current.cdc.get('cdc_kinesis_endpoint')}  stream "
                       f"{current.cdc.get('cdc_stream_arn')}  region "
                       f"{current.cdc.get('cdc_region')}"
                       + ("  (chaos)" if current.cdc.get("cdc_chaos") else ""))
    elif current.server.running:
        click.echo(f"postgres running (pid {current.server.pid}) but the emulator is not: "
                   "run 'dsql-migrate local start'")
    else:
        click.echo(f"not running  ({version}, data in {current.server.data_dir})")


@local.command()
@dir_option
@click.option("--raw", is_flag=True,
              help="The direct PostgreSQL URL of admin, with its password, bypassing the DSQL "
                   "rules.")
@click.option("--superuser", is_flag=True,
              help="With --raw: the server's bootstrap superuser postgres, with its password.")
def url(directory: Path, raw: bool, superuser: bool) -> None:
    """Print the URL of the running local target."""
    instance = LocalInstance(directory)
    if superuser and not raw:
        raise click.UsageError("--superuser goes with --raw (the emulator refuses the "
                               "superuser)")
    if raw:
        click.echo(instance.superuser_url() if superuser else instance.raw_url())
    else:
        click.echo(instance.url())


@local.command()
@dir_option
@emulator_options
def serve(directory: Path, **options: Any) -> None:
    """Run the local target in the foreground until Ctrl-C."""
    instance = _instance(directory, **options)

    def ready(url: str) -> None:
        _warn_if_old(instance)
        click.echo(url)
        note("serving; press Ctrl-C to stop")

    instance.serve(on_ready=ready)
    note("stopped")


@local.command()
@dir_option
@click.confirmation_option(prompt="Delete the local target and all its data?")
def destroy(directory: Path) -> None:
    """Stop the local target and delete its data."""
    LocalInstance(directory).destroy()
    note(f"removed the local target in {directory}")
