"""A fast reader for the INSERTs that make up most of a dump: ``INSERT INTO t [(cols)] VALUES
(literal, ...), ...`` with literals only.

sqlglot reads about 200 KB of INSERTs a second; a 1 GB dump would take over an hour. These
statements have a fixed shape, so they are read here with regular expressions into the same
tree sqlglot would build (``exp.Insert`` of ``exp.Values`` of ``exp.Tuple`` of literals), and
everything downstream is shared. Anything else (a function call, a qualified name, adjacent
strings) returns ``None`` and goes to sqlglot. MySQL's escapes are decoded as sqlglot and MySQL
decode them; a test checks both readings agree.
"""

from __future__ import annotations

import re

from sqlglot import exp

_HEADER = re.compile(
    r"INSERT\s+(IGNORE\s+)?INTO\s+(`(?:[^`]|``)+`|[A-Za-z_$][\w$]*)\s*"
    r"(?:\(([^()`]*(?:`(?:[^`]|``)*`[^()`]*)*)\)\s*)?VALUES\s*",
    re.IGNORECASE,
)
_STRING = re.compile(
    r"(?:_(?:binary|utf8mb4|utf8mb3|utf8|latin1|ascii)\s*|N(?='))?"
    r"(?:'((?:[^'\\]|\\.|'')*)'|\"((?:[^\"\\]|\\.|\"\")*)\")",
    re.DOTALL | re.IGNORECASE,
)
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?=\s*[,)])")
_WORD = re.compile(r"(NULL|TRUE|FALSE|DEFAULT)(?=\s*[,)])", re.IGNORECASE)
_HEX = re.compile(r"(?:_binary\s*)?(?:0x([0-9A-Fa-f]+)|[Xx]'([0-9A-Fa-f]*)')(?=\s*[,)])")
_BITS = re.compile(r"(?:0b([01]+)|[Bb]'([01]*)')(?=\s*[,)])")
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


def _value(text: str, pos: int) -> tuple[exp.Expression, int] | None:
    match = _STRING.match(text, pos)
    if match is not None:
        if match.group(1) is not None:
            value = _ESCAPE_SINGLE.sub(_unescape, match.group(1))
        else:
            value = _ESCAPE_DOUBLE.sub(_unescape, match.group(2))
        return exp.Literal(this=value, is_string=True), match.end()
    match = _NUMBER.match(text, pos)
    if match is not None:
        number = match.group(0)
        if number.startswith("-"):
            return exp.Neg(this=exp.Literal(this=number[1:], is_string=False)), match.end()
        return exp.Literal(this=number, is_string=False), match.end()
    match = _WORD.match(text, pos)
    if match is not None:
        word = match.group(1).upper()
        node: exp.Expression = (
            exp.Null() if word == "NULL"
            else exp.Var(this="DEFAULT") if word == "DEFAULT"
            else exp.Boolean(this=word == "TRUE")
        )
        return node, match.end()
    match = _HEX.match(text, pos)
    if match is not None:
        return exp.HexString(this=match.group(1) or match.group(2) or ""), match.end()
    match = _BITS.match(text, pos)
    if match is not None:
        return exp.BitString(this=match.group(1) or match.group(2) or ""), match.end()
    return None


def _rows(text: str, pos: int) -> list[exp.Expression] | None:
    rows: list[exp.Expression] = []
    end = len(text)
    line, counted = 1, 0  # the line of each value, for error messages
    while True:
        if pos >= end or text[pos] != "(":
            return None
        values: list[exp.Expression] = []
        pos = _SPACE.match(text, pos + 1).end()  # type: ignore[union-attr]
        while True:
            read = _value(text, pos)
            if read is None:
                return None
            line += text.count("\n", counted, pos)
            counted = pos
            read[0].meta["line"] = line
            values.append(read[0])
            pos = _SPACE.match(text, read[1]).end()  # type: ignore[union-attr]
            if pos < end and text[pos] == ",":
                pos = _SPACE.match(text, pos + 1).end()  # type: ignore[union-attr]
                continue
            if pos < end and text[pos] == ")":
                break
            return None
        rows.append(exp.Tuple(expressions=values))
        pos = _SPACE.match(text, pos + 1).end()  # type: ignore[union-attr]
        if pos >= end:
            return rows
        if text[pos] != ",":
            return None
        pos = _SPACE.match(text, pos + 1).end()  # type: ignore[union-attr]


def read_insert(text: str) -> exp.Insert | None:
    """The tree of a literal-only multi-row INSERT, or ``None`` to let sqlglot read it."""
    header = _HEADER.match(text)
    if header is None:
        return None
    table = exp.Table(this=exp.to_identifier(_name(header.group(2))))
    target: exp.Expression = table
    if header.group(3) is not None:
        columns = _columns(header.group(3))
        if columns is None:
            return None
        target = exp.Schema(this=table, expressions=[exp.to_identifier(c) for c in columns])
    rows = _rows(text, header.end())
    if rows is None:
        return None
    return exp.Insert(
        this=target, expression=exp.Values(expressions=rows), ignore=bool(header.group(1))
    )
