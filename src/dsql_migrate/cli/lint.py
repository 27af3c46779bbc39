"""``dsql-migrate lint``: check SQL files against DSQL's rules, optionally fix them."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import ConfigError
from ..lint import REGISTRY, LintResult, LintSettings, fix_script, lint_script
from ..lint.report import exit_code, format_github, format_json, format_sarif, format_text
from ._common import AppContext

FORMATS = ("text", "json", "sarif", "github")


def _collect(paths: tuple[str, ...]) -> list[str]:
    """Files to lint: given files, ``*.sql`` under given directories, or ``-`` for stdin."""
    out: list[str] = []
    for raw in paths:
        if raw == "-":
            out.append("-")
            continue
        path = Path(raw)
        if path.is_dir():
            found = sorted(str(p) for p in path.rglob("*.sql") if p.is_file())
            if not found:
                raise ConfigError(f"{raw}: directory contains no *.sql files")
            out.extend(found)
        elif path.is_file():
            out.append(raw)
        else:
            raise ConfigError(f"{raw}: no such file or directory",
                              hint="give .sql files, directories, or - for stdin")
    return out


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8-sig")  # tolerate a BOM
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                          hint="convert the file to UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _list_rules(profile_name: str) -> None:
    for r in REGISTRY:
        flag = "" if r.default_enabled else "  (opt-in)"
        click.echo(f"{r.id:48} {r.severity.value:7} {r.summary}{flag}")


@click.command("lint")
@click.argument("paths", nargs=-1)
@click.option("--fix", is_flag=True, help="Rewrite what can be rewritten safely.")
@click.option("--profile", "profile_name",
              help="Capability profile: current or classic (default: config, else current).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="Report format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the fixed SQL (with --fix) or else the report to this file.")
@click.option("--in-place", is_flag=True, help="With --fix: rewrite the input files.")
@click.option("--enable", multiple=True, metavar="RULE", help="Enable a rule (repeatable).")
@click.option("--disable", multiple=True, metavar="RULE", help="Disable a rule (repeatable).")
@click.option("--list-rules", is_flag=True, help="List every rule id and exit.")
@click.pass_obj
def lint(  # noqa: PLR0917  (click passes options positionally)
    app: AppContext, paths: tuple[str, ...], fix: bool, profile_name: str | None,
         fmt: str, output: Path | None, in_place: bool, enable: tuple[str, ...],
         disable: tuple[str, ...], list_rules: bool) -> None:
    """Check SQL against DSQL's rules, and optionally fix it."""
    config = app.config
    section = config.section("lint")
    profile = config.profile(profile_name or section.get("profile"))
    if list_rules:
        _list_rules(profile.name)
        return
    if not paths:
        raise ConfigError("no input: give SQL files, directories, or - for stdin",
                          hint="dsql-migrate lint migrations/  or  cat x.sql | dsql-migrate "
                          "lint -")
    if in_place and not fix:
        raise ConfigError("--in-place needs --fix")
    if in_place and output is not None:
        raise ConfigError("use either --in-place or -o, not both")
    files = _collect(paths)
    if in_place and "-" in files:
        raise ConfigError("--in-place cannot rewrite stdin", hint="use -o FILE or stdout")
    if fix and output is not None and len(files) > 1:
        raise ConfigError("-o with --fix takes a single input file",
                          hint="use --in-place to fix several files")
    if fix and fmt == "text" and not in_place and output is None and len(files) > 1:
        raise ConfigError("--fix with several files needs --in-place (stdout holds one script)")
    settings = LintSettings.build(profile, section, enable=enable, disable=disable)

    results: list[LintResult] = []
    written: dict[str, str] = {}
    for path in files:
        text = _read(path)
        name = "<stdin>" if path == "-" else path
        result = (fix_script if fix else lint_script)(text, settings, name)
        results.append(result)
        if fix and result.fixed_sql is not None:
            if in_place:
                if result.fixed_sql != text:
                    Path(path).write_text(result.fixed_sql, encoding="utf-8")
                written[name] = path
            elif output is not None:
                output.write_text(result.fixed_sql, encoding="utf-8")
                written[name] = str(output)

    if fmt == "json":
        report = format_json(results, fixing=fix, profile=profile.name, outputs=written)
    elif fmt == "sarif":
        report = format_sarif(results, fixing=fix)
    elif fmt == "github":
        report = format_github(results, fixing=fix)
    else:
        report = format_text(results, fixing=fix)

    if fix and fmt == "text" and not written:
        # stdout carries the fixed SQL; the report goes to stderr
        sys.stdout.write(results[0].fixed_sql or "")
        click.echo(report, err=True, nl=False)
    elif not fix and output is not None:
        output.write_text(report, encoding="utf-8")
    else:
        click.echo(report, nl=False)
    raise SystemExit(int(exit_code(results, fixing=fix)))
