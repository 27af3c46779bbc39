"""Write a MySQL value (an INSERT literal or a column DEFAULT) as PostgreSQL for its column.

The bytes must survive: sqlglot has already decoded MySQL's escapes (``\\'``, ``\\\\``, ``\\n``,
``\\0``, ``''``; ``\\%`` and ``\\_`` keep their backslash, as in MySQL), so a string is written
back with only ``'`` doubled, which is all a standard-conforming PostgreSQL string needs. Binary
data (a BYTEA column) is written in hex, from the bytes the script held: the script is read with
``surrogateescape``, so bytes that are not UTF-8 come back unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlglot import exp


class ValueError_(Exception):  # not the builtin: caught and given a file:line
    """A value with no faithful PostgreSQL form for its column."""


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  #: see :class:`.mysql_types.MappedType`
    not_null: bool = False


@dataclass
class ValueContext:
    time_zone: str | None = None  #: the script's ``SET TIME_ZONE``, for TIMESTAMP values
    zero_dates: int = 0  #: zero dates written as NULL


def quote_string(value: str) -> str:
    if "\x00" in value:
        raise ValueError_("holds a NUL byte (\\0), which PostgreSQL text cannot store")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError_(
            "holds bytes that are not UTF-8; make the column binary (BLOB/VARBINARY) or "
            "re-dump with --default-character-set=utf8mb4"
        ) from None
    return "'" + value.replace("'", "''") + "'"


def _hex_bytea(data: bytes) -> str:
    return "'\\x" + data.hex() + "'"


def _string_bytes(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape")


def _is_zero_date(value: str) -> bool:
    return value.startswith("0000-00-00")


def _from_string(value: str, column: Column, context: ValueContext) -> str:
    kind = column.kind
    if kind == "bool":
        if value.strip() in ("0", "1"):
            return "true" if value.strip() == "1" else "false"
        raise ValueError_(f"{value!r} is not 0 or 1")
    if kind == "bytea":
        return _hex_bytea(_string_bytes(value))
    if kind in ("date", "timestamp", "timestamptz") and _is_zero_date(value):
        if column.not_null:
            raise ValueError_(
                f"is MySQL's zero date {value!r}, which PostgreSQL has no value for, and the "
                "column is NOT NULL; make the column nullable or replace the zero dates"
            )
        context.zero_dates += 1
        return "NULL"
    if kind == "timestamptz" and context.time_zone is not None and value.strip():
        # the dump wrote TIMESTAMP values in its session time zone: say which, so that the
        # instant is kept whatever the loading session's zone is
        return quote_string(f"{value} {context.time_zone}")
    return quote_string(value)


def _from_bytes(data: bytes, column: Column, context: ValueContext) -> str:
    kind = column.kind
    if kind == "bytea":
        return _hex_bytea(data)
    if kind in ("int", "numeric", "float", "bool"):
        return _from_number(str(int.from_bytes(data, "big")), column)
    try:
        return _from_string(data.decode("utf-8"), column, context)
    except UnicodeDecodeError:
        raise ValueError_("is binary data that is not UTF-8 text") from None


def _from_number(text: str, column: Column) -> str:
    if column.kind == "bool":
        if text in ("0", "1"):
            return "true" if text == "1" else "false"
        raise ValueError_(f"{text} is not 0 or 1")
    if column.kind == "bytea":
        return _hex_bytea(text.encode("ascii"))
    return text


#: a value as read from the script: (kind, payload); kinds: str, num (its text), null, default,
#: bool, hex (digits), bits (digits), expr (any other sqlglot expression)
Token = tuple[str, Any]


def token_of(node: exp.Expression) -> Token:
    """The value a sqlglot literal holds (MySQL's escapes already decoded)."""
    if isinstance(node, exp.Null):
        return ("null", None)
    if isinstance(node, exp.Var) and node.name.upper() == "DEFAULT":
        return ("default", None)
    if isinstance(node, exp.Boolean):
        return ("bool", bool(node.this))
    if isinstance(node, exp.Literal):
        return ("str", node.this) if node.is_string else ("num", str(node.this))
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        return ("num", "-" + str(node.this.this))
    if isinstance(node, exp.National):
        return ("str", node.this)
    if isinstance(node, exp.Introducer) and isinstance(
        node.expression, (exp.Literal, exp.HexString)
    ):
        return token_of(node.expression)
    if isinstance(node, exp.HexString):
        return ("hex", str(node.this))
    if isinstance(node, exp.BitString):
        return ("bits", str(node.this))
    if isinstance(node, exp.Concat) and all(
        isinstance(part, exp.Literal) and part.is_string for part in node.expressions
    ):
        return ("str", "".join(part.this for part in node.expressions))
    return ("expr", node)


def render_token(token: Token, column: Column, context: ValueContext) -> str:
    """A value read from the script as PostgreSQL for ``column``."""
    kind, payload = token
    if kind == "str":
        return _from_string(payload, column, context)
    if kind == "num":
        return _from_number(payload, column)
    if kind == "null":
        return "NULL"
    if kind == "default":
        return "DEFAULT"
    if kind == "bool":
        if column.kind == "bool":
            return "true" if payload else "false"
        return "1" if payload else "0"
    if kind == "hex":
        digits = payload.rjust(len(payload) + len(payload) % 2, "0")
        return _from_bytes(bytes.fromhex(digits), column, context)
    if kind == "bits":
        number = int(payload or "0", 2)
        if column.kind == "bytea":
            return _hex_bytea(number.to_bytes(max(1, (len(payload) + 7) // 8), "big"))
        return _from_number(str(number), column)
    # anything else (a function call, arithmetic) is translated by sqlglot
    return str(payload.sql(dialect="postgres"))


def render_value(node: exp.Expression, column: Column, context: ValueContext) -> str:
    """``node`` (a literal or an expression) as PostgreSQL for ``column``."""
    return render_token(token_of(node), column, context)
