"""The CDC service of the emulator: the local Kinesis stream and the thread that fills it.

:class:`CdcService` starts moto's server (:mod:`.server`), makes the Kinesis stream, a DSQL
cluster and a CDC stream on it in moto's DSQL control plane (so ``GetStream`` answers ACTIVE, as
on AWS), sets up the database (:mod:`.database`), and runs :class:`Producer`: every ~50 ms it
peeks the committed transactions from the replication slot, turns them into DSQL records
(:mod:`.records`), puts them on random shards through :class:`Sender` (which adds the chaos:
duplicates, delays, reordering), and only then advances the slot: at least once.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from ..settings import CDC_FILE, CdcSettings
from . import database
from .pgoutput import Decoder, Relation
from .records import RecordBuilder, dumps
from .server import ACCESS_KEY_ID, ACCOUNT_ID, REGION, SECRET_ACCESS_KEY, client

log = logging.getLogger(__name__)

STREAM_NAME = "dsql-cdc"
#: the role DSQL would assume to write to Kinesis (moto checks nothing; AWS needs a real one)
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/dsql-cdc"
POLL_INTERVAL = 0.05
#: Kinesis PutRecords takes at most 500 records a call
PUT_BATCH = 500
#: pgoutput messages peeked at a time (whole transactions: a bigger one is read whole)
PEEK_LIMIT = 5000


class Sender:
    """Puts records on the stream, each with a random partition key; with chaos settings, sends
    some twice, holds some back and shuffles them within a window."""

    def __init__(self, put: Callable[[list[tuple[str, bytes]]], list[int]],
                 settings: CdcSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.put = put
        self.settings = settings
        self.clock = clock
        self.rng = random.Random(settings.seed)
        self.held: list[tuple[float, int, bytes]] = []
        self.sequence = 0
        self.sent = 0

    def _key(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def send(self, records: list[bytes]) -> None:
        chosen: list[bytes] = []
        for data in records:
            chosen.append(data)
            if self.rng.random() < self.settings.duplicate_rate:
                chosen.append(data)
        window = self.settings.reorder_window
        if window > 1:
            for start in range(0, len(chosen), window):
                part = chosen[start:start + window]
                self.rng.shuffle(part)
                chosen[start:start + window] = part
        now = self.clock()
        ready = []
        for data in chosen:
            if self.settings.delay_rate and self.rng.random() < self.settings.delay_rate:
                self.sequence += 1
                heapq.heappush(self.held, (now + self.rng.uniform(0, self.settings.max_delay),
                                           self.sequence, data))
            else:
                ready.append(data)
        self._put_all(ready)

    def release_due(self, everything: bool = False) -> None:
        now = self.clock()
        due = []
        while self.held and (everything or self.held[0][0] <= now):
            due.append(heapq.heappop(self.held)[2])
        self._put_all(due)

    def _put_all(self, records: list[bytes]) -> None:
        for start in range(0, len(records), PUT_BATCH):
            batch = [(self._key(), data) for data in records[start:start + PUT_BATCH]]
            for _attempt in range(10):
                failed = self.put(batch)
                if not failed:
                    break
                batch = [batch[i] for i in failed]
                time.sleep(0.05)
            else:
                raise RuntimeError(f"Kinesis refused {len(batch)} records ten times")
            self.sent += len(records[start:start + PUT_BATCH])


class Producer(threading.Thread):
    """Polls the replication slot and sends what committed."""

    def __init__(self, conninfo: str, cluster: str, sender: Sender,
                 poll_interval: float = POLL_INTERVAL) -> None:
        super().__init__(name="cdc-producer", daemon=True)
        self.conninfo = conninfo
        self.sender = sender
        self.poll_interval = poll_interval
        self.stopping = threading.Event()
        self.decoder = Decoder()
        self.keys: dict[Relation, list[str] | None] = {}
        self.conn: psycopg.Connection[Any] | None = None
        self.builder = RecordBuilder(cluster=cluster, primary_key=self._primary_key,
                                     streamed=_streamed, clock_ns=time.time_ns)
        self.error: BaseException | None = None

    def _primary_key(self, relation: Relation) -> list[str] | None:
        if relation not in self.keys:
            assert self.conn is not None
            found = database.primary_key(self.conn, relation.oid)
            # a table dropped since: its replica identity's columns (all, with FULL)
            self.keys[relation] = found
        return self.keys[relation]

    def step(self) -> int:
        """One poll: returns how many messages it read."""
        assert self.conn is not None
        messages = database.peek(self.conn, PEEK_LIMIT)
        self.decoder.current = None
        records: list[bytes] = []
        last_lsn = None
        for lsn, data in messages:
            transaction = self.decoder.feed(data)
            if transaction is not None:
                records.extend(dumps(r) for r in self.builder.records(transaction))
                last_lsn = lsn
        self.sender.send(records)
        if last_lsn is not None:
            database.advance(self.conn, last_lsn)
        self.sender.release_due()
        return len(messages)

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                if self.conn is None or self.conn.closed:
                    self.conn = psycopg.connect(self.conninfo, autocommit=True,
                                                connect_timeout=10)
                if self.step() == 0:
                    self.stopping.wait(self.poll_interval)
            except Exception as exc:  # the stream must go on: log, reconnect, retry
                self.error = exc
                log.exception("CDC producer: %s", exc)
                if self.conn is not None:
                    with contextlib.suppress(Exception):
                        self.conn.close()
                self.conn = None
                self.stopping.wait(1.0)
        with contextlib.suppress(Exception):
            self.sender.release_due(everything=True)
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        self.join(timeout)


def _streamed(relation: Relation) -> bool:
    return (relation.schema not in database.INTERNAL_SCHEMAS
            and not relation.schema.startswith("pg_"))


class CdcService:
    """moto, the streams, the database's part and the producer, started and stopped together,
    in the CDC process (:mod:`.server`), which also serves moto's HTTP API."""

    def __init__(self, state_dir: Path, settings: CdcSettings, superuser_conninfo: str,
                 endpoint: str) -> None:
        self.state_dir = state_dir
        self.settings = settings
        self.conninfo = superuser_conninfo
        self.endpoint = endpoint
        self.producer: Producer | None = None
        self.info: dict[str, Any] = {}

    def start(self) -> dict[str, Any]:
        endpoint = self.endpoint
        kinesis = client("kinesis", endpoint)
        kinesis.create_stream(StreamName=STREAM_NAME, ShardCount=self.settings.shards)
        kinesis.get_waiter("stream_exists").wait(
            StreamName=STREAM_NAME, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
        stream_arn = kinesis.describe_stream_summary(
            StreamName=STREAM_NAME)["StreamDescriptionSummary"]["StreamARN"]
        dsql = client("dsql", endpoint)
        cluster = dsql.create_cluster(deletionProtectionEnabled=False)["identifier"]
        stream = dsql.create_stream(
            clusterIdentifier=cluster, ordering="UNORDERED", format="JSON",
            targetDefinition={"kinesis": {"streamArn": stream_arn, "roleArn": ROLE_ARN}})
        for _ in range(50):  # moto's CREATING turns ACTIVE after a read or two
            status = dsql.get_stream(clusterIdentifier=cluster,
                                     streamIdentifier=stream["streamIdentifier"])["status"]
            if status == "ACTIVE":
                break
            time.sleep(0.05)
        with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=10) as conn:
            if database.wal_level(conn) != "logical":
                raise RuntimeError("the server runs without wal_level = logical: stop the local "
                                   "target ('dsql-migrate local stop') and start it again")
            database.setup(conn)
        self.producer = Producer(self.conninfo, cluster, Sender(_direct_put(), self.settings))
        self.producer.start()
        self.info = {
            "cdc_kinesis_endpoint": endpoint,
            "cdc_stream_arn": stream_arn,
            "cdc_stream_name": STREAM_NAME,
            "cdc_region": REGION,
            "cdc_access_key_id": ACCESS_KEY_ID,
            "cdc_secret_access_key": SECRET_ACCESS_KEY,
            "cdc_shards": self.settings.shards,
            "cdc_cluster_id": cluster,
            "cdc_dsql_endpoint": endpoint,
            "cdc_dsql_stream_arn": stream["arn"],
            "cdc_dsql_stream_id": stream["streamIdentifier"],
            "cdc_chaos": self.settings.chaos,
        }
        path = self.state_dir / CDC_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.info, indent=2) + "\n")
        tmp.replace(path)
        return self.info

    def close(self) -> None:
        (self.state_dir / CDC_FILE).unlink(missing_ok=True)
        if self.producer is not None:
            self.producer.stop()
            self.producer = None
        with contextlib.suppress(psycopg.Error), \
                psycopg.connect(self.conninfo, autocommit=True, connect_timeout=10) as conn:
            database.teardown(conn)


def _direct_put() -> Callable[[list[tuple[str, bytes]]], list[int]]:
    """Put records straight into moto's Kinesis backend, in this process: what PutRecords does
    without the HTTP round trip and the two (de)serialisations, which made moto the bottleneck
    of a large copy (the records and the shards they land on are the same)."""
    from moto.kinesis.models import kinesis_backends

    stream = kinesis_backends[ACCOUNT_ID][REGION].describe_stream(
        stream_arn=None, stream_name=STREAM_NAME)
    lock = threading.Lock()

    def put(batch: list[tuple[str, bytes]]) -> list[int]:
        with lock:
            for key, data in batch:
                stream.put_record(key, "", data)  # no explicit hash key
        return []

    return put
