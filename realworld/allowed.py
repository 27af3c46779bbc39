"""The differences the harness accepts between stock Alembic on PostgreSQL and the plugin on
DSQL, each with the DSQL rule that makes it necessary. This is the only place they are listed.

A rule gets one differing object (its key, the stock value and the plugin value; ``None`` when
the object is missing on that side) and both whole snapshots, and returns True when the
difference is the allowed one.

Equal without any rule (the catalog cannot tell them apart, so nothing is listed here):
- an index built with ``CREATE INDEX ASYNC`` is the same index as one built by ``CREATE INDEX``;
- a CHECK or FOREIGN KEY added ``NOT VALID`` and then validated by an async job is the same
  constraint once validated (a constraint left ``NOT VALID`` *is* a difference);
- equivalent type spellings (``FLOAT(53)`` / ``DOUBLE PRECISION``, ``VARCHAR`` / ``CHARACTER
  VARYING``) are one spelling in ``format_type``.

What DSQL cannot have at all (triggers, functions in languages other than SQL, enum types,
extensions, ``SERIAL``) is not an allowed difference: the plugin must refuse such a revision
before it changes anything, and the harness reports it as ``refused-before-change``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .snapshot import Key, Snapshot


@dataclass(frozen=True)
class Allowed:
    name: str
    reason: str
    applies: Callable[[Key, Any, Any, Snapshot, Snapshot], bool]


_INTEGERS = ("smallint", "integer", "bigint")


def _serial_as_identity(key: Key, stock: Any, plugin: Any, stock_snap: Snapshot,
                        plugin_snap: Snapshot) -> bool:
    """``SERIAL``/``BIGSERIAL`` (an integer with a ``nextval`` default) on PostgreSQL, a
    ``BIGINT`` identity column through the plugin; nullability must be equal."""
    if key[0] != "column" or stock is None or plugin is None:
        return False
    s_type, s_null, s_default, s_identity, _ = stock
    p_type, p_null, p_default, p_identity, _ = plugin
    return (s_type in _INTEGERS and p_type == "bigint" and s_null == p_null
            and str(s_default or "").startswith("nextval(") and not s_identity
            and p_default is None and p_identity in ("a", "d"))


def _serial_sequence(key: Key, stock: Any, plugin: Any, stock_snap: Snapshot,
                     plugin_snap: Snapshot) -> bool:
    """The sequence behind a ``SERIAL`` column, when that column is an identity column on the
    plugin side (the identity's own sequence is internal to the column)."""
    if key[0] != "sequence" or plugin is not None:
        return False
    name = key[1].split(".")[-1]
    for column, value in stock_snap.items():
        if column[0] == "column" and f"nextval('{name}'::regclass)" == str(value[2] or ""):
            other = plugin_snap.get(column)
            return other is not None and other[3] in ("a", "d")
    return False


ALLOWED: tuple[Allowed, ...] = (
    Allowed("serial-as-identity",
            "DSQL has no SERIAL and no sequence defaults; its autoincrement is an identity "
            "column, BIGINT only (DSQL.md §1: identity / sequences)",
            _serial_as_identity),
    Allowed("serial-sequence",
            "the sequence of a SERIAL column has no counterpart: the identity column's sequence "
            "is part of the column (DSQL.md §1)",
            _serial_sequence),
)
