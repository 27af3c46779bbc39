"""A decoder of PostgreSQL's ``pgoutput`` logical replication protocol, version 1, text format.

``pg_logical_slot_peek_binary_changes(slot, ..., 'proto_version', '1', 'publication_names',
...)`` returns one message per row; :class:`Decoder` turns them into committed
:class:`Transaction` s. Only what the emulator's CDC stream needs is kept: Begin, Relation,
Insert, Update, Delete and Commit (Origin, Type and Truncate messages are read and dropped; DSQL
streams no DDL). The format is PostgreSQL's documented "Logical Replication Message Formats".
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar, Final

#: microseconds between the Unix epoch and PostgreSQL's (2000-01-01)
PG_EPOCH_US: Final = 946_684_800_000_000


class _Unchanged:
    """An unchanged TOASTed value that the server did not send again (``u`` in TupleData)."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = _Unchanged()

#: a column's value as sent: its text form, None for NULL, or UNCHANGED
Value = str | None | _Unchanged


class ProtocolError(ValueError):
    """A message this decoder cannot read."""


@dataclass(frozen=True)
class Column:
    name: str
    type_oid: int
    #: part of the replica identity (the primary key, or every column with FULL)
    is_key: bool


@dataclass(frozen=True)
class Relation:
    oid: int
    schema: str
    name: str
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class Change:
    """One row change as decoded: ``kind`` is ``insert``, ``update`` or ``delete``; ``old`` is
    the old image the server logged (the replica identity's columns, or all with FULL)."""

    relation: Relation
    kind: str
    old: dict[str, Value] | None
    new: dict[str, Value] | None


@dataclass
class Transaction:
    xid: int
    #: commit time, microseconds since the Unix epoch
    commit_time_us: int
    final_lsn: int
    end_lsn: int = 0
    changes: list[Change] = field(default_factory=list)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise ProtocolError(f"message ends early ({len(self.data)} bytes, needs {end})")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def byte(self) -> str:
        return self.take(1).decode("ascii")

    def int8(self) -> int:
        return int(struct.unpack("!b", self.take(1))[0])

    def int16(self) -> int:
        return int(struct.unpack("!h", self.take(2))[0])

    def int32(self) -> int:
        return int(struct.unpack("!i", self.take(4))[0])

    def uint32(self) -> int:
        return int(struct.unpack("!I", self.take(4))[0])

    def int64(self) -> int:
        return int(struct.unpack("!q", self.take(8))[0])

    def string(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise ProtocolError("unterminated string")
        text = self.data[self.pos:end].decode("utf-8")
        self.pos = end + 1
        return text


def _tuple(reader: _Reader, relation: Relation) -> dict[str, Value]:
    count = reader.int16()
    if count > len(relation.columns):
        raise ProtocolError(f"{count} columns for {relation.schema}.{relation.name}, "
                            f"which has {len(relation.columns)}")
    values: dict[str, Value] = {}
    for column in relation.columns[:count]:
        kind = reader.byte()
        if kind == "n":
            values[column.name] = None
        elif kind == "u":
            values[column.name] = UNCHANGED
        elif kind == "t":
            values[column.name] = reader.take(reader.int32()).decode("utf-8")
        else:
            raise ProtocolError(f"tuple value of kind {kind!r} (only text format is asked for)")
    return values


class Decoder:
    """Feed it messages in order; it yields each transaction once its Commit arrives.

    Relations are remembered across calls (pgoutput sends a Relation message before the first
    change of a table in each decoding session, and again when the table's shape changed).
    """

    def __init__(self) -> None:
        self.relations: dict[int, Relation] = {}
        self.current: Transaction | None = None

    def feed(self, message: bytes) -> Transaction | None:
        reader = _Reader(message)
        tag = reader.byte()
        handler = self._HANDLERS.get(tag)
        if handler is None:
            return None  # Origin, Type, Truncate, Message: nothing a CDC record carries
        return handler(self, reader)

    def feed_all(self, messages: Iterable[bytes]) -> Iterator[Transaction]:
        for message in messages:
            done = self.feed(message)
            if done is not None:
                yield done

    def _begin(self, reader: _Reader) -> None:
        final_lsn = reader.int64()
        commit_time = reader.int64()
        xid = reader.uint32()
        self.current = Transaction(xid=xid, commit_time_us=commit_time + PG_EPOCH_US,
                                   final_lsn=final_lsn)

    def _commit(self, reader: _Reader) -> Transaction:
        reader.int8()  # flags, unused
        reader.int64()  # the commit's LSN
        end_lsn = reader.int64()
        if self.current is None:
            raise ProtocolError("Commit without Begin")
        done, self.current = self.current, None
        done.end_lsn = end_lsn
        return done

    def _relation(self, reader: _Reader) -> None:
        oid = reader.uint32()
        schema = reader.string()
        name = reader.string()
        reader.int8()  # replica identity setting
        columns = []
        for _ in range(reader.int16()):
            flags = reader.int8()
            column_name = reader.string()
            type_oid = reader.uint32()
            reader.int32()  # typmod
            columns.append(Column(column_name, type_oid, bool(flags & 1)))
        self.relations[oid] = Relation(oid, schema, name, tuple(columns))

    def _relation_of(self, reader: _Reader) -> Relation:
        oid = reader.uint32()
        relation = self.relations.get(oid)
        if relation is None:
            raise ProtocolError(f"change of relation {oid} before its Relation message")
        return relation

    def _add(self, change: Change) -> None:
        if self.current is None:
            raise ProtocolError("row change outside a transaction")
        self.current.changes.append(change)

    def _insert(self, reader: _Reader) -> None:
        relation = self._relation_of(reader)
        if reader.byte() != "N":
            raise ProtocolError("Insert without a new tuple")
        self._add(Change(relation, "insert", None, _tuple(reader, relation)))

    def _update(self, reader: _Reader) -> None:
        relation = self._relation_of(reader)
        kind = reader.byte()
        old = None
        if kind in ("K", "O"):
            old = _tuple(reader, relation)
            kind = reader.byte()
        if kind != "N":
            raise ProtocolError("Update without a new tuple")
        self._add(Change(relation, "update", old, _tuple(reader, relation)))

    def _delete(self, reader: _Reader) -> None:
        relation = self._relation_of(reader)
        if reader.byte() not in ("K", "O"):
            raise ProtocolError("Delete without an old tuple")
        self._add(Change(relation, "delete", _tuple(reader, relation), None))

    _HANDLERS: ClassVar[dict[str, Callable[[Decoder, _Reader], Transaction | None]]] = {
        "B": _begin,
        "C": _commit,
        "R": _relation,
        "I": _insert,
        "U": _update,
        "D": _delete,
    }
