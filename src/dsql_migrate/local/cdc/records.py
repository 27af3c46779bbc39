"""DSQL's CDC records from decoded transactions: write-set compaction and the JSON envelope.

What DSQL documents (docs/local.md, "Change data capture"; ../shared/DSQL.md §8) and this
follows:

- one record per changed row per transaction, the write set compacted: a row inserted and then
  updated in one transaction is one ``c`` record with its final state; inserted and deleted,
  nothing; updated then deleted, one ``d``; deleted and inserted again, one ``u``;
- ``after`` holds the whole row for ``c`` and ``u`` (``before`` is null); a ``d`` has
  ``after`` null and the primary key's columns in ``before`` (a table without a primary key:
  the whole old row, as its key); columns whose value is NULL are left out of both images;
- an update that changes the primary key is a ``d`` of the old key and a ``c`` of the new one;
- values: smallint, integer, bigint and oid as JSON numbers; real and double precision as JSON
  numbers (``NaN`` and the infinities as strings); boolean as ``true``/``false``; numeric as a
  string (``"29.99"``, as DSQL's example); everything else as its PostgreSQL text form;
- ``source.ts_ns`` is the commit time, strictly increasing in commit order (so "last
  ``source.ts_ns`` wins" gives the final state); the envelope's own ``ts_ms``/``ts_ns`` are when
  the record was made.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from .pgoutput import UNCHANGED, Change, Relation, Transaction, Value

RECORD_VERSION: Final = "1.0"
DATABASE: Final = "postgres"

_INTEGERS: Final = frozenset({20, 21, 23, 26})  # int8, int2, int4, oid
_FLOATS: Final = frozenset({700, 701})  # float4, float8
_BOOL: Final = 16


def encode_value(type_oid: int, text: str) -> Any:
    """A column's JSON value from its text form (the rules in the module docstring)."""
    if type_oid in _INTEGERS:
        return int(text)
    if type_oid in _FLOATS:
        number = float(text)
        return number if math.isfinite(number) else text
    if type_oid == _BOOL:
        return text == "t"
    return text


#: the primary key's column names of a relation, or None when it has none
PrimaryKey = Callable[[Relation], "list[str] | None"]


@dataclass
class _Entry:
    relation: Relation
    #: whether the row existed before the transaction
    existed: bool
    #: the row now (text values), None when deleted
    row: dict[str, Value] | None
    #: the key's values, for the ``before`` of a ``d``
    key: dict[str, Value]


def _key_columns(relation: Relation, primary_key: PrimaryKey) -> list[str]:
    found = primary_key(relation)
    return found if found else [column.name for column in relation.columns]


class Compactor:
    """The write set of one transaction: the last state of every row it touched."""

    def __init__(self, primary_key: PrimaryKey) -> None:
        self.primary_key = primary_key
        self.entries: dict[tuple[int, tuple[Value, ...]], _Entry] = {}

    def _ident(self, relation: Relation,
               row: dict[str, Value]) -> tuple[tuple[int, tuple[Value, ...]], dict[str, Value]]:
        names = _key_columns(relation, self.primary_key)
        key = {name: row.get(name) for name in names}
        return (relation.oid, tuple(key.values())), key

    def add(self, change: Change) -> None:
        handler = {"insert": self._insert, "update": self._update, "delete": self._delete}
        handler[change.kind](change)

    def _upsert(self, relation: Relation, row: dict[str, Value], existed: bool) -> None:
        ident, key = self._ident(relation, row)
        entry = self.entries.get(ident)
        if entry is None:
            self.entries[ident] = _Entry(relation, existed, row, key)
        else:
            entry.relation, entry.row = relation, row

    def _insert(self, change: Change) -> None:
        assert change.new is not None
        self._upsert(change.relation, change.new, existed=False)

    def _update(self, change: Change) -> None:
        assert change.new is not None
        new = dict(change.new)
        new_ident, _ = self._ident(change.relation, self._filled(change, new))
        if change.old is not None and self._ident(change.relation, change.old)[0] != new_ident:
            # the primary key changed: the old row is gone, a new one is there
            self._remove(change.relation, change.old)
            self._upsert(change.relation, new, existed=False)
        else:
            self._upsert(change.relation, new, existed=True)

    def _filled(self, change: Change, new: dict[str, Value]) -> dict[str, Value]:
        """``new`` with its unchanged TOASTed values taken from the old image or from this
        transaction's earlier state of the row (filled in place)."""
        missing = [name for name, value in new.items() if value is UNCHANGED]
        if not missing:
            return new
        earlier: dict[str, Value] = {}
        if change.old is not None:
            earlier = change.old
        for name in missing:
            value = earlier.get(name, UNCHANGED)
            if value is UNCHANGED:
                for entry in self.entries.values():
                    if entry.relation.oid == change.relation.oid and entry.row is not None \
                            and all(entry.row.get(k) == new.get(k) for k in entry.key):
                        value = entry.row.get(name, UNCHANGED)
                        break
            new[name] = value
        return new

    def _remove(self, relation: Relation, row: dict[str, Value]) -> None:
        ident, key = self._ident(relation, row)
        entry = self.entries.get(ident)
        if entry is None:
            self.entries[ident] = _Entry(relation, True, None, key)
        else:
            entry.row = None

    def _delete(self, change: Change) -> None:
        assert change.old is not None
        self._remove(change.relation, change.old)

    def final(self) -> list[tuple[str, Relation, dict[str, Value] | None,
                                  dict[str, Value] | None]]:
        """(op, relation, before, after) per row, in the order the rows were first touched."""
        out: list[tuple[str, Relation, dict[str, Value] | None, dict[str, Value] | None]] = []
        for entry in self.entries.values():
            if entry.row is None:
                if entry.existed:
                    out.append(("d", entry.relation, entry.key, None))
            else:
                out.append(("u" if entry.existed else "c", entry.relation, None, entry.row))
        return out


def _image(relation: Relation, row: dict[str, Value] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    types = {column.name: column.type_oid for column in relation.columns}
    image: dict[str, Any] = {}
    for name, value in row.items():
        # NULL columns are left out (DSQL may omit them); an UNCHANGED value nothing could
        # fill (not possible with REPLICA IDENTITY FULL) is left out too, never sent as NULL
        if value is None or value is UNCHANGED:
            continue
        assert isinstance(value, str)
        image[name] = encode_value(types.get(name, 25), value)
    return image


def transaction_id(cluster: str, xid: int, end_lsn: int) -> str:
    """A DSQL-looking transaction id: 26 lowercase base32 characters, stable for a commit."""
    digest = hashlib.sha256(f"{cluster}/{xid}/{end_lsn}".encode()).digest()[:16]
    return base64.b32encode(digest).decode("ascii").lower().rstrip("=")[:26]


@dataclass
class RecordBuilder:
    """Turns committed transactions into DSQL CDC records (JSON text)."""

    cluster: str
    primary_key: PrimaryKey
    #: which tables are streamed (DSQL streams user tables, not the emulator's own)
    streamed: Callable[[Relation], bool]
    clock_ns: Callable[[], int]
    last_ts_ns: int = 0

    def records(self, transaction: Transaction) -> list[dict[str, Any]]:
        compactor = Compactor(self.primary_key)
        for change in transaction.changes:
            if self.streamed(change.relation):
                compactor.add(change)
        rows = compactor.final()
        if not rows:
            return []
        # commit order is decoding order: keep source.ts_ns strictly increasing even when two
        # commits share a microsecond
        ts_ns = max(transaction.commit_time_us * 1000, self.last_ts_ns + 1)
        self.last_ts_ns = ts_ns
        tx_id = transaction_id(self.cluster, transaction.xid, transaction.end_lsn)
        out = []
        for op, relation, before, after in rows:
            now_ns = self.clock_ns()
            out.append({
                "type": "full",
                "op": op,
                "before": _image(relation, before),
                "after": _image(relation, after),
                "source": {
                    "version": RECORD_VERSION,
                    "ts_ms": ts_ns // 1_000_000,
                    "ts_ns": ts_ns,
                    "txId": tx_id,
                    "schema": relation.schema,
                    "table": relation.name,
                    "db": DATABASE,
                    "cluster": self.cluster,
                },
                "ts_ms": now_ns // 1_000_000,
                "ts_ns": now_ns,
            })
        return out


def dumps(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode("utf-8")
