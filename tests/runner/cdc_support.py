"""What the --writes=cdc tests share: an emulator started with CDC (``local start --cdc``,
whose stream the runner reads as it would DSQL's), a writer thread that records each committed
write (what the new table must equal afterwards), and, for the unit tests of the stream reader,
a bare local Kinesis (moto's server) with a producer that puts DSQL's CDC envelope.
"""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import psycopg

REGION = "us-east-1"
ACCOUNT = "123456789012"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def kinesis_server() -> Iterator[str]:
    """moto's server on a free port: the endpoint URL."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def kinesis_client(endpoint: str) -> Any:
    return boto3.client("kinesis", region_name=REGION, endpoint_url=endpoint,
                        aws_access_key_id="test", aws_secret_access_key="test")


def create_stream(endpoint: str, shards: int = 4) -> str:
    client = kinesis_client(endpoint)
    name = f"cdc-{uuid.uuid4().hex[:8]}"
    client.create_stream(StreamName=name, ShardCount=shards)
    arn = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"
    for _ in range(50):
        if client.describe_stream_summary(StreamARN=arn)[
                "StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE":
            break
        time.sleep(0.1)
    return arn


def envelope(table: str, op: str, before: dict[str, Any] | None,
             after: dict[str, Any] | None, schema: str = "public") -> dict[str, Any]:
    now = time.time_ns()
    return {"type": "full", "op": op, "before": before, "after": after,
            "source": {"version": "1.0", "ts_ms": now // 1_000_000, "ts_ns": now,
                       "txId": uuid.uuid4().hex, "schema": schema, "table": table,
                       "db": "postgres", "cluster": "local"},
            "ts_ms": now // 1_000_000, "ts_ns": now}


class Producer:
    """Puts CDC records on the stream, as DSQL does: at least once, to a random shard, and
    with chaos duplicated, held back and reordered."""

    def __init__(self, endpoint: str, arn: str, *, chaos: bool = False, seed: int = 7) -> None:
        self.client = kinesis_client(endpoint)
        self.arn = arn
        self.chaos = chaos
        self.rng = random.Random(seed)
        self.held: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def put(self, record: dict[str, Any]) -> None:
        with self.lock:
            batch = [record]
            if self.chaos:
                if self.rng.random() < 0.2:
                    batch.append(record)  # a duplicate
                if self.rng.random() < 0.3:
                    self.held.append(record)  # delivered later, after newer ones
                    batch = batch[1:]
                if self.held and self.rng.random() < 0.3:
                    self.rng.shuffle(self.held)
                    batch.extend(self.held)
                    self.held.clear()
            for item in batch:
                self._put(item)

    def flush(self) -> None:
        with self.lock:
            for item in self.held:
                self._put(item)
            self.held.clear()

    def _put(self, record: dict[str, Any]) -> None:
        self.client.put_record(StreamARN=self.arn, Data=json.dumps(record).encode(),
                               PartitionKey=uuid.uuid4().hex)


@contextmanager
def cdc_emulator(directory: Path, *, chaos: bool) -> Iterator[Any]:
    """A local target of its own started with CDC (``local start --cdc``, ``--cdc-chaos``),
    destroyed afterwards: the producer of the stream the runner reads."""
    from dsql_migrate.local import LocalInstance
    from dsql_migrate.local.settings import CdcSettings

    settings = CdcSettings(enabled=True, seed=3)
    if chaos:
        settings = CdcSettings(enabled=True, seed=3, **{
            k: type(getattr(settings, k))(v) for k, v in CdcSettings.CHAOS.items()})
    instance = LocalInstance(directory, cdc=settings)
    instance.start()
    try:
        yield instance
    finally:
        instance.destroy()


@dataclass
class Writer:
    """The application: inserts, updates and deletes on ``table`` at about ``rate``
    transactions per second, each recorded in ``expected`` once committed (and, with a
    ``producer``, put on that stream; without, the emulator streams them itself); a failed
    write is retried, and its error counted with the time it was seen."""

    url: str
    table: str
    producer: Producer | None
    expected: dict[int, int]
    rate: float = 100.0
    next_id: int = 10_000_000
    errors: list[tuple[float, str]] = field(default_factory=list)
    committed: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    rng: random.Random = field(default_factory=lambda: random.Random(11))

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def finish(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(30)
        if self.producer is not None:
            self.producer.flush()

    def _run(self) -> None:
        conn = psycopg.connect(self.url, autocommit=True)
        keys = list(self.expected)
        pause = 1.0 / self.rate
        try:
            while not self.stop.is_set():
                started = time.monotonic()
                self._one(conn, keys)
                time.sleep(max(0.0, pause - (time.monotonic() - started)))
        finally:
            conn.close()

    def _one(self, conn: psycopg.Connection[Any], keys: list[int]) -> None:
        roll = self.rng.random()
        if roll < 0.4 or not keys:
            key, op = self.next_id, "c"
            self.next_id += 1
        else:
            key = keys[self.rng.randrange(len(keys))]
            op = "u" if roll < 0.8 else "d"
        value = self.rng.randrange(1, 2_000_000_000)
        while not self.stop.is_set():
            try:
                if op == "c":
                    conn.execute(f'INSERT INTO "{self.table}" (id, v, note) VALUES (%s, %s, %s)',
                                 (key, value, f"w{key}"))
                elif op == "u":
                    conn.execute(f'UPDATE "{self.table}" SET v = %s WHERE id = %s', (value, key))
                else:
                    conn.execute(f'DELETE FROM "{self.table}" WHERE id = %s', (key,))
                break
            except psycopg.Error as exc:
                self.errors.append((time.monotonic(), str(exc.sqlstate)))
                time.sleep(0.01)
        else:
            return
        self.committed += 1
        if op == "c":
            self.expected[key] = value
            keys.append(key)
            self._put(envelope(self.table, "c", None,
                               {"id": key, "v": value, "note": f"w{key}"}))
        elif op == "u":
            if key in self.expected:
                self.expected[key] = value
                self._put(envelope(self.table, "u", None, {"id": key, "v": value}))
        else:
            if self.expected.pop(key, None) is not None:
                self._put(envelope(self.table, "d", {"id": key}, None))
            keys.remove(key)

    def _put(self, record: dict[str, Any]) -> None:
        if self.producer is not None:
            self.producer.put(record)


def make_plan(url: str, scratch_url: str, table: str, out: Path, cwd: Path) -> dict[str, Any]:
    """The planner's --writes=cdc plan for ``table``'s v integer -> bigint, via the CLI."""
    desired = cwd / "desired.sql"
    desired.write_text(f'CREATE TABLE "{table}" (id bigint PRIMARY KEY, v bigint, note text);\n')
    done = subprocess.run(
        [sys.executable, "-m", "dsql_migrate", "plan", "--url", url, "--target", str(desired),
         "--scratch-url", scratch_url, "--writes", "cdc", "--allow-destructive", "-o",
         str(out)], check=False, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    plan: dict[str, Any] = json.loads(out.read_text())
    return plan


def table_rows(conn: psycopg.Connection[Any], table: str) -> dict[int, int]:
    rows = conn.execute(f'SELECT id, v FROM "{table}"').fetchall()
    return {int(r[0]): int(r[1]) for r in rows}
