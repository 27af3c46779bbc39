"""The differences the harness accepts between stock Alembic on PostgreSQL and the plugin on
DSQL, each with the DSQL rule that makes it necessary. This is the only place they are listed.

A rule gets one differing object (its key, the stock value and the plugin value; ``None`` when
the object is missing on that side) and returns True when the difference is the allowed one.

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

from .snapshot import Key


@dataclass(frozen=True)
class Allowed:
    name: str
    reason: str
    applies: Callable[[Key, Any, Any], bool]


def _column_order_only(key: Key, stock: Any, plugin: Any) -> bool:
    return False  # column order is not compared at all (see compare.py); kept for the docs


ALLOWED: tuple[Allowed, ...] = ()
