"""``dsql-migrate load``: bulk-load a CSV or TSV file into a table, resumably."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from ..load import FORMATS, LoadProgress, LoadRequest, LoadResult, format_for, run_load
from ._common import AppContext, note
from .apply import connections, local_dir_option, run_options, schema_option, url_option


@click.command()
@click.argument("table")
@click.argument("file")
@click.option("--format", "fmt", type=click.Choice(sorted(FORMATS)),
              help="csv (PostgreSQL CSV), tsv (PostgreSQL text format, tab-separated) or "
              "parquet (needs pyarrow); default: from the file name.")
@click.option("--header/--no-header", default=True, show_default=True,
              help="The first line names the columns (and is not loaded).")
@click.option("--columns", metavar="A,B,...",
              help="The table's columns the fields fill, in file order (default: the header's "
              "names, else every column in table order).")
@click.option("--parallel", type=click.IntRange(min=1), default=4, show_default=True,
              metavar="N", help="Batches loaded at once, each on its own connection.")
@click.option("--batch-rows", type=click.IntRange(min=1), metavar="N",
              help="Rows per batch (at most the profile's row limit less 5 state rows).")
@click.option("--restart", is_flag=True,
              help="Forget what an earlier run of this load recorded and load the whole file "
              "(the rows it loaded stay in the table).")
@click.option("--wait-lock", type=click.FloatRange(min=0), default=0.0, metavar="SECONDS",
              help="Wait this long for another run of the same load instead of exiting 4.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Progress and summary as text or JSON.")
@url_option
@schema_option
@local_dir_option
@click.pass_obj
def load(app: AppContext, table: str, file: str, fmt: str | None, header: bool,
         columns: str | None, parallel: int, batch_rows: int | None, restart: bool,
         wait_lock: float, log_format: str, url: str | None, state_schema: str | None,
         local_dir: Path) -> None:
    """Bulk-load a CSV/TSV/Parquet file (or s3://bucket/key) into TABLE in DSQL-sized, resumable
    batches."""
    names = tuple(c.strip() for c in columns.split(",")) if columns else None
    if names is not None and not all(names):
        raise click.UsageError("--columns: an empty column name")
    options, retry, schema = run_options(app, state_schema=state_schema)
    request = LoadRequest(table=table, location=file, format=format_for(file, fmt),
                          header=header, columns=names, parallel=parallel,
                          batch_rows=batch_rows, byte_budget_share=options.byte_budget_share,
                          restart=restart, wait_lock_seconds=wait_lock)
    target = connections(app, url, local_dir)
    display = _display(log_format)
    try:
        result = run_load(request, target.factory, limits=options.limits, state_schema=schema,
                          retry=retry, max_connection_seconds=target.max_connection_seconds,
                          on_progress=display.update, on_note=note)
    finally:
        display.close()
    if log_format == "json":
        click.echo(json.dumps(result.as_dict()))
    else:
        note(_summary(result))


def _summary(result: LoadResult) -> str:
    if result.already_done:
        return (f"Nothing to do: {result.location} was already loaded into {result.table} "
                f"({result.rows_before:,} rows in {result.batches_before} batches); "
                "--restart loads it again.")
    before = (f", {result.rows_before:,} loaded by an earlier run" if result.rows_before
              else "")
    extra = "".join(f", {n} {what}" for n, what in ((result.retries, "retried transactions"),
                                                   (result.splits, "batches split"))
                    if n)
    return (f"Loaded {result.rows:,} rows into {result.table} in {result.batches} batches "
            f"({result.seconds:.1f}s, {result.rows_per_second:,.0f} rows/s, "
            f"{result.workers} workers{extra}){before}.")


class _Display:
    """A live bar with rows/s on a terminal; a line every tenth of the file otherwise."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self._bar: Progress | None = None
        self._task: Any = None
        self._tenth = -1
        self._last = 0.0

    def update(self, progress: LoadProgress) -> None:
        if self.mode == "json":
            return
        rate = f"{progress.rows_per_second:,.0f} rows/s"
        rows = f"{progress.rows_before + progress.rows:,} rows"
        if self.mode == "rich":
            if self._bar is None:
                self._bar = Progress(TextColumn("load"), BarColumn(), TaskProgressColumn(),
                                     TextColumn("{task.fields[rows]} · {task.fields[rate]}"),
                                     TimeRemainingColumn(),
                                     console=Console(file=sys.stderr), transient=True)
                self._bar.start()
                self._task = self._bar.add_task("load", total=progress.bytes_total,
                                                rows=rows, rate=rate)
            self._bar.update(self._task, completed=progress.bytes_done, rows=rows, rate=rate)
            return
        tenth = progress.bytes_done * 10 // max(progress.bytes_total, 1)
        if progress.rows and tenth != self._tenth and time.monotonic() - self._last > 0.5:
            self._tenth, self._last = tenth, time.monotonic()
            note(f"{time.strftime('%H:%M:%S')} load: {tenth * 10}% of the file, {rows}, {rate}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _display(log_format: str) -> _Display:
    if log_format == "json":
        return _Display("json")
    return _Display("rich" if sys.stderr.isatty() else "plain")
