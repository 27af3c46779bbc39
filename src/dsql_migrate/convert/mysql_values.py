"""Write a MySQL value (an INSERT literal or a column DEFAULT) as PostgreSQL for its column.

The bytes must survive: sqlglot has already decoded MySQL's escapes (``\\'``, ``\\\\``, ``\\n``,
``\\0``, ``''``; ``\\%`` and ``\\_`` keep their backslash, as in MySQL), so a string is written
back with only ``'`` doubled, which is all a standard-conforming PostgreSQL string needs. Binary
data (a BYTEA column) is written in hex, from the bytes the script held: the script is read with
``surrogateescape``, so bytes that are not UTF-8 come back unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def render_value(node: exp.Expression, column: Column, context: ValueContext) -> str:
    """``node`` (a literal or an expression) as PostgreSQL for ``column``."""
    if isinstance(node, exp.Null):
        return "NULL"
    if isinstance(node, exp.Var) and node.name.upper() == "DEFAULT":
        return "DEFAULT"
    if isinstance(node, exp.Boolean):
        truth = bool(node.this)
        if column.kind == "bool":
            return "true" if truth else "false"
        return "1" if truth else "0"
    if isinstance(node, exp.Literal):
        if node.is_string:
            return _from_string(node.this, column, context)
        return _from_number(str(node.this), column)
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        return _from_number("-" + str(node.this.this), column)
    if isinstance(node, exp.National):
        return _from_string(node.this, column, context)
    if isinstance(node, exp.Introducer) and isinstance(node.expression, exp.Literal):
        return render_value(node.expression, column, context)
    if isinstance(node, exp.Introducer) and isinstance(node.expression, exp.HexString):
        return render_value(node.expression, column, context)
    if isinstance(node, exp.HexString):
        digits = str(node.this)
        return _from_bytes(bytes.fromhex(digits.rjust(len(digits) + len(digits) % 2, "0")),
                           column, context)
    if isinstance(node, exp.BitString):
        number = int(str(node.this) or "0", 2)
        if column.kind == "bytea":
            return _hex_bytea(number.to_bytes(max(1, (len(str(node.this)) + 7) // 8), "big"))
        return _from_number(str(number), column)
    if isinstance(node, exp.Concat) and all(
        isinstance(part, exp.Literal) and part.is_string for part in node.expressions
    ):
        return _from_string("".join(part.this for part in node.expressions), column, context)
    # anything else (a function call, arithmetic) is translated by sqlglot
    return node.sql(dialect="postgres")
