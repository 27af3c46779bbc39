"""The body of ``dsql-migrate lint``, without click: the click command (``cli/lint.py``) and the
fast path (``cli/_fast.py``) both run it, so options, output and exit codes are the same."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, NamedTuple

from .._gc import cycle_collector_paused
from ..config import load_config
from ..errors import ConfigError
from ._plain import FORMATS, write, write_file

if TYPE_CHECKING:
    from pathlib import Path


class LintArgs(NamedTuple):
    """The command's options, as click (or the fast path) parsed them.

    A NamedTuple, and files read by name: a plain lint imports neither dataclasses nor pathlib,
    whose imports cost more than linting a small file (issue 18; tests/cli/test_fast.py).
    """

    paths: tuple[str, ...] = ()
    fix: bool = False
    profile_name: str | None = None
    fmt: str = "text"
    output: Path | None = None
    in_place: bool = False
    enable: tuple[str, ...] = ()
    disable: tuple[str, ...] = ()
    list_rules: bool = False


def _collect(paths: tuple[str, ...]) -> list[str]:
    """Files to lint: given files, ``*.sql`` under given directories, or ``-`` for stdin."""
    out: list[str] = []
    for raw in paths:
        if raw == "-":
            out.append("-")
            continue
        if os.path.isdir(raw):
            from pathlib import Path

            found = sorted(str(p) for p in Path(raw).rglob("*.sql") if p.is_file())
            if not found:
                raise ConfigError(f"{raw}: directory contains no *.sql files")
            out.extend(found)
        elif os.path.isfile(raw):
            out.append(raw)
        else:
            raise ConfigError(f"{raw}: no such file or directory",
                              hint="give .sql files, directories, or - for stdin")
    return out


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8-sig") as fh:  # tolerate a BOM
            return fh.read()
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                          hint="convert the file to UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _list_rules() -> None:
    from ..lint import REGISTRY

    for r in REGISTRY:
        flag = "" if r.default_enabled else "  (opt-in)"
        write(f"{r.id:48} {r.severity.value:7} {r.summary}{flag}\n")


#: environment variable that fixes the number of processes for large files: 1 or 2
WORKERS_VARIABLE = "DSQL_MIGRATE_LINT_WORKERS"


def _workers() -> int:
    """Processes for a large file (see ``lint_script``; the command is single-threaded, so
    forking is safe): ``DSQL_MIGRATE_LINT_WORKERS`` if set, else two where a second CPU is
    usable and, by the load average, idle. On a busy machine the second process would take CPU
    from the first (each parses the script), and the command ran up to twice as slow (issue 18:
    benchmarks/README.md)."""
    forced = os.environ.get(WORKERS_VARIABLE)
    if forced is not None:
        if forced.strip() not in ("1", "2"):
            raise ConfigError(f"{WORKERS_VARIABLE}={forced!r}: must be 1 or 2",
                              hint=f"unset {WORKERS_VARIABLE} to choose by the CPUs and load")
        return int(forced)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    if usable < 2:
        return 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available here: do not guess
        return 1
    return 2 if usable - load >= 1 else 1


def _check(args: LintArgs, files: list[str]) -> None:
    """The combinations of options that make no sense, refused before reading anything."""
    if args.in_place and "-" in files:
        raise ConfigError("--in-place cannot rewrite stdin", hint="use -o FILE or stdout")
    if args.fix and args.output is not None and len(files) > 1:
        raise ConfigError("-o with --fix takes a single input file",
                          hint="use --in-place to fix several files")
    if (args.fix and args.fmt == "text" and not args.in_place and args.output is None
            and len(files) > 1):
        raise ConfigError("--fix with several files needs --in-place (stdout holds one script)")


def run_lint(config_path: Path | None, args: LintArgs) -> int:
    """Lint (or fix) the files and write the report; the exit code. Raises ConfigError."""
    with cycle_collector_paused():
        return _run(config_path, args)


def _run(config_path: Path | None, args: LintArgs) -> int:
    config = load_config(config_path)
    section = config.section("lint")
    profile = config.profile(args.profile_name or section.get("profile"))
    if args.list_rules:
        _list_rules()
        return 0
    if not args.paths:
        raise ConfigError("no input: give SQL files, directories, or - for stdin",
                          hint="dsql-migrate lint migrations/  or  cat x.sql | dsql-migrate "
                          "lint -")
    if args.in_place and not args.fix:
        raise ConfigError("--in-place needs --fix")
    if args.in_place and args.output is not None:
        raise ConfigError("use either --in-place or -o, not both")
    files = _collect(args.paths)
    _check(args, files)
    # imported here: --list-rules and the errors above need none of the linter (start-up)
    from ..lint import LintResult, LintSettings, fix_script, lint_script
    from ..lint.report import exit_code, format_github, format_json, format_sarif, format_text

    settings = LintSettings.build(profile, section, enable=args.enable, disable=args.disable)
    workers = 1 if args.fix else _workers()
    fix, output = args.fix, args.output
    results: list[LintResult] = []
    written: dict[str, str] = {}
    for path in files:
        text = _read(path)
        name = "<stdin>" if path == "-" else path
        result = (fix_script(text, settings, name) if fix
                  else lint_script(text, settings, name, workers=workers))
        results.append(result)
        if fix and result.fixed_sql is not None:
            if args.in_place:
                if result.fixed_sql != text:
                    write_file(path, result.fixed_sql)
                written[name] = path
            elif output is not None:
                write_file(output, result.fixed_sql)
                written[name] = str(output)

    if args.fmt == "json":
        report = format_json(results, fixing=fix, profile=profile.name, outputs=written)
    elif args.fmt == "sarif":
        report = format_sarif(results, fixing=fix)
    elif args.fmt == "github":
        report = format_github(results, fixing=fix)
    else:
        report = format_text(results, fixing=fix)

    if fix and args.fmt == "text" and not written:
        # stdout carries the fixed SQL; the report goes to stderr
        write(results[0].fixed_sql or "")
        write(report, err=True)
    elif not fix and output is not None:
        write_file(output, report)
    else:
        write(report)
    return int(exit_code(results, fixing=fix))


def run_lint_revisions(config_path: Path | None, paths: tuple[Path, ...],
                       profile_name: str | None) -> int:
    """``ci lint-revisions``: check Alembic revision files offline; the exit code."""
    from ..ci.revisions import check_revision_file
    from ..errors import ExitCode

    config = load_config(config_path)
    profile = config.profile(profile_name or config.section("lint").get("profile"))
    errors = warnings = checked = 0
    for path in paths:
        result = check_revision_file(path, profile)
        if result.skipped is not None:
            continue
        checked += 1
        for line in result.errors:
            write(f"error: {line}\n")
        for line in result.warnings:
            write(f"warning: {line}\n")
        errors += len(result.errors)
        warnings += len(result.warnings)
    tail = f"in {checked} revision file(s)"
    write(f"{errors} error(s), {warnings} warning(s) {tail}\n" if errors or warnings
          else f"no problems found {tail}\n")
    return int(ExitCode.FAILED if errors else ExitCode.OK)


__all__ = ["FORMATS", "LintArgs", "run_lint", "run_lint_revisions"]
