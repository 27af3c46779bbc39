"""Quoting of identifiers and literals for generated SQL."""

from __future__ import annotations

import re

from pglast.keywords import (  # type: ignore[attr-defined,unused-ignore]
    COL_NAME_KEYWORDS,
    RESERVED_KEYWORDS,
    TYPE_FUNC_NAME_KEYWORDS,
)

_PLAIN = re.compile(r"[a-z_][a-z0-9_$]*\Z")
_NEEDS_QUOTES_KEYWORDS = frozenset(RESERVED_KEYWORDS) | frozenset(TYPE_FUNC_NAME_KEYWORDS) | (
    frozenset(COL_NAME_KEYWORDS)
)


def quote_ident(name: str) -> str:
    """``name`` as a SQL identifier, quoted only when it must be.

    >>> quote_ident("users"), quote_ident("User"), quote_ident("select"), quote_ident('a"b')
    ('users', '"User"', '"select"', '"a""b"')
    """
    if _PLAIN.match(name) and name not in _NEEDS_QUOTES_KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


def quote_qualified(*parts: str | None) -> str:
    """A dotted name from its parts, skipping ``None`` (e.g. a missing schema)."""
    return ".".join(quote_ident(p) for p in parts if p is not None)


def quote_literal(value: str) -> str:
    """``value`` as a standard-conforming SQL string literal.

    >>> quote_literal("it's")
    "'it''s'"
    """
    return "'" + value.replace("'", "''") + "'"


def identifier_bytes(name: str) -> int:
    """Length of an identifier as PostgreSQL limits it (63 bytes), in UTF-8 bytes."""
    return len(name.encode("utf-8"))


__all__ = ["identifier_bytes", "quote_ident", "quote_literal", "quote_qualified"]
