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
extensions, ``SERIAL``) is not an allowed difference *of a revision the plugin applied*: the
plugin must refuse such a revision before it changes anything, and the harness reports it as
``refused-before-change``. After a refusal the plugin side is resynchronised from stock
Alembic's history (see :mod:`realworld.run`); the objects of :data:`LEFT_OUT` (the ones the
emulator's PostgreSQL server cannot even build, because DSQL has no such thing) are left out of
that replay, and from then on each of them is an allowed difference, named with its rule and
reason, for as long as stock Alembic's schema has it. Nothing is left out silently: the
revision that was resynchronised lists what was left out, and so does every later revision
whose comparison allowed it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pglast

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


@dataclass(frozen=True)
class LeftOut:
    """A kind of object DSQL cannot have, left out when the plugin side is resynchronised:
    ``statement`` says whether one parsed statement (a pglast node) makes or changes such an
    object (``left``: the names of indexes left out so far, for the ``DROP`` of one);
    ``object`` whether a snapshot object (key, stock value) is one."""

    name: str
    reason: str
    statement: Callable[[Any, set[str]], bool]
    object: Callable[[Key, Any], bool]


def _extension_statement(node: Any, left: set[str]) -> bool:
    kind = type(node).__name__
    if kind in ("CreateExtensionStmt", "AlterExtensionStmt", "AlterExtensionContentsStmt"):
        return True
    return kind == "DropStmt" and node.removeType.name == "OBJECT_EXTENSION"


def _special_index(stmt: Any) -> bool:
    """A method other than btree, or a key with an operator class or an order other than the
    default (``DESC``, ``NULLS FIRST``). An explicit ``ASC`` (``NULLS LAST``) makes the plain
    index: DSQL rejects the words, but not the index, which the plugin must build."""
    method = (stmt.accessMethod or "btree").lower()
    return method != "btree" or any(
        getattr(e, "opclass", None) or e.ordering.name == "SORTBY_DESC"
        or e.nulls_ordering.name == "SORTBY_NULLS_FIRST"
        for e in stmt.indexParams or ())


def _index_statement(node: Any, left: set[str]) -> bool:
    """A ``CREATE INDEX`` DSQL rejects for its method or keys (see :func:`_special_index`),
    or the ``DROP INDEX`` of indexes that were all left out."""
    kind = type(node).__name__
    if kind == "IndexStmt":
        if _special_index(node):
            left.add(str(node.idxname or ""))
            return True
        return False
    if kind == "DropStmt" and node.removeType.name == "OBJECT_INDEX":
        names = {str(obj[-1].sval) for obj in node.objects or ()}
        return bool(names) and names <= left
    return False


def _index_object(key: Key, stock: Any) -> bool:
    if key[0] != "index" or not isinstance(stock, tuple):
        return False
    try:
        node = pglast.parse_sql(str(stock[0]))[0].stmt
    except pglast.parser.ParseError:
        return False
    return type(node).__name__ == "IndexStmt" and _special_index(node)


LEFT_OUT: tuple[LeftOut, ...] = (
    LeftOut("no-extensions",
            "DSQL has no extensions: CREATE EXTENSION is rejected (DSQL.md §1, rejected in "
            "both profiles)",
            _extension_statement, lambda key, stock: key[0] == "extension"),
    LeftOut("plain-btree-indexes",
            "DSQL indexes are btree with plain keys: USING <method>, operator classes and "
            "DESC/NULLS FIRST keys are rejected (DSQL.md §1: ASC/DESC on index keys, "
            "opclasses, USING method)",
            _index_statement, _index_object),
)


def left_out_rule(name: str) -> LeftOut:
    return next(r for r in LEFT_OUT if r.name == name)


def reasons(names: set[str] | list[str]) -> list[tuple[str, str]]:
    """(name, DSQL reason) of each named rule, allowed difference or left-out object."""
    rules = {r.name: r.reason for r in ALLOWED} | {r.name: r.reason for r in LEFT_OUT}
    return [(n, rules[n]) for n in sorted(set(names)) if n in rules]
