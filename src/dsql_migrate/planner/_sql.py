"""SQL text helpers of the planner: quoting, types, defaults, CREATE TABLE, cast checks."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
_PREPARER = DIALECT.identifier_preparer
MAX_IDENTIFIER = 63


def q(name: str) -> str:
    """``name`` quoted where PostgreSQL needs it.

    A name with ``%`` is refused: a plan runs its batched statements with parameters (where
    ``%`` is written ``%%``) and its DDL without, and the same table's name appears in both."""
    if "%" in name:
        from . import PlanningError

        raise PlanningError(
            f"cannot plan a change that names {name!r}: a name with '%' is not supported",
            hint="rename the object to a name without '%' (by hand, outside the plan), "
            "then plan again")
    return str(_PREPARER.quote(name))


def qual(table: str, schema: str | None = None) -> str:
    return f"{q(schema)}.{q(table)}" if schema and schema != "public" else q(table)


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


#: suffixes of the names a recreation puts objects aside under (``planner.recreate``)
ASIDE_SUFFIXES = ("__new", "__old")


def suffixed(name: str, suffix: str) -> str:
    """``name + suffix``, the name shortened so the result fits PostgreSQL's 63 bytes.

    A name put aside (``__new``/``__old``) that must be cut also gets a short hash of the whole
    name: a 63-byte table and its ``<table>_pkey`` (PostgreSQL cuts that name the same way)
    would otherwise both be put aside as the same ``<first 58 bytes>__old``. Other suffixes
    (``_pkey``, ``_not_null``) are cut the way PostgreSQL cuts its own generated names."""
    if len((name + suffix).encode()) <= MAX_IDENTIFIER:
        return name + suffix
    tag = "_" + hashlib.sha1(name.encode()).hexdigest()[:8] if suffix in ASIDE_SUFFIXES else ""
    room = MAX_IDENTIFIER - len(suffix.encode()) - len(tag)
    base = name.encode()[:room].decode(errors="ignore")
    return base + tag + suffix


def type_sql(type_: sa.types.TypeEngine[object]) -> str:
    return str(type_.compile(dialect=DIALECT))


_TYPE_ALIASES = {
    "character varying": "varchar", "integer": "int4", "int": "int4", "bigint": "int8",
    "smallint": "int2", "boolean": "bool", "double precision": "float8", "real": "float4",
    "double": "float8", "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz", "time without time zone": "time",
    "time with time zone": "timetz", "decimal": "numeric", "character": "bpchar",
    "char": "bpchar", "bit varying": "varbit",
}
#: ``timestamp(3) with time zone``: PostgreSQL writes the precision before the zone words
_ZONED = re.compile(r"^(timestamp|time)\s*(\(\s*\d+\s*\))?\s*(with|without) time zone$")


def normalize_type(text: str) -> str:
    """A comparable spelling of a type: equivalent spellings agree, so that a change between
    them is no change (``VARCHAR(20)`` = ``character varying(20)``, ``FLOAT(53)`` = ``DOUBLE
    PRECISION``, ``FLOAT(1..24)`` = ``REAL``, ``INTEGER`` = ``INT4``, ``TIMESTAMP WITHOUT TIME
    ZONE`` = ``TIMESTAMP``)."""
    t = " ".join(text.lower().split())
    zoned = _ZONED.match(t)
    if zoned:
        base = zoned.group(1) + ("tz" if zoned.group(3) == "with" else "")
        return base + (zoned.group(2).replace(" ", "") if zoned.group(2) else "")
    base, paren, rest = t.partition("(")
    base = _TYPE_ALIASES.get(base.strip(), base.strip())
    args = rest.rstrip(")").replace(" ", "") if paren else ""
    if base == "float":  # PostgreSQL: float(1..24) is real, float(25..53) and float are double
        return "float4" if args.isdigit() and int(args) <= 24 else "float8"
    return base + (f"({args})" if paren else "")


def expr_sql(clause: object) -> str:
    """SQL text of a server default, CHECK or index expression."""
    if isinstance(clause, str):
        return clause
    if isinstance(clause, sa.sql.elements.TextClause):
        return clause.text
    if isinstance(clause, sa.sql.ClauseElement):
        return str(clause.compile(dialect=DIALECT, compile_kwargs={"literal_binds": True}))
    return str(clause)


def default_sql(column: sa.Column[object]) -> str | None:
    default = column.server_default
    if default is None or not isinstance(default, sa.DefaultClause):
        return None
    arg = default.arg
    if isinstance(arg, str):
        return literal(arg)
    return expr_sql(arg)


def identity_sql(identity: sa.Identity, cache_floor: int) -> str:
    """``GENERATED ... AS IDENTITY (CACHE n)``: DSQL needs CACHE 1 or >= ``cache_floor``."""
    kind = "ALWAYS" if identity.always else "BY DEFAULT"
    cache = identity.cache if identity.cache is not None else 1
    if cache != 1 and cache < cache_floor:
        cache = cache_floor
    options = []
    if identity.start is not None:
        options.append(f"START WITH {identity.start}")
    if identity.increment is not None:
        options.append(f"INCREMENT BY {identity.increment}")
    options.append(f"CACHE {cache}")
    return f"GENERATED {kind} AS IDENTITY ({' '.join(options)})"


def column_sql(column: sa.Column[object], *, cache_floor: int, inline: bool = True) -> str:
    """A column definition; ``inline=False`` gives the bare form ADD COLUMN allows."""
    parts = [q(column.name), type_sql(column.type)]
    if not inline:
        return " ".join(parts)
    if column.identity is not None:
        parts.append(identity_sql(column.identity, cache_floor))
    default = default_sql(column)
    if default is not None and column.identity is None:
        parts.append(f"DEFAULT {default}")
    if not column.nullable and not column.primary_key:
        parts.append("NOT NULL")
    return " ".join(parts)


def cols(names: Sequence[str]) -> str:
    return ", ".join(q(n) for n in names)


_INT_RANGES = {"int2": (-32768, 32767), "int4": (-2147483648, 2147483647),
               "int8": (-9223372036854775808, 9223372036854775807)}


def cast_failure_predicate(column: str, from_type: str, to_type: str) -> str | None:
    """A predicate true for the rows whose ``column`` will not cast from ``from_type`` to
    ``to_type`` (``None``: every value casts). Written without ``pg_input_is_valid`` for the
    common types, so that it runs on any PostgreSQL 14+."""
    src, dst = normalize_type(from_type), normalize_type(to_type)
    ref = q(column)
    text = f"{ref}::text"
    if dst in ("text", "varchar") or dst == src:
        return None
    m = re.fullmatch(r"(varchar|character|char|bpchar)\((\d+)\)", dst)
    if m:
        return f"length({text}) > {m.group(2)}"
    if dst in _INT_RANGES:
        low, high = _INT_RANGES[dst]
        if src in _INT_RANGES and _INT_RANGES[src][0] >= low and _INT_RANGES[src][1] <= high:
            return None
        if src.startswith(("numeric", "float", "int")):
            # numeric -> integer rounds; only values out of range fail
            return f"(round({ref}::numeric) < {low} OR round({ref}::numeric) > {high})"
        return (f"({text} !~ '^\\s*[-+]?[0-9]+\\s*$' OR "
                f"(CASE WHEN {text} ~ '^\\s*[-+]?[0-9]+\\s*$' THEN {text}::numeric END) "
                f"NOT BETWEEN {low} AND {high})")
    if dst.startswith("numeric") or dst in ("float4", "float8"):
        if src in _INT_RANGES or src.startswith(("numeric", "float")):
            return None if not dst.startswith("numeric(") else _numeric_overflow(ref, dst)
        number = "'^\\s*[-+]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][-+]?[0-9]+)?\\s*$'"
        bad = f"{text} !~ {number}"
        overflow = _numeric_overflow(f"(CASE WHEN {text} ~ {number} THEN {text} END)", dst)
        if dst in ("float4", "float8"):
            overflow = (f"abs((CASE WHEN {text} ~ {number} THEN {text}::numeric END)) "
                        f">= 1e{38 if dst == 'float4' else 308}")
        return f"({bad} OR {overflow})" if overflow else bad
    if dst == "bool":
        return (f"lower(trim({text})) NOT IN ('t', 'f', 'true', 'false', 'y', 'n', 'yes', "
                "'no', 'on', 'off', '1', '0')")
    if dst == "uuid":
        return (f"{text} !~* '^\\s*\\{{?[0-9a-f]{{8}}-?[0-9a-f]{{4}}-?[0-9a-f]{{4}}-?"
                f"[0-9a-f]{{4}}-?[0-9a-f]{{12}}\\}}?\\s*$'")
    return f"NOT pg_input_is_valid({text}, {literal(to_type)})"


def _numeric_overflow(ref: str, dst: str) -> str | None:
    m = re.fullmatch(r"numeric\((\d+),?(\d*)\)", dst)
    if not m:
        return None
    precision, scale = int(m.group(1)), int(m.group(2) or 0)
    limit = "1" + "0" * (precision - scale)
    return f"abs(round({ref}::numeric, {scale})) >= {limit}"
