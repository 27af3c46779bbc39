"""What the resynchronisation of the plugin side leaves out (see :data:`allowed.LEFT_OUT`).

The plugin side is resynchronised by replaying stock Alembic's history through the raw
connection of the emulator's server (see :mod:`realworld.run`). That server is DSQL's
PostgreSQL, and it cannot build what DSQL has not got (an extension's objects, a GIN index
with an extension's operator class). :class:`StatementFilter` runs on the replay's connection
before each statement: a statement that makes (or changes, or drops) such an object is replaced
by a no-op and recorded, so that the harness can say what it left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pglast

from .allowed import LEFT_OUT

NO_OP = "SELECT 1"


@dataclass(eq=False)  # hashable by identity: SQLAlchemy's event registry keeps listeners
class StatementFilter:
    """``before_cursor_execute`` listener (``retval=True``) for the resync's connection."""

    #: (rule name, statement) of every statement left out
    left_out: list[tuple[str, str]] = field(default_factory=list)
    #: index names left out so far (their DROP INDEX is left out too)
    indexes: set[str] = field(default_factory=set)

    def __call__(self, conn: Any, cursor: Any, statement: str, parameters: Any,
                 context: Any, executemany: bool) -> tuple[str, Any]:
        if parameters or executemany:
            return statement, parameters  # DDL has no parameters: not one of ours
        return self.filter(statement), parameters

    def filter(self, statement: str) -> str:
        """``statement`` without its sub-statements that make objects of :data:`LEFT_OUT`
        (a no-op when that is all of it)."""
        try:
            parsed = pglast.parse_sql(statement)
        except pglast.parser.ParseError:
            return statement
        kept: list[str] = []
        dropped = False
        for raw in parsed:
            text = _text(statement, raw)
            rule = next((r for r in LEFT_OUT if r.statement(raw.stmt, self.indexes)), None)
            if rule is None:
                kept.append(text)
            else:
                dropped = True
                self.left_out.append((rule.name, " ".join(text.split())))
        if not dropped:
            return statement
        return ";\n".join(kept) if kept else NO_OP


def _text(statement: str, raw: Any) -> str:
    """The source text of one parsed statement (``stmt_len`` 0: up to the end)."""
    encoded = statement.encode()
    start = raw.stmt_location or 0
    end = start + raw.stmt_len if raw.stmt_len else len(encoded)
    return encoded[start:end].decode().strip().rstrip(";")
