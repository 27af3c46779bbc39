"""The DSQL-aware SQL layer: split, parse, classify, quote.

Used by the linter, the planner, the runner and the Alembic plugin. Everything here is pure
(no I/O, no database) and never raises on bad SQL text.

- :func:`split_script` cuts a script into :class:`Statement` values with exact line and column
  positions (quotes, dollar quotes, nested comments and ``BEGIN ATOMIC`` bodies respected).
- :func:`parse_script` / :func:`parse_statements` / :func:`parse_statement` add pglast's parse
  tree (as JSON-shaped dicts), DSQL's ``ASYNC`` keyword (:attr:`ParsedStatement.is_async`) and
  the statement class (:class:`StatementKind`: DDL, DML, transaction control, other).
- :func:`transaction_blocks` finds the explicit ``BEGIN ... COMMIT`` blocks (:class:`Block`),
  where DSQL's one-DDL-per-transaction and no-DDL-with-DML rules apply.
- :func:`quote_ident`, :func:`quote_qualified`, :func:`quote_literal` build SQL text safely.

Example::

    >>> from dsql_migrate.sql import parse_script, StatementKind
    >>> [(p.node_type, p.is_async, p.kind.value) for p in parse_script(
    ...     "CREATE INDEX ASYNC ON t (a); BEGIN; UPDATE t SET a = 1; COMMIT")]
    ... # doctest: +NORMALIZE_WHITESPACE
    [('IndexStmt', True, 'ddl'), ('TransactionStmt', False, 'transaction'),
     ('UpdateStmt', False, 'dml'), ('TransactionStmt', False, 'transaction')]
"""

from __future__ import annotations

from .blocks import Block, transaction_blocks, transaction_kind
from .classify import StatementKind, kind_of
from .parser import (
    Node,
    ParsedStatement,
    ParseFailure,
    dsql_syntax,
    parse_script,
    parse_statement,
    parse_statements,
)
from .quoting import identifier_bytes, quote_ident, quote_literal, quote_qualified
from .splitter import Statement, split_script

__all__ = [
    "Block",
    "Node",
    "ParseFailure",
    "ParsedStatement",
    "Statement",
    "StatementKind",
    "dsql_syntax",
    "identifier_bytes",
    "kind_of",
    "parse_script",
    "parse_statement",
    "parse_statements",
    "quote_ident",
    "quote_literal",
    "quote_qualified",
    "split_script",
    "transaction_blocks",
    "transaction_kind",
]
