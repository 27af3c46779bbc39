"""Explicit transaction blocks (``BEGIN`` ... ``COMMIT``) of a parsed script.

DSQL's transaction rules (one DDL per transaction, no DDL with DML) apply per block; outside a
block every statement is its own transaction.
"""

from __future__ import annotations

import re

from ._record import Record
from .classify import StatementKind
from .parser import ParsedStatement

_TX_KIND = re.compile(r'"kind":"(TRANS_STMT_\w+)"')
_OPENERS = ("TRANS_STMT_BEGIN", "TRANS_STMT_START")
_CLOSERS = ("TRANS_STMT_COMMIT", "TRANS_STMT_ROLLBACK", "TRANS_STMT_COMMIT_PREPARED",
            "TRANS_STMT_ROLLBACK_PREPARED", "TRANS_STMT_PREPARE")


def transaction_kind(p: ParsedStatement) -> str:
    """``TRANS_STMT_BEGIN``, ``TRANS_STMT_COMMIT``, ... for a TransactionStmt, else ``""``.

    Read from the raw parser output, so the statement's tree is not decoded.
    """
    if p.node_type != "TransactionStmt":
        return ""
    if p.json is not None:
        m = _TX_KIND.search(p.json)
        if m is not None:
            return m.group(1)
    return str((p.node or {}).get("kind", ""))


class Block(Record):
    """An explicit transaction block: BEGIN/START ... COMMIT/END/ROLLBACK (or end of script).

    A ``BEGIN`` inside a block does nothing in PostgreSQL (it only warns), so it is part of
    :attr:`body`.
    """

    __slots__ = ("begin", "body", "end")
    _fields = ("begin", "body", "end")

    def __init__(self, begin: ParsedStatement, body: list[ParsedStatement] | None = None,
                 end: ParsedStatement | None = None) -> None:
        self.begin = begin
        self.body: list[ParsedStatement] = [] if body is None else body
        self.end = end

    @property
    def ddl(self) -> list[ParsedStatement]:
        return [s for s in self.body if s.kind is StatementKind.DDL]

    @property
    def dml(self) -> list[ParsedStatement]:
        return [s for s in self.body if s.kind is StatementKind.DML]

    @property
    def committed(self) -> bool:
        """Whether the block ends with COMMIT (or END)."""
        return self.end is not None and transaction_kind(self.end) == "TRANS_STMT_COMMIT"


def transaction_blocks(statements: list[ParsedStatement]) -> list[Block]:
    """The explicit transaction blocks of a script, in order."""
    blocks: list[Block] = []
    current: Block | None = None
    for s in statements:
        kind = transaction_kind(s)
        if kind in _OPENERS:
            if current is not None:
                current.body.append(s)
            else:
                current = Block(s)
        elif kind in _CLOSERS:
            if current is not None:
                current.end = s
                blocks.append(current)
                current = None
        elif current is not None:
            current.body.append(s)
    if current is not None:
        blocks.append(current)
    return blocks


__all__ = ["Block", "transaction_blocks", "transaction_kind"]
