"""``dsql-migrate sql``: run statements against a target, or a SQL script with ``-f``."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from ..connect import connect, resolve_target
from ..errors import DsqlMigrateError, ExitCode
from ..local import DEFAULT_DIR
from ..plan import Plan
from ..query import StatementResult, run_statements, to_jsonable
from ..runner import StepFailed
from ..runner.api import apply_plan
from ..runner.events import Event, Listener
from ..runner.progress import make_reporter
from ..script import compile_script, from_statement, label, resume_plan
from ._common import AppContext, note, stdout_console
from .apply import connections, run_options


class ScriptFailed(DsqlMigrateError):
    exit_code = ExitCode.FAILED

    def __init__(self, message: str, *, sql_text: str | None, hint: str) -> None:
        super().__init__(message, hint=hint)
        self.sql_text = sql_text


@click.command()
@click.argument("statements", nargs=-1)
@click.option("-f", "--file", "script", metavar="FILE",
              help="Run the SQL script FILE ('-': stdin), one statement per transaction, "
              "resumably.")
@click.option("--url", help="Target URL (default: $DSQL_MIGRATE_URL, config, local emulator).")
@click.option("--write", is_flag=True,
              help="Run all statements in one read-write transaction (default: read-only).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Output format of query results.")
@click.option("--from-statement", type=click.IntRange(min=1), metavar="N",
              help="With -f: start at statement N, taking the ones before it as done.")
@click.option("--no-lint", is_flag=True,
              help="With -f: run even statements the linter says DSQL rejects (the run stops "
              "at the first one the database refuses).")
@click.option("--allow-destructive", is_flag=True,
              help="With -f: run DROP, TRUNCATE and DELETE statements too (otherwise the run "
              "stops before them, exit 5).")
@click.option("--wait-lock", type=click.FloatRange(min=0), default=0.0, metavar="SECONDS",
              help="With -f: wait this long for another runner's lock instead of exiting 4.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="With -f: progress as text or JSON lines.")
@click.option("--state-schema", help="With -f: schema of the runner's state tables.")
@click.option("--local-dir", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_DIR, envvar="DSQL_MIGRATE_LOCAL_DIR", show_default=True,
              help="State directory of the local target, when that is the target.")
@click.pass_obj
def sql(app: AppContext, statements: tuple[str, ...], script: str | None, url: str | None,
        write: bool, fmt: str, from_statement: int | None, no_lint: bool,
        allow_destructive: bool, wait_lock: float, log_format: str, state_schema: str | None,
        local_dir: Path) -> None:
    """Run SQL statements (read-only, or one transaction with --write), or a script with -f."""
    if script is not None:
        if statements or write:
            raise click.UsageError("-f runs a script: give no STATEMENTS and no --write "
                                   "(every statement of the script runs in its own transaction)")
        _run_script(app, script, url=url, from_number=from_statement, lint=not no_lint,
                    allow_destructive=allow_destructive, wait_lock=wait_lock,
                    log_format=log_format, state_schema=state_schema, local_dir=local_dir)
        return
    if not statements:
        raise click.UsageError("give the statements to run, or -f FILE")
    for flag, given in (("--from-statement", from_statement is not None), ("--no-lint", no_lint),
                        ("--allow-destructive", allow_destructive)):
        if given:
            raise click.UsageError(f"{flag} applies to a script: use it with -f FILE")
    target = resolve_target(url, app.config, local_dir=local_dir)
    with connect(target, on_start=note) as conn:
        results = run_statements(conn, statements, write=write)
    if fmt == "json":
        click.echo(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        _print_tables(results)


def _read_script(script: str) -> tuple[str, str]:
    if script == "-":
        return sys.stdin.read(), "<stdin>"
    try:
        return Path(script).read_text(encoding="utf-8"), script
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise DsqlMigrateError(f"{script}: cannot read: {reason}",
                               hint="give a readable UTF-8 SQL file, or '-' for stdin") from None


def _run_script(app: AppContext, script: str, *, url: str | None, from_number: int | None,
                lint: bool, allow_destructive: bool, wait_lock: float, log_format: str,
                state_schema: str | None, local_dir: Path) -> None:
    text, name = _read_script(script)
    # a file is the same script wherever it is run from; stdin is by its content
    key = str(Path(script).resolve()) if script != "-" else None
    compiled = compile_script(text, app.config.profile(), name=name, lint=lint, key=key)
    if key is None:
        compiled = dataclasses.replace(compiled, plan=dataclasses.replace(
            compiled.plan, source={**compiled.plan.source,
                                   "key": f"<stdin> {compiled.plan.hash}"}))
    for line in compiled.notes:
        note(f"note: {line}")
    full = compiled.plan
    target = connections(app, url, local_dir)
    options, retry, schema = run_options(
        app, state_schema=state_schema, allow_destructive=allow_destructive,
        wait_lock_seconds=wait_lock, label=label(full))
    if from_number is not None:
        resume = from_statement(full, from_number, target.factory, schema=schema)
    else:
        resume = resume_plan(full, target.factory, schema=schema)
    if resume.message:
        note(resume.message)
    plan = resume.plan
    if plan is None:
        return
    # the unfinished last run of this same script is replaced by this one; any other
    # unfinished plan still stops the run (exit 5)
    options = dataclasses.replace(options, abandon_previous=resume.replaces)
    if not plan.steps:
        note(f"{name}: no statement to run")
        return
    reporter = make_reporter(log_format, sys.stderr)
    failed: dict[str, Any] = {}
    try:
        result = apply_plan(plan, target.factory, options=options, schema=schema, retry=retry,
                            max_connection_seconds=target.max_connection_seconds,
                            on_event=_watch(reporter, failed))
    except StepFailed as exc:
        raise _script_failure(plan, failed, exc) from None
    finally:
        reporter.close()
    if log_format != "json":
        ran = sum(1 for s in plan.steps if s.id in result.steps_run)
        note(f"{name}: {ran} step(s) run, "
             f"{len(result.steps_skipped) + int(plan.source.get('offset', 0))} already done.")


def _watch(reporter: Listener, failed: dict[str, Any]) -> Listener:
    def listen(event: Event) -> None:
        if event.kind == "step.failed":
            failed["step"] = event.step
        reporter(event)
    return listen


def _script_failure(plan: Plan, failed: dict[str, Any], exc: StepFailed) -> ScriptFailed:
    step = next((s for s in plan.steps if s.id == failed.get("step")), None)
    if step is None:
        return ScriptFailed(exc.message, sql_text=exc.sql_text, hint=exc.hint or "")
    details = step.details
    reason = exc.message.split(" failed: ", 1)[-1]
    line, what = details["line"], f"statement {details['statement']}"
    if "lines" in details:  # a BEGIN ... COMMIT block: the line of the statement that failed
        index = step.sql.index(exc.sql_text) if exc.sql_text in step.sql else 0
        line = details["lines"][index]
        what = (f"in the BEGIN ... COMMIT block at line {details['line']} (statement "
                f"{details['statement']}; none of the block is committed)")
    if "part" in details:
        what += f" (rows part {details['part']} of {details['parts']}" + (
            "; the parts before it are committed)" if details["part"] > 1 else ")")
    after = [s for s in plan.steps[step.id:] if s.details["statement"] != details["statement"]]
    skip = (f" (or --from-statement {after[0].details['statement']} to skip it)" if after
            else "")
    return ScriptFailed(
        f"{details['file']}:{line}: {what}: {reason}; the statements before it are committed, "
        "nothing after it ran",
        sql_text=exc.sql_text or "\n".join(step.sql),
        hint=f"fix the statement and run the same command again: it continues from there{skip}")


def _print_tables(results: list[StatementResult]) -> None:
    console = stdout_console()
    for result in results:
        if result.returns_rows:
            table = Table(*result.columns, show_lines=False, header_style="bold")
            for row in result.rows:
                table.add_row(*(_cell(v) for v in row))
            console.print(table)
            console.print(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})")
        else:
            console.print(result.status or "OK")


def _cell(value: object) -> Text:
    if value is None:
        return Text("NULL", style="dim")
    shown = to_jsonable(value)
    return Text(shown if isinstance(shown, str) else json.dumps(shown))
