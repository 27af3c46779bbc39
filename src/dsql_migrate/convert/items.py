"""Source statements as the converters see them: text, line, parse, and a COPY's data block."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import DsqlMigrateError, ExitCode
from ..sql import ParsedStatement, Statement, parse_script, parse_statement, split_script

_COPY_END = re.compile(r"^\\\.[ \t]*\r?$", re.MULTILINE)


class SourceError(DsqlMigrateError):
    """The source script cannot be read or parsed; nothing was written."""

    exit_code = ExitCode.FAILED


@dataclass
class Item:
    """One source statement. ``data`` is a ``COPY ... FROM STDIN`` block (rows and ``\\.``)."""

    source: str
    line: int
    parsed: ParsedStatement
    data: str | None = None

    @property
    def text(self) -> str:
        return self.parsed.text.strip()

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"

    @property
    def preview(self) -> str:
        one = " ".join(self.text.split())
        return one if len(one) <= 80 else one[:77] + "..."


def items_from_script(text: str, source: str) -> list[Item]:
    """Every statement of ``text`` with its line, and each COPY's data block beside it."""
    out: list[Item] = []
    for p in parse_script(_end_meta_commands(text)):
        item = Item(source, p.line, p)
        if p.node_type == "CopyStmt" and _from_stdin(p):
            item.data = _copy_block(text, p, source)
        out.append(item)
    return out


def items_from_statements(statements: Iterable[tuple[int, str]], source: str) -> list[Item]:
    """Items for PostgreSQL statements another front end produced, each with the line of the
    source statement it came from."""
    out: list[Item] = []
    for line, sql in statements:
        # a front end may hand over text holding several statements: each becomes an item
        # (never only the first), at its own line
        for part in split_script(sql):
            stmt = Statement(len(out), part.text, part.start, part.end,
                             line + part.line - 1, part.column)
            out.append(Item(source, stmt.line, parse_statement(stmt)))
    return out


def _end_meta_commands(text: str) -> str:
    """``text`` with a ``;`` after each psql meta-command (``\\connect db``), which ends at
    its line's end, not at a ``;``: otherwise the next statement would be read as part of it.
    Lines and columns are unchanged."""
    while True:
        cut = next((s.start + s.text.index("\n") for s in split_script(text)
                    if s.text.startswith("\\") and "\n" in s.text), None)
        if cut is None:
            return text
        text = text[:cut] + ";" + text[cut:]


def _from_stdin(p: ParsedStatement) -> bool:
    node = p.node or {}
    return bool(node.get("is_from")) and not node.get("filename") and not node.get("query")


def _copy_block(script: str, p: ParsedStatement, source: str) -> str:
    start = script.find("\n", p.statement.end)
    end = _COPY_END.search(script, start + 1) if start >= 0 else None
    if end is None:
        raise SourceError(f"{source}:{p.line}: the COPY ... FROM STDIN data block has no end "
                          "line (\\.)", hint="end the rows with a line holding only \\.")
    stop = script.find("\n", end.end())
    return script[start + 1:stop + 1 if stop >= 0 else len(script)].rstrip("\r\n") + "\n"
