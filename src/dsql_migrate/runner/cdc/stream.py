"""Reading a DSQL CDC stream: boto3's Kinesis client, the same code path on AWS and on the local
emulator (only ``endpoint_url`` differs).

What a consumer must know (DSQL.md §8): one JSON record per changed row per transaction,
delivered **at least once** and **unordered**, to a random shard. So the reader walks **every**
shard (shards that split or merge included), from an ``AT_TIMESTAMP`` iterator taken at a moment
recorded before the copy began, and keeps only *which keys changed*: the source table stays the
truth, and a key is re-synced from it (:mod:`.resync`), which does not care about duplicates or
order.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ...errors import ConfigError, DsqlMigrateError, ExitCode

log = logging.getLogger(__name__)

#: where the endpoint comes from when --cdc-endpoint is not given
ENV_ENDPOINT = "DSQL_MIGRATE_CDC_ENDPOINT"
_ARN = re.compile(r"^arn:aws[\w-]*:kinesis:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
                  r"stream/(?P<name>[A-Za-z0-9_.-]+)$")
#: stream states in which records can be read
_READABLE = frozenset({"ACTIVE", "UPDATING"})


class StreamError(DsqlMigrateError):
    """The CDC stream cannot be used: not there, not active, not this cluster's, unreadable."""

    exit_code = ExitCode.FAILED


def parse_arn(arn: str) -> tuple[str, str]:
    """(region, stream name) of a Kinesis stream ARN; a clear error for anything else."""
    match = _ARN.match(arn.strip())
    if match is None:
        raise ConfigError(
            f"--cdc-stream {arn!r} is not a Kinesis data stream ARN",
            hint="pass the ARN of the Kinesis stream the cluster's CDC stream delivers to, "
            "e.g. arn:aws:kinesis:us-east-1:123456789012:stream/orders-cdc ('aws dsql "
            "get-stream' shows it as targetDefinition.kinesis.streamArn)")
    return match["region"], match["name"]


@dataclass(frozen=True)
class TableFilter:
    """Which records matter: the source table's schema and name, and its key columns (as the
    records name them: the source table's own column names); the runner's marker table
    (:mod:`.marker`), whose records say how far the stream has delivered; and the commit time
    (``source.ts_ns``) before which a change is already in the copy and is skipped."""

    schema: str
    table: str
    key: tuple[str, ...]
    marker_schema: str | None = None
    marker_table: str | None = None
    #: changes committed before this (nanoseconds since the epoch) were there before the copy's
    #: first batch read the table: the copy has them
    committed_after_ns: int | None = None

    @classmethod
    def from_details(cls, details: Mapping[str, Any]) -> TableFilter:
        stream = details.get("stream")
        if not isinstance(stream, Mapping):
            raise StreamError("the plan's verify step has no 'stream' details: plan again "
                              "with --writes=cdc")
        return cls(str(stream["schema"]), str(stream["table"]),
                   tuple(str(k) for k in stream["key"]))

    def with_marker(self, schema: str, table: str, *, committed_after: datetime | None,
                    ) -> TableFilter:
        after_ns = None if committed_after is None else \
            int(committed_after.timestamp()) * 1_000_000_000 + committed_after.microsecond * 1000
        return dataclasses.replace(self, marker_schema=schema, marker_table=table,
                                   committed_after_ns=after_ns)


def key_of(record: Mapping[str, Any], key: Sequence[str]) -> tuple[str, ...] | None:
    """The primary key of one CDC record as text: from ``before`` for a delete, from ``after``
    for anything else (an unknown ``op`` is an upsert of ``after``, DSQL.md §8). None when the
    image lacks a key column (a record without the key cannot be placed; the verification
    under the freeze covers it)."""
    image = record.get("before") if record.get("op") == "d" else record.get("after")
    if not isinstance(image, Mapping):
        image = record.get("after") or record.get("before")
    if not isinstance(image, Mapping):
        return None
    values = []
    for column in key:
        if column not in image or image[column] is None:
            return None
        values.append(key_text(image[column]))
    return tuple(values)


def key_text(value: Any) -> str:
    """A key value as the text PostgreSQL reads back as the same value (the re-sync casts
    ``text[]`` to the key's type)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


#: Kinesis serves 5 GetRecords calls per second per shard: a shard is read at most this often
MIN_READ_SECONDS = 0.2


@dataclass
class _Shard:
    shard_id: str
    iterator: str | None
    finished: bool = False
    lag_ms: int = 0
    read_at: float = 0.0  # time.monotonic() of the last read


@dataclass
class PollResult:
    """What one pass over every shard gave: the keys changed, records seen, the largest
    ``MillisBehindLatest`` and whether every shard is at its tip."""

    keys: set[tuple[str, ...]] = field(default_factory=set)
    #: the runner's markers seen (:mod:`.marker`)
    markers: set[str] = field(default_factory=set)
    records: int = 0
    matched: int = 0
    #: records of the table committed before the copy began (the copy has them)
    older: int = 0
    unreadable: int = 0
    lag_ms: int = 0
    at_tip: bool = True


class ChangeStream:
    """One reader of a Kinesis stream for one table, from a start moment on."""

    def __init__(self, arn: str, *, endpoint: str | None,
                 credentials: tuple[str, str] | None = None,
                 client: Any | None = None) -> None:
        self.arn = arn.strip()
        self.region, self.name = parse_arn(self.arn)
        self.endpoint = endpoint
        self._client = client if client is not None else _kinesis_client(
            self.region, endpoint, credentials=credentials)
        self._shards: dict[str, _Shard] = {}
        self._start: datetime | None = None

    @property
    def client(self) -> Any:
        return self._client

    def check_active(self) -> str:
        """The stream's status; refuses one that is not there or cannot be read yet."""
        try:
            summary = self._client.describe_stream_summary(StreamARN=self.arn)
        except Exception as exc:  # botocore raises many kinds: each is "cannot use it"
            raise StreamError(f"cannot read the CDC stream {self.arn}: {_aws_error(exc)}",
                              hint=_stream_hint(self.endpoint)) from None
        status = str(summary["StreamDescriptionSummary"]["StreamStatus"])
        if status not in _READABLE:
            raise StreamError(f"the CDC stream {self.arn} is {status}, not ACTIVE",
                              hint="wait until 'aws kinesis describe-stream-summary' shows "
                              "ACTIVE, then run again")
        return status

    def start(self, at: datetime) -> None:
        """Read from ``at`` on (an ``AT_TIMESTAMP`` iterator on every shard)."""
        self._start = at
        self._shards.clear()
        self._discover()

    def _discover(self) -> None:
        """Every shard of the stream, open or closed (a split or merge leaves parents holding
        records from before it); new ones get an iterator at the start moment."""
        assert self._start is not None
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"NextToken": token} if token else {"StreamARN": self.arn}
            try:
                page = self._client.list_shards(**kwargs)
            except Exception as exc:
                raise StreamError(f"cannot list the shards of {self.arn}: {_aws_error(exc)}",
                                  hint=_stream_hint(self.endpoint)) from None
            for shard in page.get("Shards", ()):
                shard_id = str(shard["ShardId"])
                if shard_id not in self._shards:
                    self._shards[shard_id] = _Shard(shard_id, self._iterator(shard_id))
            token = page.get("NextToken")
            if not token:
                return

    def _iterator(self, shard_id: str) -> str | None:
        try:
            # by name: the stream is in the caller's account and region (DSQL requires
            # stream, role, cluster and caller in one), and moto's server reads no ARN here
            answer = self._client.get_shard_iterator(
                StreamName=self.name, ShardId=shard_id, ShardIteratorType="AT_TIMESTAMP",
                Timestamp=self._start)
        except Exception as exc:
            raise StreamError(f"cannot read shard {shard_id} of {self.arn}: "
                              f"{_aws_error(exc)}", hint=_stream_hint(self.endpoint)) from None
        iterator = answer.get("ShardIterator")
        return str(iterator) if iterator else None

    def poll(self, table: TableFilter, *, rounds: int = 1) -> PollResult:
        """Up to ``rounds`` reads of every shard (stopping early at every shard's tip): the
        keys of ``table`` that changed."""
        result = PollResult()
        self._discover()
        for _ in range(rounds):
            result.at_tip = True
            for shard in self._shards.values():
                if shard.finished or shard.iterator is None:
                    shard.finished = True
                    continue
                self._read(shard, table, result)
            result.lag_ms = max((s.lag_ms for s in self._shards.values()), default=0)
            if result.at_tip:
                break
        return result

    def _read(self, shard: _Shard, table: TableFilter, result: PollResult) -> None:
        wait = shard.read_at + MIN_READ_SECONDS - time.monotonic()
        if wait > 0:
            time.sleep(wait)  # not a throttling error (which would cost a whole pass)
        shard.read_at = time.monotonic()
        try:
            answer = self._client.get_records(ShardIterator=shard.iterator, Limit=_LIMIT)
        except Exception as exc:
            if _is_throttled(exc):  # 5 reads per second per shard: read it next round
                result.at_tip = False
                time.sleep(0.2)
                return
            if _is_expired(exc):  # an iterator lives 5 minutes: start that shard again
                shard.iterator = self._iterator(shard.shard_id)
                result.at_tip = False
                return
            raise StreamError(f"cannot read shard {shard.shard_id} of {self.arn}: "
                              f"{_aws_error(exc)}", hint=_stream_hint(self.endpoint)) from None
        records = answer.get("Records", ())
        for record in records:
            result.records += 1
            key = _table_key(record.get("Data"), table)
            if key is _UNREADABLE:
                result.unreadable += 1
            elif key is _OLDER:
                result.older += 1
            elif isinstance(key, _Marker):
                result.markers.add(key.value)
            elif key is not None:
                result.matched += 1
                result.keys.add(key)  # type: ignore[arg-type]
        shard.lag_ms = int(answer.get("MillisBehindLatest") or 0)
        next_iterator = answer.get("NextShardIterator")
        shard.iterator = str(next_iterator) if next_iterator else None
        if shard.iterator is None:
            shard.finished = True  # a closed shard, read to its end
        elif shard.lag_ms > 0 or len(records) >= _LIMIT:
            # MillisBehindLatest 0: this read reached what the shard had when it was made
            result.at_tip = False

    @property
    def shard_count(self) -> int:
        return len(self._shards)


_UNREADABLE = object()
_OLDER = object()


@dataclass(frozen=True)
class _Marker:
    value: str
#: records per GetRecords call (Kinesis's maximum)
_LIMIT = 10000


def _table_key(data: Any, table: TableFilter) -> object:
    """The key of ``table`` a record's ``Data`` names, None for another table's record,
    ``_OLDER`` for a change the copy has (committed before it began), a ``_Marker`` for one of
    the runner's markers, or ``_UNREADABLE`` for a piece of a split record or anything that is
    not DSQL's JSON."""
    try:
        payload = json.loads(bytes(data).decode("utf-8") if not isinstance(data, str)
                             else data)
    except (ValueError, TypeError, UnicodeDecodeError):
        return _UNREADABLE
    if not isinstance(payload, dict):
        return _UNREADABLE
    source = payload.get("source")
    if not isinstance(source, dict):
        return _UNREADABLE
    schema = source.get("schema", "public")
    if table.marker_table is not None and source.get("table") == table.marker_table \
            and schema == table.marker_schema:
        found = key_of(payload, ("marker",))
        return None if found is None else _Marker(found[0])
    if source.get("table") != table.table or schema != table.schema:
        return None
    if table.committed_after_ns is not None:
        committed = _int(source.get("ts_ns"))
        if committed is not None and committed < table.committed_after_ns:
            return _OLDER
    key = key_of(payload, table.key)
    return _UNREADABLE if key is None else key


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _kinesis_client(region: str, endpoint: str | None, *,
                    credentials: tuple[str, str] | None) -> Any:
    """boto3's Kinesis client: the same on AWS and on the emulator but for ``endpoint_url``
    and, with ``--cdc-stream local``, the emulator's dummy credentials given explicitly. No
    credentials are ever made up: without them boto3's chain decides, and a missing one is
    the clear error of :func:`_stream_hint`."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=region)
    config = Config(retries={"max_attempts": 5, "mode": "standard"},
                    connect_timeout=5, read_timeout=20)
    keys: dict[str, str] = {}
    if credentials is not None:
        keys = {"aws_access_key_id": credentials[0], "aws_secret_access_key": credentials[1]}
    client: Any = session.client(  # type: ignore[call-overload]
        "kinesis", endpoint_url=endpoint, config=config, **keys)
    return client


def _aws_error(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        code, message = error.get("Code"), error.get("Message")
        if code:
            return f"{code}: {message}" if message else str(code)
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _is_throttled(exc: BaseException) -> bool:
    return "ProvisionedThroughputExceeded" in _aws_error(exc) or \
        "LimitExceeded" in _aws_error(exc)


def _is_expired(exc: BaseException) -> bool:
    return "ExpiredIterator" in _aws_error(exc)


def _stream_hint(endpoint: str | None) -> str:
    credentials = ("AWS credentials come from boto3's chain ($AWS_ACCESS_KEY_ID, "
                   "$AWS_PROFILE, an instance role); for the local emulator's stream pass "
                   "--cdc-stream local")
    if endpoint:
        return f"check that the Kinesis endpoint {endpoint} serves this stream; {credentials}"
    return ("check the ARN, the region and that your credentials may call kinesis:"
            "DescribeStreamSummary, ListShards, GetShardIterator and GetRecords on it; "
            + credentials)


def check_cluster_stream(arn: str, cluster: str, region: str, *,
                         client: Any | None = None, endpoint: str | None = None,
                         credentials: tuple[str, str] | None = None) -> None:
    """The cluster has an ACTIVE CDC stream that delivers to ``arn`` (DSQL's control plane:
    ListStreams, then GetStream of each for its Kinesis target): AWS's, or with ``endpoint``
    the local emulator's fake one."""
    if client is None:
        import boto3

        keys: dict[str, str] = {}
        if credentials is not None:
            keys = {"aws_access_key_id": credentials[0],
                    "aws_secret_access_key": credentials[1]}
        factory: Any = boto3.client  # the stubs overload it per service name
        client = factory("dsql", region_name=region, endpoint_url=endpoint, **keys)
    try:
        streams = _cluster_streams(client, cluster)
        statuses = []
        for entry in streams:
            detail = client.get_stream(clusterIdentifier=cluster,
                                       streamIdentifier=entry["streamIdentifier"])
            target = (detail.get("targetDefinition") or {}).get("kinesis") or {}
            if target.get("streamArn") == arn:
                statuses.append(str(detail.get("status")))
    except Exception as exc:
        raise StreamError(f"cannot list the CDC streams of cluster {cluster}: "
                          f"{_aws_error(exc)}",
                          hint="your credentials need dsql:ListStreams and dsql:GetStream "
                          "on the cluster") from None
    if "ACTIVE" in statuses:
        return
    if statuses:
        raise StreamError(f"the CDC stream of cluster {cluster} into {arn} is "
                          f"{', '.join(statuses)}, not ACTIVE",
                          hint="wait until 'aws dsql get-stream' shows ACTIVE (1-3 minutes "
                          "after create-stream)")
    raise StreamError(f"cluster {cluster} has no CDC stream delivering to {arn}",
                      hint="create one with 'aws dsql create-stream' (docs/runner.md), or "
                      "pass the Kinesis ARN of the stream it has")


def _cluster_streams(client: Any, cluster: str) -> Iterable[Mapping[str, Any]]:
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"clusterIdentifier": cluster}
        if token:
            kwargs["nextToken"] = token
        page = client.list_streams(**kwargs)
        yield from page.get("streams", ())
        token = page.get("nextToken")
        if not token:
            return
