"""``dsql-migrate convert``: a pg_dump / psql or MySQL script → a DSQL script and a report."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..convert import Conversion, convert_postgresql, convert_statements
from ..convert.render import report_json, report_markdown, script, summary_text
from ..errors import ConfigError, ExitCode
from ..profiles import Profile
from ._common import AppContext
from ._plain import write_file

DIALECTS = ("postgresql", "mysql")


def _read(path: str, dialect: str) -> str:
    """The script's text. A mysqldump is bytes (a blob dumped without --hex-blob need not be
    UTF-8): bytes that are not UTF-8 are kept as surrogates, which the MySQL front end turns
    back into the same bytes for a binary column, or reports at their line."""
    errors = "surrogateescape" if dialect == "mysql" else "strict"
    if path == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return data.decode("utf-8-sig", errors)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                          hint="convert the file to UTF-8 (iconv -t UTF-8)") from None


def _mysql(text: str, source: str, profile: Profile) -> Conversion:
    from ..convert.mysql import mysql_to_postgresql  # sqlglot: imported only for MySQL

    statements, changes = mysql_to_postgresql(text, source)
    return convert_statements(statements, source, profile, changes)


def _convert(dialect: str, text: str, source: str, profile: Profile) -> Conversion:
    if dialect == "mysql":
        return _mysql(text, source, profile)
    return convert_postgresql(text, source, profile)


def _merge(parts: list[Conversion]) -> Conversion:
    out = Conversion()
    for part in parts:
        offset = len(out.statements)
        out.statements += part.statements
        out.lines += part.lines
        out.changes += part.changes
        out.kept += part.kept
        out.data |= {offset + i: d for i, d in part.data.items()}
        out.notes |= {offset + i: n for i, n in part.notes.items()}
        if part.trailer:  # removed statements at a file's end: above the next file's first
            out.notes.setdefault(len(out.statements), [])[:0] = part.trailer
    last = out.notes.pop(len(out.statements), None)
    out.trailer = last or []
    return out


@click.command("convert")
@click.argument("files", nargs=-1, required=True)
@click.option("--from", "dialect", type=click.Choice(DIALECTS), default="postgresql",
              show_default=True, help="Dialect of the input script(s).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the DSQL script here (default: stdout).")
@click.option("--profile", "profile_name",
              help="Capability profile: current or classic (default: config, else current).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report of every change to FILE.json or FILE.md.")
@click.pass_obj
def convert(app: AppContext, files: tuple[str, ...], dialect: str, output: Path | None,
            profile_name: str | None, report_path: Path | None) -> None:
    """Convert a pg_dump/psql or MySQL script for DSQL, reporting every change.

    Writes a DSQL script for the profile (run it with `dsql-migrate sql -f`); exit 0: nothing
    changed, 3: changes to review, 1: statements flagged for a manual rewrite.
    """
    profile = app.config.profile(profile_name)
    if report_path is not None and report_path.suffix.lower() not in (".json", ".md"):
        raise ConfigError(f"--report {report_path}: give a .json or .md file name")
    sources = ["<stdin>" if f == "-" else f for f in files]
    parts = [_convert(dialect, _read(f, dialect), name, profile)
             for f, name in zip(files, sources, strict=True)]
    conversion = _merge(parts)
    text = script(conversion, sources=sources, dialect=dialect, profile=profile.name)
    if output is not None:
        write_file(output, text)
    else:
        sys.stdout.write(text)
    out_name = str(output) if output is not None else None
    if report_path is not None:
        render = report_json if report_path.suffix.lower() == ".json" else report_markdown
        write_file(report_path, render(conversion, sources=sources, dialect=dialect,
                                   profile=profile.name, output=out_name))
    click.echo(summary_text(conversion), err=True)
    if conversion.flagged:
        click.echo(f"{len(conversion.flagged)} statement(s) need a manual rewrite before the "
                   "script runs on DSQL (flagged above)", err=True)
        sys.exit(ExitCode.FAILED)
    if conversion.needs_review:
        click.echo("review the changed and removed statements (comments in the script"
                   + (f", {report_path}" if report_path else "; --report FILE.md lists them")
                   + "), then: dsql-migrate sql -f " + (out_name or "OUT.sql"), err=True)
        sys.exit(ExitCode.FIXED_WITH_WARNINGS)
