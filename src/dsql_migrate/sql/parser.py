"""Parse statements with pglast, with DSQL's own syntax understood.

PostgreSQL's grammar lacks DSQL's ``ASYNC`` keyword. Worse, it *accepts*
``CREATE INDEX ASYNC ON t (a)`` as an index named ``async``. So before parsing, the keyword is
recognised at the head of ``CREATE [UNIQUE] INDEX ASYNC ...`` and ``ALTER TABLE ASYNC ...``,
remembered on the statement (:attr:`ParsedStatement.is_async`) and blanked out with spaces of
the same length, so every position pglast reports still points into the original text.

Parsing uses pglast's JSON output (``parse_sql_json``), which is an order of magnitude faster
than building pglast's Python node objects. The whole script is parsed in one call; only when
that fails (a syntax error anywhere) is each statement parsed on its own, so one bad statement
costs its own diagnostic and nothing else.

Trees are plain ``dict``/``list`` values exactly as in pglast's JSON: a statement node is
``{"CreateStmt": {...}}`` and :attr:`ParsedStatement.node_type` / :attr:`ParsedStatement.node`
give its type name and body.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pglast import parser as _pg

from .classify import StatementKind, kind_of
from .splitter import Statement, split_script

Node = dict[str, Any]

_ASYNC_HEAD = re.compile(
    r"(?:CREATE\s+(?:UNIQUE\s+)?INDEX|ALTER\s+TABLE)\s+(ASYNC)\b", re.IGNORECASE
)
_AWS_IAM = re.compile(r"AWS\s+IAM\s+(GRANT|REVOKE)\b", re.IGNORECASE)


@dataclass(frozen=True)
class ParseFailure:
    """Why a statement did not parse, and where (character offset in the statement text)."""

    message: str
    offset: int


@dataclass
class ParsedStatement:
    """A :class:`Statement` with its parse tree, DSQL flags and class."""

    statement: Statement
    node_type: str | None
    node: Node | None
    is_async: bool = False
    error: ParseFailure | None = None
    kind: StatementKind = StatementKind.UNKNOWN
    _byte_base: int = field(default=0, repr=False)

    @property
    def text(self) -> str:
        return self.statement.text

    @property
    def line(self) -> int:
        return self.statement.line

    @property
    def column(self) -> int:
        return self.statement.column

    def char_offset(self, location: int | None) -> int:
        """Character offset in :attr:`text` of a pglast ``location`` value (a byte offset)."""
        if location is None or location < 0:
            return 0
        rel = location - self._byte_base
        text = self.statement.text
        if text.isascii():
            return max(0, min(rel, len(text)))
        return len(text.encode("utf-8")[: max(rel, 0)].decode("utf-8", errors="ignore"))

    def location_of(self, char_offset: int) -> int:
        """The pglast-style ``location`` (a byte offset) of a character offset in :attr:`text`."""
        return self._byte_base + len(self.statement.text[:char_offset].encode("utf-8"))

    def position(self, location: int | None = None) -> tuple[int, int]:
        """Line and column (1-based) in the script of a pglast ``location`` in this statement."""
        if location is None:
            return self.statement.line, self.statement.column
        return self.statement.position_of(self.char_offset(location))


def dsql_syntax(text: str) -> tuple[str, bool]:
    """``text`` with a leading DSQL ``ASYNC`` keyword blanked, and whether there was one."""
    m = _ASYNC_HEAD.match(text)
    if m is None:
        return text, False
    a, b = m.span(1)
    return text[:a] + " " * (b - a) + text[b:], True


def _unwrap(raw: Node) -> tuple[str, Node]:
    stmt = raw.get("stmt")
    if not stmt:
        return "EmptyStmt", {}
    ((node_type, node),) = stmt.items()
    return node_type, node


def _parse_one(stmt: Statement, text: str, is_async: bool) -> ParsedStatement:
    try:
        tree = json.loads(_pg.parse_sql_json(text))
    except _pg.ParseError as exc:
        if _AWS_IAM.match(text):
            return ParsedStatement(
                stmt, "AwsIamStmt", {"action": _AWS_IAM.match(text).group(1).upper()},  # type: ignore[union-attr]
                is_async, kind=kind_of("AwsIamStmt"),
            )
        # pglast gives a 0-based character index, or None for "at end of input"
        at = exc.args[1] if len(exc.args) > 1 else None
        offset = at if isinstance(at, int) else len(text)
        message = str(exc.args[0]) if exc.args else str(exc)
        return ParsedStatement(
            stmt, None, None, is_async, ParseFailure(message, max(0, min(offset, len(text))))
        )
    stmts = tree.get("stmts", [])
    if not stmts:
        return ParsedStatement(stmt, "EmptyStmt", {}, is_async, kind=StatementKind.OTHER)
    node_type, node = _unwrap(stmts[0])
    return ParsedStatement(stmt, node_type, node, is_async, kind=kind_of(node_type))


def parse_statement(stmt: Statement) -> ParsedStatement:
    """Parse one statement on its own."""
    text, is_async = dsql_syntax(stmt.text)
    return _parse_one(stmt, text, is_async)


def parse_statements(statements: list[Statement]) -> list[ParsedStatement]:
    """Parse statements from :func:`split_script`, in one pglast call when the script allows."""
    if not statements:
        return []
    prepared = [dsql_syntax(s.text) for s in statements]
    joined = ";\n".join(t for t, _ in prepared)
    try:
        tree = json.loads(_pg.parse_sql_json(joined))
    except _pg.ParseError:
        tree = None
    if tree is not None and len(tree.get("stmts", ())) == len(statements):
        result: list[ParsedStatement] = []
        byte_base = 0
        ascii_script = joined.isascii()
        for stmt, (text, is_async), raw in zip(statements, prepared, tree["stmts"], strict=True):
            if raw.get("stmt_location", 0) != byte_base:
                break  # the split disagrees with the parser's: parse one by one instead
            node_type, node = _unwrap(raw)
            result.append(
                ParsedStatement(
                    stmt, node_type, node, is_async, kind=kind_of(node_type), _byte_base=byte_base
                )
            )
            byte_base += (len(text) if ascii_script else len(text.encode("utf-8"))) + 2
        else:
            return result
    return [_parse_one(s, t, a) for s, (t, a) in zip(statements, prepared, strict=True)]


def parse_script(script: str) -> list[ParsedStatement]:
    """Split and parse a whole script; never raises on bad SQL (see ``ParsedStatement.error``)."""
    return parse_statements(split_script(script))


__all__ = [
    "Node",
    "ParseFailure",
    "ParsedStatement",
    "dsql_syntax",
    "parse_script",
    "parse_statement",
    "parse_statements",
]
