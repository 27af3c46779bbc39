"""``dsql-migrate local ...``: the embedded local DSQL target."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click

from ..local import DEFAULT_DIR, LocalInstance
from ._common import note

F = TypeVar("F", bound=Callable[..., Any])


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


@click.group()
def local() -> None:
    """Run the local DSQL target (embedded PostgreSQL) on this machine."""


@local.command()
@dir_option
@click.option("--port", type=click.IntRange(1, 65535), help="Port to listen on (default: free).")
@click.option("--timeout", type=float, default=60.0, show_default=True,
              help="Seconds to wait for the server to accept connections.")
def start(directory: Path, port: int | None, timeout: float) -> None:
    """Start the local target in the background and print its URL on stdout."""
    instance = LocalInstance(directory, port=port)
    click.echo(instance.start(timeout=timeout))


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
    """Say whether the local target runs, with its pid and URL."""
    current = LocalInstance(directory).status()
    if fmt == "json":
        click.echo(json.dumps(current.as_dict(), indent=2))
        return
    if current.running:
        click.echo(f"running  pid {current.server.pid}  {current.url}")
    else:
        click.echo(f"not running  (data in {current.server.data_dir})")


@local.command()
@dir_option
@click.option("--raw", is_flag=True, help="The direct PostgreSQL URL, bypassing the DSQL rules.")
def url(directory: Path, raw: bool) -> None:
    """Print the URL of the running local target."""
    instance = LocalInstance(directory)
    click.echo(instance.raw_url() if raw else instance.url())


@local.command()
@dir_option
@click.option("--port", type=click.IntRange(1, 65535), help="Port to listen on (default: free).")
def serve(directory: Path, port: int | None) -> None:
    """Run the local target in the foreground until Ctrl-C."""
    instance = LocalInstance(directory, port=port)
    click.echo(instance.start())
    note("serving; press Ctrl-C to stop")
    done = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not done.wait(1.0):
            if not instance.status().running:
                note("the server exited")
                raise SystemExit(1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        instance.stop()
        note("stopped")


@local.command()
@dir_option
@click.confirmation_option(prompt="Delete the local target and all its data?")
def destroy(directory: Path) -> None:
    """Stop the local target and delete its data."""
    LocalInstance(directory).destroy()
    note(f"removed the local target in {directory}")
