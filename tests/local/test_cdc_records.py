"""Unit tests (no database) of the emulator's CDC: the pgoutput decoder, write-set compaction,
DSQL's record envelope and the chaos of the sender."""

from __future__ import annotations

import datetime
import json
import struct
import time
from collections import Counter
from typing import Any

import click
import pytest

from dsql_migrate.cli.local import _cdc_settings
from dsql_migrate.local.cdc.pgoutput import (
    PG_EPOCH_US,
    UNCHANGED,
    Change,
    Column,
    Decoder,
    ProtocolError,
    Relation,
    Transaction,
)
from dsql_migrate.local.cdc.producer import Sender
from dsql_migrate.local.cdc.records import (
    Compactor,
    RecordBuilder,
    dumps,
    encode_value,
    transaction_id,
)
from dsql_migrate.local.settings import CdcSettings, EmulatorSettings

# -- pgoutput messages, built as the server sends them ------------------------------------


def _s(text: str) -> bytes:
    return text.encode() + b"\0"


def begin(xid: int, commit_us: int) -> bytes:
    return b"B" + struct.pack("!qqI", 0x100, commit_us - PG_EPOCH_US, xid)


def commit(end_lsn: int) -> bytes:
    return b"C" + struct.pack("!bqq", 0, end_lsn - 8, end_lsn)


def relation(oid: int, schema: str, name: str,
             columns: list[tuple[str, int, bool]]) -> bytes:
    out = b"R" + struct.pack("!I", oid) + _s(schema) + _s(name) + struct.pack("!bh", ord("f"),
                                                                             len(columns))
    for column, type_oid, key in columns:
        out += struct.pack("!b", 1 if key else 0) + _s(column) + struct.pack("!Ii", type_oid, -1)
    return out


def tuple_data(*values: object) -> bytes:
    out = struct.pack("!h", len(values))
    for value in values:
        if value is None:
            out += b"n"
        elif value is UNCHANGED:
            out += b"u"
        else:
            raw = str(value).encode()
            out += b"t" + struct.pack("!i", len(raw)) + raw
    return out


def insert(oid: int, *values: str | None) -> bytes:
    return b"I" + struct.pack("!I", oid) + b"N" + tuple_data(*values)


def update(oid: int, old: tuple[object, ...] | None,
           *new: object) -> bytes:
    head = b"U" + struct.pack("!I", oid)
    if old is not None:
        head += b"O" + tuple_data(*old)
    return head + b"N" + tuple_data(*new)


def delete(oid: int, *old: str | None) -> bytes:
    return b"D" + struct.pack("!I", oid) + b"O" + tuple_data(*old)


ITEMS = relation(16400, "public", "items", [("id", 23, True), ("name", 25, True),
                                            ("price", 1700, True), ("big", 25, True)])
NO_PK = relation(16500, "public", "notes", [("a", 23, True), ("b", 25, True)])
INTERNAL = relation(16600, "sys", "_jobs", [("job_id", 25, True)])
KEYS = {16400: ["id"], 16600: ["job_id"]}
COMMIT_US = 1_705_318_200_000_123


def _decode(*messages: bytes) -> list[Transaction]:
    return list(Decoder().feed_all(list(messages)))


def _builder() -> RecordBuilder:
    return RecordBuilder(cluster="kmabugltfmjdaj2siqr2qbxgju",
                         primary_key=lambda rel: KEYS.get(rel.oid),
                         streamed=lambda rel: rel.schema != "sys",
                         clock_ns=lambda: 1_705_318_200_125_483_291)


def _records(*messages: bytes) -> list[dict[str, object]]:
    builder = _builder()
    return [record for tx in _decode(*messages) for record in builder.records(tx)]


# -- the decoder ---------------------------------------------------------------------------


def test_decoder_reads_a_transaction_with_every_kind_of_change() -> None:
    [tx] = _decode(begin(731, COMMIT_US), ITEMS, insert(16400, "1", "a", "29.99", None),
                   update(16400, ("1", "a", "29.99", "long"), "1", "b", "30", UNCHANGED),
                   delete(16400, "1", "b", "30", "long"), commit(0x2000))
    assert (tx.xid, tx.commit_time_us, tx.end_lsn) == (731, COMMIT_US, 0x2000)
    assert [c.kind for c in tx.changes] == ["insert", "update", "delete"]
    assert tx.changes[0].new == {"id": "1", "name": "a", "price": "29.99", "big": None}
    assert tx.changes[1].old == {"id": "1", "name": "a", "price": "29.99", "big": "long"}
    assert tx.changes[1].new is not None and tx.changes[1].new["big"] is UNCHANGED
    assert tx.changes[2].old == {"id": "1", "name": "b", "price": "30", "big": "long"}
    relation_ = tx.changes[0].relation
    assert (relation_.schema, relation_.name) == ("public", "items")
    assert relation_.columns[2] == Column("price", 1700, True)


def test_decoder_yields_nothing_before_the_commit_and_skips_other_messages() -> None:
    decoder = Decoder()
    assert decoder.feed(begin(1, COMMIT_US)) is None
    assert decoder.feed(b"O" + struct.pack("!q", 5) + _s("origin")) is None
    assert decoder.feed(ITEMS) is None
    assert decoder.feed(insert(16400, "1", "a", "1", None)) is None
    assert decoder.feed(b"T" + struct.pack("!ibI", 1, 0, 16400)) is None  # Truncate: no DDL
    done = decoder.feed(commit(99))
    assert done is not None and len(done.changes) == 1


def test_decoder_says_what_it_cannot_read() -> None:
    with pytest.raises(ProtocolError, match="before its Relation"):
        _decode(begin(1, COMMIT_US), insert(77, "1"), commit(9))
    with pytest.raises(ProtocolError, match="ends early"):
        _decode(begin(1, COMMIT_US), ITEMS, insert(16400, "1")[:-1], commit(9))
    with pytest.raises(ProtocolError, match="Commit without Begin"):
        _decode(commit(9))


# -- compaction and the envelope -----------------------------------------------------------


def test_insert_update_delete_in_separate_transactions_give_c_u_d() -> None:
    records = _records(
        ITEMS,
        begin(1, COMMIT_US), insert(16400, "1001", "a", "29.99", None), commit(10),
        begin(2, COMMIT_US + 1), update(16400, ("1001", "a", "29.99", None),
                                        "1001", "a", "31.5", None), commit(20),
        begin(3, COMMIT_US + 2), delete(16400, "1001", "a", "31.5", None), commit(30))
    assert [r["op"] for r in records] == ["c", "u", "d"]
    created, updated, deleted = records
    assert created["before"] is None
    assert created["after"] == {"id": 1001, "name": "a", "price": "29.99"}  # NULL left out
    assert updated["before"] is None and updated["after"] == {"id": 1001, "name": "a",
                                                              "price": "31.5"}
    # a delete carries the primary key only, in before
    assert deleted["before"] == {"id": 1001} and deleted["after"] is None


def test_the_envelope_is_dsqls() -> None:
    [record] = _records(ITEMS, begin(731, COMMIT_US), insert(16400, "1", "a", "2", None),
                        commit(10))
    assert set(record) == {"type", "op", "before", "after", "source", "ts_ms", "ts_ns"}
    assert record["type"] == "full"
    assert record["source"] == {
        "version": "1.0", "ts_ms": COMMIT_US // 1000, "ts_ns": COMMIT_US * 1000,
        "txId": transaction_id("kmabugltfmjdaj2siqr2qbxgju", 731, 10), "schema": "public",
        "table": "items", "db": "postgres", "cluster": "kmabugltfmjdaj2siqr2qbxgju"}
    assert (record["ts_ms"], record["ts_ns"]) == (1_705_318_200_125, 1_705_318_200_125_483_291)
    tx_id = record["source"]["txId"]
    assert len(tx_id) == 26 and tx_id == tx_id.lower() and tx_id.isalnum()
    assert json.loads(dumps(record)) == record


def test_write_sets_are_compacted_per_transaction() -> None:
    records = _records(
        ITEMS,
        begin(1, COMMIT_US),
        # inserted then updated twice: one c with the final state
        insert(16400, "1", "a", "1", None),
        update(16400, ("1", "a", "1", None), "1", "b", "1", None),
        update(16400, ("1", "b", "1", None), "1", "c", "1", None),
        # inserted then deleted: nothing
        insert(16400, "2", "x", "1", None), delete(16400, "2", "x", "1", None),
        # updated then deleted: one d
        update(16400, ("3", "p", "1", None), "3", "q", "1", None),
        delete(16400, "3", "q", "1", None),
        # deleted then inserted again: one u
        delete(16400, "4", "p", "1", None), insert(16400, "4", "r", "2", None),
        commit(10))
    assert [(r["op"], r["before"], r["after"]) for r in records] == [
        ("c", None, {"id": 1, "name": "c", "price": "1"}),
        ("d", {"id": 3}, None),
        ("u", None, {"id": 4, "name": "r", "price": "2"}),
    ]
    assert len({r["source"]["txId"] for r in records}) == 1  # type: ignore[index]


def test_an_update_of_the_primary_key_is_a_delete_and_a_create() -> None:
    records = _records(ITEMS, begin(1, COMMIT_US),
                       update(16400, ("1", "a", "1", None), "2", "a", "1", None), commit(10))
    assert [(r["op"], r["before"], r["after"]) for r in records] == [
        ("d", {"id": 1}, None), ("c", None, {"id": 2, "name": "a", "price": "1"})]


def test_unchanged_large_values_are_filled_from_the_old_image() -> None:
    [record] = _records(ITEMS, begin(1, COMMIT_US),
                        update(16400, ("1", "a", "1", "x" * 5000), "1", "b", "1", UNCHANGED),
                        commit(10))
    assert record["after"] == {"id": 1, "name": "b", "price": "1", "big": "x" * 5000}


def test_a_table_without_primary_key_is_keyed_by_its_whole_row() -> None:
    records = _records(NO_PK, begin(1, COMMIT_US), insert(16500, "1", "x"), commit(10),
                       begin(2, COMMIT_US + 5), delete(16500, "1", "x"), commit(20))
    assert [(r["op"], r["before"]) for r in records] == [("c", None), ("d", {"a": 1, "b": "x"})]


def test_internal_tables_are_not_streamed() -> None:
    records = _records(ITEMS, INTERNAL, begin(1, COMMIT_US), insert(16600, "job"),
                       insert(16400, "1", "a", "1", None), commit(10),
                       begin(2, COMMIT_US + 1), insert(16600, "job2"), commit(20))
    assert [(r["source"]["schema"], r["source"]["table"]) for r in records] == [  # type: ignore[index]
        ("public", "items")]


def test_source_ts_ns_increases_strictly_in_commit_order() -> None:
    records = _records(ITEMS, *[m for i in range(5) for m in (
        begin(i + 1, COMMIT_US), insert(16400, str(i), "a", "1", None), commit(10 * (i + 1)))])
    stamps = [r["source"]["ts_ns"] for r in records]  # type: ignore[index]
    assert stamps == sorted(stamps) and len(set(stamps)) == 5


@pytest.mark.parametrize(("type_oid", "text", "value"), [
    (21, "-3", -3), (23, "42", 42), (20, "9223372036854775807", 9223372036854775807),
    (26, "7", 7), (700, "1.5", 1.5), (701, "-0.25", -0.25), (701, "NaN", "NaN"),
    (701, "Infinity", "Infinity"), (16, "t", True), (16, "f", False),
    (1700, "29.99", "29.99"), (25, "héllo", "héllo"), (1114, "2024-01-15 10:30:00",
                                                     "2024-01-15 10:30:00"),
    (2950, "0b6f6c1e-8b7d-4c3a-9f61-3f2d2d1f0b6a", "0b6f6c1e-8b7d-4c3a-9f61-3f2d2d1f0b6a"),
    (17, "\\x00ff", "\\x00ff"),
])
def test_value_encodings(type_oid: int, text: str, value: object) -> None:
    assert encode_value(type_oid, text) == value


def test_a_single_insert_is_one_c() -> None:
    rel = Relation(1, "public", "t", (Column("id", 23, True),))
    compactor = Compactor(lambda _rel: ["id"])
    compactor.add(Change(rel, "insert", None, {"id": "1"}))
    assert compactor.final() == [("c", rel, None, {"id": "1"})]


# -- the sender's chaos --------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _sender(settings: CdcSettings) -> tuple[Sender, list[tuple[str, bytes]], FakeClock]:
    sent: list[tuple[str, bytes]] = []
    clock = FakeClock()

    def put(batch: list[tuple[str, bytes]]) -> list[int]:
        sent.extend(batch)
        return []

    return Sender(put, settings, clock=clock), sent, clock


def test_without_chaos_every_record_is_sent_once_in_order_with_random_keys() -> None:
    sender, sent, _ = _sender(CdcSettings(enabled=True, seed=1))
    records = [str(i).encode() for i in range(1200)]  # more than one PutRecords call
    sender.send(records)
    assert [data for _key, data in sent] == records
    keys = [key for key, _data in sent]
    assert len(set(keys)) == len(keys) and all(len(key) == 32 for key in keys)


def test_chaos_duplicates_delays_and_reorders_and_loses_nothing() -> None:
    settings = CdcSettings(enabled=True, seed=7, **CdcSettings.CHAOS)  # type: ignore[arg-type]
    sender, sent, clock = _sender(settings)
    records = [str(i).encode() for i in range(1000)]
    sender.send(records)
    held = len(sender.held)
    assert held > 0
    clock.now = settings.max_delay + 0.01
    sender.release_due()
    assert not sender.held
    counts = Counter(data for _key, data in sent)
    assert set(counts) == set(records)  # nothing lost
    assert sum(1 for n in counts.values() if n > 1) > 50  # ~10 % duplicated
    order = [int(data) for _key, data in sent]
    assert order != sorted(order)


def test_chaos_is_replayed_by_its_seed() -> None:
    settings = CdcSettings(enabled=True, seed=3, **CdcSettings.CHAOS)  # type: ignore[arg-type]
    runs = []
    for _ in range(2):
        sender, sent, clock = _sender(settings)
        sender.send([str(i).encode() for i in range(300)])
        clock.now = 10
        sender.release_due()
        runs.append(sent)
    assert runs[0] == runs[1]


def test_release_everything_sends_what_is_held() -> None:
    sender, sent, _ = _sender(CdcSettings(enabled=True, seed=1, delay_rate=1.0, max_delay=60))
    sender.send([b"a", b"b"])
    assert not sent
    sender.release_due(everything=True)
    assert sorted(data for _key, data in sent) == [b"a", b"b"]


# -- settings and options ------------------------------------------------------------------


def test_cdc_settings_round_trip_through_the_settings_file(tmp_path: object) -> None:
    from pathlib import Path

    state = Path(str(tmp_path))
    settings = EmulatorSettings(cdc=CdcSettings(enabled=True, shards=2, duplicate_rate=0.5,
                                                reorder_window=8, seed=9))
    settings.save(state)
    assert EmulatorSettings.load(state).cdc == settings.cdc
    EmulatorSettings().save(state)
    assert EmulatorSettings.load(state).cdc is None


def test_cdc_options() -> None:
    assert _cdc_settings(None, None, None, None) is None
    assert _cdc_settings(True, None, None, 5) == CdcSettings(enabled=True, seed=5)
    assert _cdc_settings(False, None, None, None) == CdcSettings()
    chaotic = _cdc_settings(True, True, 2, None)
    assert chaotic is not None and chaotic.chaos and chaotic.shards == 2
    assert _cdc_settings(None, True, None, None) == chaotic.__class__(
        enabled=True, **CdcSettings.CHAOS)  # type: ignore[arg-type]
    with pytest.raises(click.UsageError, match="go with --cdc"):
        _cdc_settings(False, True, None, None)


# -- the speed-ups of moto's Kinesis (in the CDC process) ----------------------------------


def _read_everything(kinesis: Any, shard_id: str, kind: str = "TRIM_HORIZON",
                     **extra: Any) -> list[tuple[str, bytes, str]]:
    stream = {"StreamName": "s"} if "StreamARN" not in extra else {}
    iterator = kinesis.get_shard_iterator(**stream, ShardId=shard_id,
                                          ShardIteratorType=kind, **extra)["ShardIterator"]
    out = []
    for _ in range(20):
        answer = kinesis.get_records(ShardIterator=iterator, Limit=7)
        out.extend((r["SequenceNumber"], r["Data"], r["PartitionKey"])
                   for r in answer["Records"])
        assert isinstance(answer["MillisBehindLatest"], int)
        iterator = answer["NextShardIterator"]
    return out


def _moto_run(patched: bool) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    with mock_aws():
        factory: Any = boto3.client
        kinesis = factory("kinesis", region_name="us-east-1")
        kinesis.create_stream(StreamName="s", ShardCount=2)
        kinesis.put_records(StreamName="s", Records=[
            {"Data": f"record {i}".encode(), "PartitionKey": f"key-{i}"} for i in range(40)])
        time.sleep(0.05)
        middle = datetime.datetime.now(datetime.timezone.utc)
        time.sleep(0.05)
        shards = [s["ShardId"] for s in kinesis.list_shards(StreamName="s")["Shards"]]
        kinesis.put_records(StreamName="s", Records=[
            {"Data": f"later {i}".encode(), "PartitionKey": f"key-{i}"} for i in range(40)])
        first = _read_everything(kinesis, shards[0])
        answer = kinesis.get_records(ShardIterator=kinesis.get_shard_iterator(
            StreamName="s", ShardId=shards[1], ShardIteratorType="TRIM_HORIZON")["ShardIterator"])
        arrival = answer["Records"][0]["ApproximateArrivalTimestamp"]
        assert arrival < middle
        return {
            "shard0": first,
            "shard1": _read_everything(kinesis, shards[1]),
            "after": _read_everything(kinesis, shards[0], "AFTER_SEQUENCE_NUMBER",
                                      StartingSequenceNumber=first[3][0]),
            "latest": _read_everything(kinesis, shards[0], "LATEST"),
            "at_timestamp": [
                _read_everything(kinesis, shards[0], "AT_TIMESTAMP", Timestamp=moment)
                # not the first record's arrival itself: the API rounds it to milliseconds,
                # so which records of the other shard come at or after it differs between two
                # runs (the test compares two), not between the implementations
                for moment in (arrival - datetime.timedelta(seconds=5), middle,
                               arrival + datetime.timedelta(hours=1))],
            "by_arn": _read_everything(kinesis, shards[1], StreamARN=kinesis.describe_stream(
                StreamName="s")["StreamDescription"]["StreamARN"]) if patched else None,
            "arrival_type": type(arrival),
        }


def test_the_prepared_moto_answers_as_moto_does_and_reads_by_stream_arn(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.kinesis.models import KinesisBackend, Shard
    from moto.kinesis.responses import KinesisResponse

    from dsql_migrate.local.cdc.server import prepare_moto

    plain = _moto_run(patched=False)
    moto_own = (Shard.get_records, KinesisResponse.get_records)
    for owner, name in ((Shard, "get_max_sequence_number"), (Shard, "get_records"),
                        (Shard, "get_min_sequence_number"), (Shard, "get_sequence_number_at"),
                        (KinesisResponse, "get_records"),
                        (KinesisBackend, "get_shard_iterator")):
        monkeypatch.setattr(owner, name, getattr(owner, name))  # undone after the test
    prepare_moto()
    assert (Shard.get_records, KinesisResponse.get_records) != moto_own  # replaced
    fast = _moto_run(patched=True)
    # moto's own fails to read by a stream ARN's iterator; the fixed one reads the same records
    assert fast.pop("by_arn") == fast["shard1"]
    plain.pop("by_arn")
    assert fast == plain
    assert len(fast["shard0"]) + len(fast["shard1"]) == 80
    everything, after_middle, nothing = fast["at_timestamp"]
    assert everything == fast["shard0"] and not nothing
    assert 0 < len(after_middle) < len(everything)
