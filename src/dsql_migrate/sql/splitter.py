"""Split a SQL script into statements with exact positions.

The splitter is a small lexer, not a parser: it knows exactly the lexical constructs that can
hide a ``;`` (quoted strings in all their forms, quoted identifiers, dollar quotes, line and
nested block comments, SQL-standard ``BEGIN ATOMIC ... END`` function bodies) and nothing else.
The data rows after ``COPY ... FROM STDIN;`` (up to a ``\\.`` line, as in pg_dump output) are
not SQL: they are skipped and kept in the next statement's ``leading`` text (without a ``\\.``
line, nothing is skipped). It never fails:
unterminated quotes or comments simply run to the end of the script, and the parser reports
them later with a position.
"""

from __future__ import annotations

import functools
import re

from ._record import FrozenRecord

# One alternation, first match wins; everything else is plain text and skipped by ``search``.
_TOKENS = r"""
      (?P<semi>;)
    | (?P<line>--[^\n]*)
    | (?P<block>/\*)
    | (?P<estr>(?<![A-Za-z0-9_])[eE]'(?:[^'\\]|\\.|'')*(?:'|\Z))
    | (?P<str>'(?:[^']|'')*(?:'|\Z))
    | (?P<ident>"(?:[^"]|"")*(?:"|\Z))
    | (?P<dollar>\$(?:[^\W\d]\w*)?\$)
    """
# Only with BEGIN ATOMIC in the script: without it, this alternative is dead weight.
_WORDS = r"""
    | (?P<word>\b(?:ATOMIC|CASE|END)\b)
    """
_FLAGS = re.VERBOSE | re.IGNORECASE | re.DOTALL


def _first_chars(pattern: str, chars: str) -> re.Pattern[str]:
    """``pattern`` behind a lookahead for the characters its alternatives can start with: the
    same matches, but ``search`` skips the plain text between tokens ~3x faster (the estr
    alternative's lookbehind keeps the regex engine from finding that set by itself)."""
    return re.compile(f"(?=[{chars}])(?:{pattern})", _FLAGS)


_TOKEN_FAST = _first_chars(_TOKENS, ";\\-/eE'\"$")


@functools.cache
def _token_atomic() -> re.Pattern[str]:
    """The tokens with the ``BEGIN ATOMIC`` words, compiled when a script first has them."""
    return _first_chars(_TOKENS + _WORDS, ";\\-/eE'\"$aAcC")


_BLOCK_TOKEN = re.compile(r"/\*|\*/")
# A "$n" parameter placeholder is not a dollar quote: the character before "$" decides.
_IDENT_CHAR = re.compile(r"\w")  # Unicode-aware: identifiers may hold non-ASCII letters


class Statement(FrozenRecord):
    """One statement of a script.

    ``text`` excludes the terminating ``;`` and the whitespace and comments before the first
    token; ``leading`` is the comment/whitespace text that preceded it (where suppression
    comments live). ``start``/``end`` are character offsets of ``text`` in the script;
    ``line``/``column`` (both 1-based, column in characters) locate its first character.
    Never changed once made.
    """

    __slots__ = ("column", "end", "index", "leading", "line", "start", "terminated", "text")
    _fields = ("index", "text", "start", "end", "line", "column", "leading", "terminated")

    def __init__(self, index: int, text: str, start: int, end: int, line: int, column: int,
                 leading: str = "", terminated: bool = True) -> None:
        self.index = index
        self.text = text
        self.start = start
        self.end = end
        self.line = line
        self.column = column
        self.leading = leading
        self.terminated = terminated

    def position_of(self, offset: int) -> tuple[int, int]:
        """Line and column (1-based) of character ``offset`` within :attr:`text`."""
        before = self.text[:offset]
        newlines = before.count("\n")
        if newlines == 0:
            return self.line, self.column + offset
        return self.line + newlines, offset - before.rfind("\n")


def _skip_block_comment(script: str, pos: int) -> int:
    """``pos`` is just after an opening ``/*``; returns the offset after its matching ``*/``."""
    depth = 1
    while depth:
        m = _BLOCK_TOKEN.search(script, pos)
        if m is None:
            return len(script)
        depth += 1 if m.group() == "/*" else -1
        pos = m.end()
    return pos


def _leading_end(script: str, pos: int, end: int) -> int:
    """Offset of the first token at or after ``pos`` (skipping whitespace and comments)."""
    while pos < end:
        ch = script[pos]
        if ch.isspace():
            pos += 1
        elif script.startswith("--", pos):
            nl = script.find("\n", pos)
            pos = end if nl == -1 or nl > end else nl + 1
        elif script.startswith("/*", pos):
            pos = min(_skip_block_comment(script, pos + 2), end)
        else:
            break
    return pos


_COPY_STDIN = re.compile(r"COPY\b[^;]*\bFROM\s+STDIN\b", re.IGNORECASE | re.DOTALL)
_COPY_END = re.compile(r"^\\\.[ \t]*(?:\r?\n|\Z)", re.MULTILINE)


def _copy_data_end(script: str, pos: int) -> int:
    """After ``COPY ... FROM STDIN;`` the data rows follow, up to a line holding ``\\.``:
    they are not SQL. Returns the offset just after that line; without one, ``pos``: what
    follows is taken as SQL rather than hidden (the linter warns about the COPY)."""
    m = _COPY_END.search(script, pos)
    return pos if m is None else m.end()


def copy_data_length(previous: Statement, leading: str) -> int:
    """How much of ``leading`` (the text before a statement) is the data rows of ``previous``
    when that is a ``COPY ... FROM STDIN`` (through its ``\\.`` line); 0 otherwise. Whoever moves
    statements around keeps that much right after the COPY, and the rest (comments) with the
    statement it precedes."""
    if not _COPY_STDIN.match(previous.text):
        return 0
    return _copy_data_end(leading, 0)


def split_script(script: str) -> list[Statement]:
    """Split ``script`` into statements; empty statements (``;;``, comments only) are dropped.

    >>> [s.text for s in split_script("SELECT 1; -- x\\nSELECT ';'")]
    ['SELECT 1', "SELECT ';'"]
    """
    statements: list[Statement] = []
    seg_start = 0
    pos = 0
    n = len(script)
    atomic_depth = 0  # inside BEGIN ATOMIC ... END, ";" does not end the statement
    saw_atomic = False
    line = 1
    line_start = 0  # offset of the first character of ``line``
    counted = 0  # newlines counted up to this offset

    lead_start = 0  # where the text before the next statement begins (after a COPY's data)

    def emit(end: int, terminated: bool) -> None:
        nonlocal line, line_start, counted
        first = _leading_end(script, seg_start, end)
        text = script[first:end].rstrip()
        if not text:
            return
        chunk_newlines = script.count("\n", counted, first)
        if chunk_newlines:
            line += chunk_newlines
            line_start = script.rfind("\n", counted, first) + 1
        counted = first
        statements.append(
            Statement(
                index=len(statements),
                text=text,
                start=first,
                end=first + len(text),
                line=line,
                column=first - line_start + 1,
                leading=script[lead_start:first],
                terminated=terminated,
            )
        )

    token = _token_atomic() if "atomic" in script.lower() else _TOKEN_FAST
    while pos < n:
        m = token.search(script, pos)
        if m is None:
            break
        kind = m.lastgroup
        pos = m.end()
        if kind == "semi":
            if atomic_depth:
                continue
            before = len(statements)
            emit(m.start(), True)
            emitted = len(statements) > before
            # an empty statement's text (a COPY's data block, a stray ";") stays in the next
            # statement's leading text
            seg_start = pos
            if emitted:
                lead_start = pos
            saw_atomic = False
            # only the COPY's own ";" starts its data (not an empty statement after the data)
            if emitted and _COPY_STDIN.match(statements[-1].text):
                seg_start = pos = _copy_data_end(script, pos)
        elif kind == "block":
            pos = _skip_block_comment(script, pos)
        elif kind == "dollar":
            if m.start() > 0 and _IDENT_CHAR.match(script, m.start() - 1):
                pos = m.start() + 1  # e.g. "a$1$": part of an identifier, not a quote
                continue
            tag = m.group()
            close = script.find(tag, pos)
            pos = n if close == -1 else close + len(tag)
        elif kind == "word":
            word = m.group().upper()
            if word == "ATOMIC":
                prefix = script[seg_start : m.start()].rstrip().upper()
                if prefix.endswith("BEGIN"):
                    saw_atomic = True
                    atomic_depth += 1
            elif saw_atomic and word == "CASE":
                atomic_depth += 1
            elif saw_atomic and word == "END" and atomic_depth:
                atomic_depth -= 1
        # line comments, strings and quoted identifiers are skipped by ``pos = m.end()``
    emit(n, False)
    return statements


__all__ = ["Statement", "copy_data_length", "split_script"]
