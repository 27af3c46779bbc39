"""MySQL column types -> PostgreSQL types DSQL accepts (DSQL.md §6), one registry entry per type.

Each entry returns a :class:`MappedType`: the PostgreSQL type, the *kind* of value it holds (which
decides how INSERT literals are written for it), an optional CHECK that keeps a MySQL range rule,
and the notes a reader must see when behaviour changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlglot import exp

DType = exp.DataType.Type


@dataclass
class MappedType:
    sql: str
    kind: str  #: int, bool, numeric, float, text, bytea, date, timestamp, timestamptz, time, json
    check: str | None = None  #: a CHECK on ``{col}`` (the quoted column name)
    notes: list[str] = field(default_factory=list)  #: behaviour changes (Action.CHANGED)
    enum_values: list[str] | None = None


def _params(dtype: exp.DataType) -> list[int]:
    values: list[int] = []
    for param in dtype.expressions:
        node = param.this if isinstance(param, exp.DataTypeParam) else param
        if isinstance(node, exp.Literal) and not node.is_string:
            values.append(int(node.this))
    return values


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _signed(name: str) -> Callable[[exp.DataType], MappedType]:
    def mapper(dtype: exp.DataType) -> MappedType:
        return MappedType(name, "int")

    return mapper


def _unsigned(wide: str, maximum: str) -> Callable[[exp.DataType], MappedType]:
    def mapper(dtype: exp.DataType) -> MappedType:
        return MappedType(
            wide,
            "int",
            check="{col} >= 0",
            notes=[
                f"UNSIGNED became {wide} with CHECK (>= 0): negatives are still refused, but "
                f"values above MySQL's maximum ({maximum}) are now accepted"
            ],
        )

    return mapper


def _tinyint(dtype: exp.DataType) -> MappedType:
    # TINYINT(1) is how MySQL spells BOOLEAN (mysqldump writes every BOOLEAN column so)
    if _params(dtype) == [1]:
        return _boolean(dtype)
    return MappedType("SMALLINT", "int")


def _boolean(dtype: exp.DataType) -> MappedType:
    return MappedType(
        "BOOLEAN",
        "bool",
        notes=[
            "TINYINT(1)/BOOL became BOOLEAN: the script's 0/1 values are written false/true; "
            "queries comparing it with numbers (= 1) must compare with true/false"
        ],
    )


def _unsigned_bigint(dtype: exp.DataType) -> MappedType:
    # NUMERIC(20) would hold the range but could not be referenced by a BIGINT foreign key,
    # nor be an identity; BIGINT keeps the joins working and loses only the top half
    return MappedType(
        "BIGINT",
        "int",
        check="{col} >= 0",
        notes=[
            "BIGINT UNSIGNED became BIGINT with CHECK (>= 0): values above "
            "9223372036854775807 no longer fit"
        ],
    )


def _decimal(dtype: exp.DataType) -> MappedType:
    params = _params(dtype) or [10, 0]  # MySQL's DECIMAL without arguments is DECIMAL(10,0)
    if len(params) == 1:
        params.append(0)
    return MappedType(f"NUMERIC({params[0]},{params[1]})", "numeric")


def _unsigned_decimal(dtype: exp.DataType) -> MappedType:
    mapped = _decimal(dtype)
    mapped.check = "{col} >= 0"
    return mapped


def _float(dtype: exp.DataType) -> MappedType:
    params = _params(dtype)
    if len(params) == 2:
        return MappedType(
            "REAL", "float", notes=[f"FLOAT({params[0]},{params[1]}): no rounding to scale"]
        )
    if params and params[0] > 24:  # FLOAT(p) with p > 24 is a double in MySQL
        return MappedType("DOUBLE PRECISION", "float")
    return MappedType("REAL", "float")


def _double(dtype: exp.DataType) -> MappedType:
    params = _params(dtype)
    notes = [f"DOUBLE({params[0]},{params[1]}): no rounding to scale"] if len(params) == 2 else []
    return MappedType("DOUBLE PRECISION", "float", notes=notes)


def _unsigned_float(base: Callable[[exp.DataType], MappedType]) -> Callable[..., MappedType]:
    def mapper(dtype: exp.DataType) -> MappedType:
        mapped = base(dtype)
        mapped.check = "{col} >= 0"
        mapped.notes.append("UNSIGNED became CHECK (>= 0)")
        return mapped

    return mapper


def _with_length(name: str) -> Callable[[exp.DataType], MappedType]:
    def mapper(dtype: exp.DataType) -> MappedType:
        params = _params(dtype)
        return MappedType(f"{name}({params[0]})" if params else name, "text")

    return mapper


def _text(dtype: exp.DataType) -> MappedType:
    return MappedType("TEXT", "text")


def _bytea(dtype: exp.DataType) -> MappedType:
    return MappedType("BYTEA", "bytea")


def _bit(dtype: exp.DataType) -> MappedType:
    params = _params(dtype) or [1]
    if params[0] == 1:
        return MappedType("BOOLEAN", "bool")
    return MappedType("BYTEA", "bytea", notes=[f"BIT({params[0]}) became BYTEA (big-endian bytes)"])


def _fractional(name: str, kind: str) -> Callable[[exp.DataType], MappedType]:
    # MySQL's DATETIME/TIMESTAMP/TIME default to whole seconds; PostgreSQL's to microseconds:
    # the precision is written out so that fractions are rounded as MySQL rounds them
    def mapper(dtype: exp.DataType) -> MappedType:
        params = _params(dtype) or [0]
        return MappedType(f"{name}({params[0]})", kind)

    return mapper


def _timestamp(dtype: exp.DataType) -> MappedType:
    params = _params(dtype) or [0]
    return MappedType(
        f"TIMESTAMPTZ({params[0]})",
        "timestamptz",
        notes=[
            "TIMESTAMP became TIMESTAMPTZ (both store an instant): the script's values are read "
            "in the zone of its SET TIME_ZONE (mysqldump writes +00:00), else in the loading "
            "session's zone (UTC on DSQL)"
        ],
    )


def _time(dtype: exp.DataType) -> MappedType:
    params = _params(dtype) or [0]
    return MappedType(
        f"TIME({params[0]})",
        "time",
        notes=["TIME: PostgreSQL's TIME is a time of day (00:00 to 24:00), not a duration"],
    )


def _year(dtype: exp.DataType) -> MappedType:
    return MappedType("INTEGER", "int")


def _json(dtype: exp.DataType) -> MappedType:
    # JSON, not JSONB: the classic profile rejects JSONB and JSON keeps the text as written
    return MappedType("JSON", "json")


def _enum(dtype: exp.DataType) -> MappedType:
    values = [node.this for node in dtype.expressions if isinstance(node, exp.Literal)]
    allowed = ", ".join(_quote_literal(value) for value in values)
    return MappedType(
        "TEXT",
        "text",
        check=f"{{col}} IN ({allowed})",
        notes=[
            "ENUM became TEXT with a CHECK of its values: ORDER BY sorts it alphabetically, "
            "not in declaration order, and it is no longer a number in numeric context"
        ],
        enum_values=values,
    )


def _set(dtype: exp.DataType) -> MappedType:
    values = [node.this for node in dtype.expressions if isinstance(node, exp.Literal)]
    return MappedType(
        "TEXT",
        "text",
        notes=[
            f"SET({', '.join(values)}) became TEXT holding the comma-separated members: "
            "PostgreSQL does not check the members; FIND_IN_SET and bit arithmetic on it must "
            "be rewritten"
        ],
    )


TYPE_MAP: dict[object, Callable[[exp.DataType], MappedType]] = {
    DType.TINYINT: _tinyint,
    DType.UTINYINT: _unsigned("SMALLINT", "255"),
    DType.SMALLINT: _signed("SMALLINT"),
    DType.USMALLINT: _unsigned("INTEGER", "65535"),
    DType.MEDIUMINT: _signed("INTEGER"),
    DType.UMEDIUMINT: _unsigned("INTEGER", "16777215"),
    DType.INT: _signed("INTEGER"),
    DType.UINT: _unsigned("BIGINT", "4294967295"),
    DType.BIGINT: _signed("BIGINT"),
    DType.UBIGINT: _unsigned_bigint,
    DType.BOOLEAN: _boolean,
    DType.DECIMAL: _decimal,
    DType.UDECIMAL: _unsigned_decimal,
    DType.FLOAT: _float,
    DType.DOUBLE: _double,
    DType.UDOUBLE: _unsigned_float(_double),
    DType.CHAR: _with_length("CHAR"),
    DType.NCHAR: _with_length("CHAR"),
    DType.VARCHAR: _with_length("VARCHAR"),
    DType.NVARCHAR: _with_length("VARCHAR"),
    DType.TINYTEXT: _text,
    DType.TEXT: _text,
    DType.MEDIUMTEXT: _text,
    DType.LONGTEXT: _text,
    DType.BINARY: _bytea,
    DType.VARBINARY: _bytea,
    DType.TINYBLOB: _bytea,
    DType.BLOB: _bytea,
    DType.MEDIUMBLOB: _bytea,
    DType.LONGBLOB: _bytea,
    DType.BIT: _bit,
    DType.DATE: lambda dtype: MappedType("DATE", "date"),
    DType.DATETIME: _fractional("TIMESTAMP", "timestamp"),
    DType.DATETIME64: _fractional("TIMESTAMP", "timestamp"),
    DType.TIMESTAMP: _fractional("TIMESTAMP", "timestamp"),
    DType.TIMESTAMPTZ: _timestamp,  # sqlglot reads MySQL's TIMESTAMP (UTC-stored) so
    DType.TIME: _time,
    DType.YEAR: _year,
    DType.JSON: _json,
    DType.ENUM: _enum,
    DType.SET: _set,
}

def map_type(dtype: exp.DataType) -> MappedType | None:
    """The PostgreSQL type for a MySQL column type, or ``None`` when there is none (spatial)."""
    mapper = TYPE_MAP.get(dtype.this)
    return None if mapper is None else mapper(dtype)

