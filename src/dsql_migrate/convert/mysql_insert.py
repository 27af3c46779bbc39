"""A fast reader for the INSERTs that make up most of a dump: ``INSERT INTO t [(cols)] VALUES
(literal, ...), ...`` with literals only.

sqlglot reads about 200 KB of INSERTs a second; a 1 GB dump would take over an hour. These
statements have a fixed shape, so they are read here with one regular expression into value
tokens (:data:`.mysql_values.Token`), the form an INSERT sqlglot read is also brought to
(:func:`from_tree`), so everything downstream is shared. Anything else (a function call, a
qualified name, adjacent strings) returns ``None`` and goes to sqlglot. MySQL's escapes are
decoded as sqlglot and MySQL decode them; a test checks both readings agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlglot import exp

from .mysql_values import Token, token_of

_HEADER = re.compile(
    r"INSERT\s+(IGNORE\s+)?INTO\s+(`(?:[^`]|``)+`|[A-Za-z_$][\w$]*)\s*"
    r"(?:\(([^()`]*(?:`(?:[^`]|``)*`[^()`]*)*)\)\s*)?VALUES\s*",
    re.IGNORECASE,
)
_SPACE = re.compile(r"\s*")
_ESCAPE_SINGLE = re.compile(r"\\(.)|''", re.DOTALL)
_ESCAPE_DOUBLE = re.compile(r'\\(.)|""', re.DOTALL)
_ESCAPES = {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a",
            "%": "\\%", "_": "\\_"}


def _unescape(match: re.Match[str]) -> str:
    char = match.group(1)
    if char is None:  # a doubled quote
        return match.group(0)[0]
    return _ESCAPES.get(char, char)


def _name(text: str) -> str:
    return text[1:-1].replace("``", "`") if text.startswith("`") else text


def _columns(text: str) -> list[str] | None:
    names = [part.strip() for part in text.split(",")]
    if any(not name or ("`" in name[1:-1] and "``" not in name) for name in names):
        return None
    return [_name(name) for name in names]


@dataclass
class LiteralInsert:
    """An ``INSERT ... VALUES`` whose rows are read into value tokens (see ``Token``)."""

    table: str
    columns: list[str] | None  #: as listed, or None for all the table's columns in order
    rows: list[list[Token]]
    lines: list[int]  #: per row, its line within the statement (1-based)
    ignore: bool = False


_VALUE = re.compile(
    r"""(?:_(?:binary|utf8mb4|utf8mb3|utf8|latin1|ascii)\s*|N(?='))?'(?P<single>(?:[^'\\]|\\.|'')*)'
    |(?:_(?:binary|utf8mb4|utf8mb3|utf8|latin1|ascii)\s*)?"(?P<double>(?:[^"\\]|\\.|"")*)"
    |(?P<num>-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?=\s*[,)])
    |(?P<word>NULL|TRUE|FALSE|DEFAULT)(?=\s*[,)])
    |(?:_binary\s*)?(?:0x(?P<hex>[0-9A-Fa-f]+)|[Xx]'(?P<hexq>[0-9A-Fa-f]*)')(?=\s*[,)])
    |(?:0b(?P<bits>[01]+)|[Bb]'(?P<bitsq>[01]*)')(?=\s*[,)])""",
    re.DOTALL | re.IGNORECASE | re.VERBOSE,
)
_AFTER_VALUE = re.compile(r"\s*([,)])\s*")


def _token(match: re.Match[str]) -> Token:
    kind = match.lastgroup
    if kind == "single":
        return ("str", _ESCAPE_SINGLE.sub(_unescape, match.group("single")))
    if kind == "double":
        return ("str", _ESCAPE_DOUBLE.sub(_unescape, match.group("double")))
    if kind == "num":
        return ("num", match.group("num"))
    if kind == "word":
        word = match.group("word").upper()
        if word in ("TRUE", "FALSE"):
            return ("bool", word == "TRUE")
        return ("null", None) if word == "NULL" else ("default", None)
    if kind in ("hex", "hexq"):
        return ("hex", match.group(kind))
    return ("bits", match.group(kind or "bits"))


def _rows(text: str, pos: int) -> tuple[list[list[Token]], list[int]] | None:
    rows: list[list[Token]] = []
    lines: list[int] = []
    end = len(text)
    line, counted = 1, 0  # the line of each row, for error messages
    value_at, after = _VALUE.match, _AFTER_VALUE.match
    while True:
        if pos >= end or text[pos] != "(":
            return None
        line += text.count("\n", counted, pos)
        counted = pos
        values: list[Token] = []
        pos = _SPACE.match(text, pos + 1).end()  # type: ignore[union-attr]
        while True:
            match = value_at(text, pos)
            if match is None:
                return None
            values.append(_token(match))
            separator = after(text, match.end())
            if separator is None:
                return None
            pos = separator.end()
            if separator.group(1) == ")":
                break
        rows.append(values)
        lines.append(line)
        if pos >= end:
            return rows, lines
        if text[pos] != ",":
            return None
        pos = _SPACE.match(text, pos + 1).end()  # type: ignore[union-attr]


def read_insert(text: str) -> LiteralInsert | None:
    """A literal-only multi-row INSERT, or ``None`` to let sqlglot read it."""
    header = _HEADER.match(text)
    if header is None:
        return None
    columns = None
    if header.group(3) is not None:
        columns = _columns(header.group(3))
        if columns is None:
            return None
    read = _rows(text, header.end())
    if read is None:
        return None
    return LiteralInsert(
        _name(header.group(2)), columns, read[0], read[1], ignore=bool(header.group(1))
    )


def from_tree(table: str, tree: exp.Insert) -> LiteralInsert:
    """The same, from the tree of an INSERT sqlglot read (values may be expressions)."""
    columns = (
        [node.name for node in tree.this.expressions]
        if isinstance(tree.this, exp.Schema)
        else None
    )
    rows, lines = [], []
    for row in tree.expression.expressions:
        values = row.expressions if isinstance(row, exp.Tuple) else [row]
        rows.append([token_of(value) for value in values])
        lines.append(int(values[0].meta.get("line", 1)) if values else 1)
    return LiteralInsert(table, columns, rows, lines, ignore=bool(tree.args.get("ignore")))
