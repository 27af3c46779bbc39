"""The CDC stream reader against a local Kinesis (moto's server, no database): every shard,
the key from ``after`` or ``before``, other tables and unreadable records left out, a start
moment honoured, bad ARNs and missing streams refused clearly."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from cdc_support import create_stream, envelope, kinesis_client, kinesis_server

from dsql_migrate.errors import ConfigError
from dsql_migrate.runner.cdc.stream import (
    ChangeStream,
    StreamError,
    TableFilter,
    key_of,
    parse_arn,
)

ORDERS = TableFilter("public", "orders", ("tenant", "id"))


@pytest.fixture(scope="module")
def kinesis() -> Iterator[str]:
    with kinesis_server() as endpoint:
        yield endpoint


def _put(endpoint: str, arn: str, payload: object) -> None:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    kinesis_client(endpoint).put_record(StreamARN=arn, Data=data,
                                        PartitionKey=uuid.uuid4().hex)


def test_key_of_reads_after_for_upserts_and_before_for_deletes() -> None:
    key = ("tenant", "id")
    assert key_of({"op": "c", "after": {"tenant": 1, "id": 7}}, key) == ("1", "7")
    assert key_of({"op": "u", "after": {"tenant": 1, "id": 7, "v": 3}}, key) == ("1", "7")
    assert key_of({"op": "d", "before": {"tenant": 2, "id": 9}, "after": None}, key) == \
        ("2", "9")
    # an op DSQL may add later is an upsert of after
    assert key_of({"op": "r", "after": {"tenant": True, "id": "x"}}, key) == ("true", "x")
    assert key_of({"op": "c", "after": {"tenant": 1}}, key) is None


def test_parse_arn_refuses_anything_but_a_kinesis_stream() -> None:
    assert parse_arn("arn:aws:kinesis:eu-west-1:123456789012:stream/a.b-c") == \
        ("eu-west-1", "a.b-c")
    with pytest.raises(ConfigError, match="not a Kinesis data stream ARN"):
        parse_arn("arn:aws:dsql:us-east-1:123456789012:cluster/abc")


def test_reads_every_shard_and_keeps_only_the_table(kinesis: str) -> None:
    arn = create_stream(kinesis, shards=4)
    start = datetime.now(timezone.utc) - timedelta(seconds=1)
    for i in range(40):  # random partition keys: spread over the four shards
        _put(kinesis, arn, envelope("orders", "c", None, {"tenant": i % 3, "id": i}))
    _put(kinesis, arn, envelope("orders", "d", {"tenant": 0, "id": 3}, None))
    _put(kinesis, arn, envelope("orders", "c", None, {"tenant": 0, "id": 3}))  # duplicate key
    _put(kinesis, arn, envelope("other", "c", None, {"tenant": 0, "id": 99}))
    _put(kinesis, arn, envelope("orders", "c", None, {"tenant": 0, "id": 98}, schema="s2"))
    _put(kinesis, arn, b"\x00 part of a split record")
    stream = ChangeStream(arn, endpoint=kinesis, credentials=("test", "test"))
    assert stream.check_active() == "ACTIVE"
    stream.start(start)
    result = stream.poll(ORDERS, rounds=5)
    assert stream.shard_count == 4
    assert result.keys == {(str(i % 3), str(i)) for i in range(40)}
    assert result.matched == 42 and result.unreadable == 1 and result.records == 45
    assert result.at_tip
    # read on from where it stopped: only what arrives later
    _put(kinesis, arn, envelope("orders", "u", None, {"tenant": 1, "id": 1000}))
    assert stream.poll(ORDERS, rounds=5).keys == {("1", "1000")}


def test_start_moment_is_honoured(kinesis: str) -> None:
    arn = create_stream(kinesis, shards=2)
    _put(kinesis, arn, envelope("orders", "c", None, {"tenant": 0, "id": 1}))
    time.sleep(1.1)
    later = datetime.now(timezone.utc)
    time.sleep(0.1)
    _put(kinesis, arn, envelope("orders", "c", None, {"tenant": 0, "id": 2}))
    stream = ChangeStream(arn, endpoint=kinesis, credentials=("test", "test"))
    stream.start(later)
    assert stream.poll(ORDERS, rounds=3).keys == {("0", "2")}


def test_markers_are_reported_and_changes_older_than_the_copy_skipped(kinesis: str) -> None:
    """The runner's marker rows (its state schema's ``cdc_marker`` table) come back as markers,
    not keys; a change of the table committed before the copy began (``source.ts_ns``) is
    counted as older and not re-synced, however late it arrives; one committed after is."""
    arn = create_stream(kinesis, shards=2)
    start = datetime.now(timezone.utc) - timedelta(seconds=1)
    copy_began = datetime.now(timezone.utc)
    old = envelope("orders", "c", None, {"tenant": 0, "id": 1})
    old["source"]["ts_ns"] = int((copy_began - timedelta(seconds=3)).timestamp() * 1e9)
    _put(kinesis, arn, old)  # committed before the copy, delivered after it began
    old_delete = envelope("orders", "d", {"tenant": 0, "id": 5}, None)
    old_delete["source"]["ts_ns"] = old["source"]["ts_ns"]
    _put(kinesis, arn, old_delete)
    _put(kinesis, arn, envelope("orders", "u", None, {"tenant": 0, "id": 2}))  # after: kept
    _put(kinesis, arn, envelope("cdc_marker", "c", None, {"marker": "m-1", "plan_hash": "h"},
                                schema="dsql_migrate"))
    # the same table name in another schema is not the runner's
    _put(kinesis, arn, envelope("cdc_marker", "c", None, {"marker": "m-2"}, schema="public"))
    table = ORDERS.with_marker("dsql_migrate", "cdc_marker", committed_after=copy_began)
    stream = ChangeStream(arn, endpoint=kinesis, credentials=("test", "test"))
    stream.start(start)
    result = stream.poll(table, rounds=3)
    assert result.keys == {("0", "2")}
    assert result.markers == {"m-1"}
    assert result.older == 2 and result.matched == 1
    # without a copy start nothing is skipped
    stream.start(start)
    assert stream.poll(ORDERS, rounds=3).keys == {("0", "1"), ("0", "5"), ("0", "2")}


def test_a_missing_stream_is_refused_clearly(kinesis: str) -> None:
    stream = ChangeStream("arn:aws:kinesis:us-east-1:123456789012:stream/none",
                          endpoint=kinesis, credentials=("test", "test"))
    with pytest.raises(StreamError, match="cannot read the CDC stream") as err:
        stream.check_active()
    assert "endpoint" in (err.value.hint or "")


def _dsql_stubbed(streams: list[tuple[str, str, str]]) -> tuple[object, object]:
    """A dsql client whose ListStreams/GetStream answer ``streams`` (id, status, Kinesis ARN),
    through botocore's Stubber: DSQL's control plane has no local implementation."""
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("dsql", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    stubber = Stubber(client)
    cluster = "abcdefghijklmnopqrstuvwxyz"
    base = "arn:aws:dsql:us-east-1:123456789012:cluster/" + cluster
    stubber.add_response("list_streams", {"streams": [
        {"clusterIdentifier": cluster, "streamIdentifier": sid, "arn": f"{base}/stream/{sid}",
         "creationTime": datetime(2026, 7, 8, tzinfo=timezone.utc), "status": status}
        for sid, status, _ in streams]}, {"clusterIdentifier": cluster})
    for sid, status, target in streams:
        stubber.add_response("get_stream", {
            "clusterIdentifier": cluster, "streamIdentifier": sid,
            "arn": f"{base}/stream/{sid}", "status": status,
            "creationTime": datetime(2026, 7, 8, tzinfo=timezone.utc),
            "ordering": "UNORDERED", "format": "JSON",
            "targetDefinition": {"kinesis": {
                "streamArn": target, "roleArn": "arn:aws:iam::123456789012:role/cdc"}}},
            {"clusterIdentifier": cluster, "streamIdentifier": sid})
    stubber.activate()
    return client, stubber


KINESIS = "arn:aws:kinesis:us-east-1:123456789012:stream/orders-cdc"


def test_on_aws_the_cluster_must_deliver_to_the_stream() -> None:
    from dsql_migrate.runner.cdc.stream import check_cluster_stream

    cluster = "abcdefghijklmnopqrstuvwxyz"
    client, _ = _dsql_stubbed([("s1", "ACTIVE", KINESIS + "-other"), ("s2", "ACTIVE", KINESIS)])
    check_cluster_stream(KINESIS, cluster, "us-east-1", client=client)
    client, _ = _dsql_stubbed([("s1", "CREATING", KINESIS)])
    with pytest.raises(StreamError, match="CREATING, not ACTIVE"):
        check_cluster_stream(KINESIS, cluster, "us-east-1", client=client)
    client, _ = _dsql_stubbed([("s1", "ACTIVE", KINESIS + "-other")])
    with pytest.raises(StreamError, match="has no CDC stream delivering to"):
        check_cluster_stream(KINESIS, cluster, "us-east-1", client=client)
