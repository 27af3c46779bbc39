"""``dsql-migrate lint`` and ``ci lint-revisions`` without click, for commit hooks and editors
(issue 18: start-up; issue 17: the pre-commit hooks).

Importing click and building the command group costs more than linting a small file, so the
console script (:func:`dsql_migrate.cli.run`) first asks :func:`fast_lint` whether it can run
the command line itself. It can only for the plain forms, read exactly as click reads them:

    dsql-migrate [--config FILE] [-v...] lint [--format F] [--profile P] [--enable R]...
                 [--disable R]... PATH...
    dsql-migrate [--config FILE] [-v...] ci lint-revisions [--profile P] FILE...

Anything else (``--help``, ``--fix``, ``-o``, an unknown or malformed option, a value click
would refuse, a revision path that is not a file) returns None and goes through click, which
gives its own usage errors. Both paths run the same bodies (:mod:`dsql_migrate.cli._lintcmd`);
tests/cli/test_fast.py compares their output and exit codes.
"""

from __future__ import annotations

import os.path
import re
from typing import TYPE_CHECKING

from ._plain import FORMATS

if TYPE_CHECKING:
    from pathlib import Path

_VERBOSE = re.compile(r"-v+")
#: lint's options that take one value, by their long name: the LintArgs field they set
_VALUES = {"--format": "fmt", "--profile": "profile_name", "--enable": "enable",
           "--disable": "disable"}
#: the commands run here: their words, and their options that take one value
_COMMANDS: dict[tuple[str, ...], dict[str, str]] = {
    ("lint",): _VALUES,
    ("ci", "lint-revisions"): {"--profile": "profile_name"},
}


class _Parsed:
    """The command line as read. A plain class: no dataclasses or pathlib on this path, whose
    import costs more than linting a small file (issue 18; tests/cli/test_fast.py)."""

    __slots__ = ("command", "config", "paths", "values", "verbose")

    def __init__(self) -> None:
        self.command: tuple[str, ...] = ()
        self.config: str | None = None
        self.verbose = 0
        self.paths: list[str] = []
        self.values: dict[str, list[str]] = {}


def _value(argv: list[str], i: int) -> tuple[str | None, int]:
    """The value of the option at ``argv[i]`` (``--opt=V`` or ``--opt V``), and the next index;
    None for what click might read otherwise (missing, empty, or looking like an option)."""
    _, eq, inline = argv[i].partition("=")
    if eq:
        return (inline or None), i + 1
    if i + 1 >= len(argv) or not argv[i + 1] or argv[i + 1].startswith("-"):
        return None, i + 1
    return argv[i + 1], i + 2


def _global(argv: list[str], parsed: _Parsed) -> int | None:
    """Read the group's options before the command; the index after the command's words (and
    ``parsed.command`` set), or None."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        for words in _COMMANDS:
            if tuple(argv[i:i + len(words)]) == words:
                parsed.command = words
                return i + len(words)
        if _VERBOSE.fullmatch(arg):
            parsed.verbose += len(arg) - 1
            i += 1
        elif arg == "--verbose":
            parsed.verbose += 1
            i += 1
        elif arg.partition("=")[0] == "--config":
            value, i = _value(argv, i)
            # click refuses a directory (dir_okay=False): leave that message to click
            if value is None or os.path.isdir(value):
                return None
            parsed.config = value
        else:
            return None
    return None


def parse(argv: list[str]) -> _Parsed | None:
    """The plain command lines (see the module), or None for click to read."""
    parsed = _Parsed()
    start = _global(argv, parsed)
    if start is None:
        return None
    options = _COMMANDS[parsed.command]
    i = start
    while i < len(argv):
        arg = argv[i]
        if arg == "-" or not arg.startswith("-"):
            parsed.paths.append(arg)
            i += 1
            continue
        name = arg.partition("=")[0]
        if name not in options:
            return None  # --help, --fix, -o, --, an unknown option: click's
        value, i = _value(argv, i)
        if value is None or (name == "--format" and value not in FORMATS):
            return None
        parsed.values.setdefault(options[name], []).append(value)
    if parsed.command == ("ci", "lint-revisions") and not all(
            p != "-" and os.path.isfile(p) for p in parsed.paths):
        return None  # click's message: it must exist and be a file
    return parsed


def _path(name: str) -> Path:
    """``Path(name)``, with pathlib imported only when a path object is needed (a --config
    file, revision files): a plain lint reads its files by name (issue 18: start-up)."""
    from pathlib import Path

    return Path(name)


def fast_lint(argv: list[str]) -> int | None:
    """Run a plain ``lint`` or ``ci lint-revisions`` command line and return its exit code;
    None when click must."""
    parsed = parse(argv)
    if parsed is None:
        return None
    # imported once the command line is ours: --help and the other commands pay for none of it
    from ..errors import DsqlMigrateError
    from ._lintcmd import LintArgs, run_lint, run_lint_revisions
    from ._plain import configure_logging, error_lines, write

    revisions = parsed.command == ("ci", "lint-revisions")
    if parsed.verbose or revisions:
        # lint itself logs nothing at WARNING or above, so at -v0 it leaves the logging module
        # (~5 ms) unimported; the revision check runs Alembic's code, which may log
        configure_logging(parsed.verbose)
    values = parsed.values
    config = _path(parsed.config) if parsed.config is not None else None
    profile_name = values.get("profile_name", [None])[-1]
    try:
        if revisions:
            return run_lint_revisions(config, tuple(_path(p) for p in parsed.paths),
                                      profile_name)
        args = LintArgs(
            paths=tuple(parsed.paths),
            profile_name=profile_name,
            fmt=values.get("fmt", ["text"])[-1],
            enable=tuple(values.get("enable", ())),
            disable=tuple(values.get("disable", ())),
        )
        return run_lint(config, args)
    except DsqlMigrateError as exc:
        write("".join(f"{line}\n" for line in error_lines(exc)), err=True)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        write("interrupted\n", err=True)
        return 130


__all__ = ["fast_lint", "parse"]
