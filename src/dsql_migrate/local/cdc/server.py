"""The CDC process: moto's server (the local Kinesis and DSQL control plane) and the producer.

``python -m dsql_migrate.local.cdc.server STATE_DIR PARENT_PID`` serves moto on a free port of
127.0.0.1, runs :class:`.producer.CdcService` (which puts records straight into moto's backend,
in this process) and writes ``emulator.cdc.json``; it stops on SIGTERM or when its parent, the
emulator, is gone, taking the slot and publication down. A process of its own, so that neither
moto nor the producer competes with the emulator's proxy for an interpreter lock, and one that
ends with the emulator even when that is killed.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import datetime
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..postgres import HOST, SUPERUSER, load_passwords, make_url, pick_free_port, process_alive
from ..settings import CDC_FILE, CdcSettings, EmulatorSettings, read_cdc_info

log = logging.getLogger(__name__)

#: moto accepts any credentials; boto3 needs some: these are the documented dummy ones
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"  # a dummy credential: moto ignores it, it is no secret
REGION = "us-east-1"
#: moto's account; the ARNs it makes carry it
ACCOUNT_ID = "123456789012"


class CdcProcess:
    """The CDC process, as the emulator sees it: started, waited for (until it has written
    ``emulator.cdc.json``), stopped."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.log_path = state_dir / "emulator.cdc.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> dict[str, Any]:
        (self.state_dir / CDC_FILE).unlink(missing_ok=True)
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dsql_migrate.local.cdc.server", str(self.state_dir),
                 str(os.getpid())],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, close_fds=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = read_cdc_info(self.state_dir)
            if info is not None:
                return info
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        tail = self.log_path.read_text(errors="replace").strip().splitlines()[-1:]
        raise RuntimeError("the CDC stream did not start: " + (" ".join(tail) or "no output")
                           + f" (see {self.log_path})")

    def stop(self, timeout: float = 15.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()  # it takes its slot and publication down, then ends
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


def client(service: str, endpoint: str) -> Any:
    """A boto3 client of the local server: only ``endpoint_url`` differs from AWS."""
    import boto3  # only where CDC runs
    from botocore.config import Config

    factory: Any = boto3.client  # the stubs overload it per service name, a literal
    return factory(
        service, endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}),
    )


def prepare_moto() -> None:
    """Fix two bugs of moto's Kinesis and make its shard O(1) per record instead of O(records
    in the shard).

    The bug: a shard iterator asked for by ``StreamARN`` (no ``StreamName``) carries no stream
    name, and ``GetRecords`` with it fails ("Stream None ... not found"); on AWS it works, and a
    consumer given a stream ARN asks that way. The iterator now carries the stream's name.
    And an ``AT_TIMESTAMP`` iterator walked the shard's live dict, which the producer fills from
    another thread ("mutated during iteration").

    moto keeps a shard's records in an ordered dict keyed by consecutive sequence numbers, but
    finds the last one by listing every key (at each put) and reads from a sequence number by
    scanning from the first record (at each GetRecords): fine for a few test records, quadratic
    for the hundreds of thousands of records a table copy streams. The replacements return the
    same results (tests/local/test_cdc_records.py compares them with moto's own).
    """
    from moto.kinesis.models import KinesisBackend, Record, Shard
    from moto.kinesis.responses import KinesisResponse

    def get_max_sequence_number(self: Shard) -> int:
        return next(reversed(self.records)) if self.records else 0

    def get_min_sequence_number(self: Shard) -> int:
        return next(iter(self.records)) if self.records else 0

    def get_sequence_number_at(self: Shard, at_timestamp: datetime.datetime) -> int:
        # a copy taken at once (the producer adds records from another thread; moto's own
        # walked the live dict in a generator), then a binary search on the arrival times,
        # which only grow
        records = list(self.records.values())
        if not records or at_timestamp <= records[0].created_at:
            return 0
        index = bisect.bisect_left(records, at_timestamp, key=lambda r: r.created_at)
        return int(records[index - 1].sequence_number)

    def get_records(self: Shard, last_sequence_id: str,
                    limit: int | None) -> tuple[list[Record], int, int]:
        last = int(last_sequence_id)
        results: list[Record] = []
        if not self.records:
            return results, last, 0
        newest = self.records[next(reversed(self.records))]
        # sequence numbers are consecutive from the first kept one: start at the next one
        sequence = max(last + 1, next(iter(self.records)))
        while sequence in self.records and (limit is None or len(results) < limit):
            results.append(self.records[sequence])
            last = sequence
            sequence += 1
        behind = (newest.created_at - results[-1].created_at).total_seconds() \
            if results else 0.0
        return results, last, int(behind * 1000)

    moto_get_shard_iterator = KinesisBackend.get_shard_iterator

    def get_shard_iterator(self: KinesisBackend, stream_arn: str | None,
                           stream_name: str | None, *args: Any) -> str:
        if stream_name is None and stream_arn:
            stream_name = self.describe_stream(stream_arn=stream_arn,
                                               stream_name=None).stream_name
        return moto_get_shard_iterator(self, stream_arn, stream_name, *args)

    if not getattr(KinesisBackend.get_shard_iterator, "_dsql_migrate", False):
        get_shard_iterator._dsql_migrate = True  # type: ignore[attr-defined]
        KinesisBackend.get_shard_iterator = get_shard_iterator  # type: ignore[method-assign, assignment]
    Shard.get_max_sequence_number = get_max_sequence_number  # type: ignore[method-assign]
    Shard.get_min_sequence_number = get_min_sequence_number  # type: ignore[method-assign]
    Shard.get_sequence_number_at = get_sequence_number_at  # type: ignore[method-assign]
    Shard.get_records = get_records  # type: ignore[method-assign]
    KinesisResponse.get_records = _get_records_response  # type: ignore[assignment]


def _get_records_response(self: Any) -> tuple[str, dict[str, str]]:
    """GetRecords' answer written directly: moto's generic serialiser took about 0.2 ms per
    record, which made reading a stream of a large copy take minutes. The same JSON that
    Kinesis' protocol defines (Data in base64, the arrival time in epoch seconds)."""
    next_iterator, records, behind = self.kinesis_backend.get_records(
        self._get_param("StreamARN"), self._get_param("ShardIterator"),
        self._get_param("Limit"))
    body = {
        "NextShardIterator": next_iterator,
        "Records": [{
            "Data": base64.b64encode(record.data).decode("ascii"),
            "PartitionKey": record.partition_key,
            "SequenceNumber": str(record.sequence_number),
            "ApproximateArrivalTimestamp": _epoch(record.created_at),
        } for record in records],
        "MillisBehindLatest": behind,
    }
    return json.dumps(body), {"Content-Type": "application/x-amz-json-1.1"}


def _epoch(moment: datetime.datetime) -> float:
    if moment.tzinfo is None:  # moto's utcnow(): naive, in UTC
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return round(moment.timestamp(), 3)


def _superuser_url(state_dir: Path) -> tuple[str, CdcSettings]:
    settings = EmulatorSettings.load(state_dir)
    if settings.backend_port is None or settings.cdc is None:
        raise SystemExit("no backend or CDC settings recorded in " + str(state_dir))
    password = load_passwords(state_dir).get(SUPERUSER)
    return make_url(settings.backend_port, SUPERUSER, password=password), settings.cdc


def main(argv: list[str]) -> None:  # pragma: no cover - the child process (tested end to end)
    from moto.server import ThreadedMotoServer

    from .producer import CdcService

    state_dir, parent = Path(argv[0]), int(argv[1])
    conninfo, settings = _superuser_url(state_dir)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    prepare_moto()
    server = ThreadedMotoServer(ip_address=HOST, port=pick_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    service = CdcService(state_dir, settings, conninfo, f"http://{host}:{port}")
    try:
        service.start()
        # the emulator stops it with SIGTERM; killed, it leaves: then stop too
        while not stop.wait(0.5):
            if not process_alive(parent) or os.getppid() != parent:
                break
    finally:
        service.close()
        with contextlib.suppress(Exception):
            server.stop()


if __name__ == "__main__":  # pragma: no cover - the child process
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    main(sys.argv[1:])
