"""What the command line shares without importing click: logging, error text, plain output.

The fast path of ``lint`` (``cli/_fast.py``) runs without click (issue 18: start-up), so what it
has in common with the click commands lives here, and ``cli/_common.py`` re-uses it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from ..errors import DsqlMigrateError

#: the report formats of ``lint``
FORMATS = ("text", "json", "sarif", "github")


def configure_logging(verbose: int) -> None:
    import logging  # here: the fast lint path never needs it (issue 18: start-up)

    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("dsql_migrate")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def error_lines(exc: DsqlMigrateError) -> list[str]:
    """The lines a user error is reported with on stderr: the message, the SQL, the hint."""
    lines = [f"error: {exc.message}"]
    sql_text = getattr(exc, "sql_text", None)
    if isinstance(sql_text, str) and sql_text.strip():
        sql = sql_text.strip().splitlines()
        shown = "\n       ".join(sql[:12]) + ("\n       ..." if len(sql) > 12 else "")
        lines.append(f"  sql: {shown}")
    if exc.hint:
        lines.append(f"  hint: {exc.hint}")
    return lines


def write(text: str, *, err: bool = False) -> None:
    """Write ``text`` as it is to stdout (or stderr) and flush: the reports are whole text."""
    stream = sys.stderr if err else sys.stdout
    stream.write(text)
    stream.flush()


def write_file(path: Path | str, text: str) -> None:
    """Write an output file (``-o``, ``--in-place``, ``--write-plan``); a path that cannot be
    written is the user's to correct (exit 2), not a traceback."""
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        from ..errors import ConfigError

        raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}",
                          hint="check the directory exists and may be written") from None


__all__ = ["FORMATS", "configure_logging", "error_lines", "write", "write_file"]
