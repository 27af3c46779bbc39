"""``local start --cdc``: the emulator streams every committed row change, as DSQL's CDC, to a
local Kinesis that boto3 reads with only the endpoint changed. A real emulator (its own, started
with CDC for this module and removed at its end)."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from _support import PrivateTarget
from dsql_migrate.cli import main
from dsql_migrate.local import LocalInstance
from dsql_migrate.local.postgres import process_alive
from dsql_migrate.local.settings import CdcSettings

pytestmark = pytest.mark.integration

Record = dict[str, Any]


@pytest.fixture(scope="module")
def cdc_target(private_target: PrivateTarget) -> Iterator[LocalInstance]:
    with private_target("cdc", cdc=CdcSettings(enabled=True, seed=1)) as instance:
        yield instance


def _client(service: str, info: dict[str, Any]) -> Any:
    import boto3

    factory: Any = boto3.client
    return factory(service, endpoint_url=info["cdc_kinesis_endpoint"],
                   region_name=info["cdc_region"],
                   aws_access_key_id=info["cdc_access_key_id"],
                   aws_secret_access_key=info["cdc_secret_access_key"])


class StreamReader:
    """Reads every shard of the stream, as a consumer must, from where it was made."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.kinesis = _client("kinesis", info)
        self.name = info["cdc_stream_name"]
        shards = self.kinesis.list_shards(StreamName=self.name)["Shards"]
        self.iterators = {
            shard["ShardId"]: self.kinesis.get_shard_iterator(
                StreamName=self.name, ShardId=shard["ShardId"],
                ShardIteratorType="LATEST")["ShardIterator"]
            for shard in shards}
        #: (shard, record) in the order read
        self.read: list[tuple[str, Record]] = []

    def poll(self) -> None:
        for shard, iterator in list(self.iterators.items()):
            answer = self.kinesis.get_records(ShardIterator=iterator, Limit=10000)
            self.iterators[shard] = answer["NextShardIterator"]
            self.read.extend((shard, json.loads(r["Data"])) for r in answer["Records"])

    def of(self, table: str) -> list[Record]:
        return [r for _shard, r in self.read if r["source"]["table"] == table]

    def until(self, done: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            if done():
                return
            time.sleep(0.05)
        raise AssertionError(f"not all records arrived within {timeout} s: {self.read!r}")

    def quiet(self, seconds: float = 1.5) -> None:
        """Read until nothing more came for ``seconds``."""
        last, since = len(self.read), time.monotonic()
        while time.monotonic() - since < seconds:
            time.sleep(0.1)
            self.poll()
            if len(self.read) != last:
                last, since = len(self.read), time.monotonic()


def _table(conn: psycopg.Connection[Any], columns: str) -> str:
    name = f"cdc_{uuid.uuid4().hex[:10]}"
    conn.execute(f"CREATE TABLE {name} ({columns})")
    return name


@pytest.fixture
def conn(cdc_target: LocalInstance) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(cdc_target.url(), autocommit=True) as connection:
        yield connection


def test_insert_update_delete_arrive_in_dsqls_envelope(cdc_target: LocalInstance,
                                                       conn: psycopg.Connection[Any]) -> None:
    info = cdc_target.cdc_info()
    table = _table(conn, "order_id int, item_id int, quantity int, price numeric, "
                         "note text, PRIMARY KEY (order_id, item_id)")
    reader = StreamReader(info)
    committed = time.monotonic()
    conn.execute(f"INSERT INTO {table} VALUES (1001, 42, 5, 29.99, NULL)")
    reader.until(lambda: len(reader.of(table)) == 1)
    latency = time.monotonic() - committed
    conn.execute(f"UPDATE {table} SET quantity = 10 WHERE order_id = 1001")
    conn.execute(f"DELETE FROM {table} WHERE order_id = 1001")
    reader.until(lambda: len(reader.of(table)) == 3)
    records = sorted(reader.of(table), key=lambda r: r["source"]["ts_ns"])
    assert [(r["op"], r["before"], r["after"]) for r in records] == [
        ("c", None, {"order_id": 1001, "item_id": 42, "quantity": 5, "price": "29.99"}),
        ("u", None, {"order_id": 1001, "item_id": 42, "quantity": 10, "price": "29.99"}),
        ("d", {"order_id": 1001, "item_id": 42}, None),
    ]
    for record in records:
        assert record["type"] == "full"
        source = record["source"]
        assert (source["version"], source["schema"], source["table"], source["db"],
                source["cluster"]) == ("1.0", "public", table, "postgres",
                                       info["cdc_cluster_id"])
        assert source["ts_ms"] == source["ts_ns"] // 1_000_000
        assert abs(source["ts_ns"] - time.time_ns()) < 60 * 10**9
        assert record["ts_ns"] >= source["ts_ns"]
    assert len({r["source"]["txId"] for r in records}) == 3
    # the runner's cut-over waits on the stream: a change is there well within a second
    assert latency < 1.0, f"commit to record took {latency:.2f} s"


def test_a_transactions_write_set_is_compacted(cdc_target: LocalInstance,
                                               conn: psycopg.Connection[Any]) -> None:
    table = _table(conn, "id int PRIMARY KEY, v text")
    reader = StreamReader(cdc_target.cdc_info())
    conn.execute(f"INSERT INTO {table} VALUES (1, 'kept'), (2, 'gone')")
    reader.until(lambda: len(reader.of(table)) == 2)
    before = {r["source"]["txId"] for r in reader.of(table)}
    with conn.transaction():
        conn.execute(f"INSERT INTO {table} VALUES (3, 'new')")
        conn.execute(f"UPDATE {table} SET v = 'newer' WHERE id = 3")
        conn.execute(f"INSERT INTO {table} VALUES (4, 'fleeting')")
        conn.execute(f"DELETE FROM {table} WHERE id = 4")
        conn.execute(f"UPDATE {table} SET v = 'once' WHERE id = 1")
        conn.execute(f"UPDATE {table} SET v = 'twice' WHERE id = 1")
        conn.execute(f"UPDATE {table} SET v = 'doomed' WHERE id = 2")
        conn.execute(f"DELETE FROM {table} WHERE id = 2")
    reader.until(lambda: len(reader.of(table)) >= 5)
    reader.quiet(0.5)
    got = sorted(((r["op"], r["before"], r["after"]) for r in reader.of(table)
                  if r["source"]["txId"] not in before), key=str)
    assert got == sorted([
        ("c", None, {"id": 3, "v": "newer"}),
        ("u", None, {"id": 1, "v": "twice"}),
        ("d", {"id": 2}, None),
    ], key=str)


def test_records_land_on_every_shard(cdc_target: LocalInstance,
                                     conn: psycopg.Connection[Any]) -> None:
    info = cdc_target.cdc_info()
    table = _table(conn, "id int PRIMARY KEY")
    reader = StreamReader(info)
    conn.execute(f"INSERT INTO {table} SELECT generate_series(1, 400)")
    reader.until(lambda: len(reader.of(table)) == 400)
    shards = {shard for shard, r in reader.read if r["source"]["table"] == table}
    assert len(shards) == info["cdc_shards"] == 4
    assert {r["after"]["id"] for r in reader.of(table)} == set(range(1, 401))


def test_tables_made_later_and_without_a_primary_key_are_streamed(
        cdc_target: LocalInstance, conn: psycopg.Connection[Any]) -> None:
    # a published table needs a replica identity for UPDATE and DELETE: the emulator gives
    # every new table one, so these statements work as on DSQL
    table = _table(conn, "a int, b text")
    reader = StreamReader(cdc_target.cdc_info())
    conn.execute(f"INSERT INTO {table} VALUES (1, 'x')")
    conn.execute(f"UPDATE {table} SET b = 'y'")
    conn.execute(f"DELETE FROM {table}")
    reader.until(lambda: any(r["op"] == "d" and r["before"] == {"a": 1, "b": "y"}
                             for r in reader.of(table)))
    # and it is not one more DDL statement of the user's transaction (DSQL allows one)
    with conn.transaction():
        conn.execute(f"CREATE TABLE {table}_2 (id int PRIMARY KEY)")
    conn.execute(f"INSERT INTO {table}_2 VALUES (7)")
    reader.until(lambda: len(reader.of(f"{table}_2")) == 1)


def test_the_emulators_own_tables_are_not_streamed(cdc_target: LocalInstance,
                                                   conn: psycopg.Connection[Any]) -> None:
    table = _table(conn, "id int PRIMARY KEY, v int")
    reader = StreamReader(cdc_target.cdc_info())
    # an asynchronous index is a job in the emulator's sys._jobs
    job = conn.execute(f"CREATE INDEX ASYNC ON {table} (v)").fetchone()
    assert job is not None
    conn.execute("CALL sys.wait_for_job(%s)", (job[0],))
    conn.execute(f"INSERT INTO {table} VALUES (1, 1)")
    reader.until(lambda: len(reader.of(table)) == 1)
    reader.quiet(0.5)
    assert {r["source"]["schema"] for _shard, r in reader.read} == {"public"}


def test_the_dsql_control_plane_says_the_stream_is_active(cdc_target: LocalInstance) -> None:
    info = cdc_target.cdc_info()
    dsql = _client("dsql", {**info, "cdc_kinesis_endpoint": info["cdc_dsql_endpoint"]})
    stream = dsql.get_stream(clusterIdentifier=info["cdc_cluster_id"],
                             streamIdentifier=info["cdc_dsql_stream_id"])
    assert stream["status"] == "ACTIVE"
    assert stream["arn"] == info["cdc_dsql_stream_arn"]
    assert stream["targetDefinition"]["kinesis"]["streamArn"] == info["cdc_stream_arn"]
    kinesis = _client("kinesis", info)
    summary = kinesis.describe_stream_summary(StreamARN=info["cdc_stream_arn"])
    assert summary["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"


def test_status_gives_the_discovery_keys(cdc_target: LocalInstance) -> None:
    result = CliRunner().invoke(main, ["local", "status", "--format", "json",
                                       "--dir", str(cdc_target.directory)])
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert status["cdc"] is True
    for key in ("cdc_kinesis_endpoint", "cdc_stream_arn", "cdc_region", "cdc_access_key_id",
                "cdc_secret_access_key", "cdc_cluster_id", "cdc_dsql_stream_arn"):
        assert status[key] == cdc_target.cdc_info()[key]
    text = CliRunner().invoke(main, ["local", "status", "--dir", str(cdc_target.directory)])
    assert f"CDC: Kinesis {status['cdc_kinesis_endpoint']}" in text.output


def _apply(records: list[Record]) -> dict[int, Record]:
    """A consumer's view: per primary key, the record with the last source.ts_ns wins."""
    last: dict[int, Record] = {}
    for record in records:
        key = (record["after"] or record["before"])["id"]
        if key not in last or record["source"]["ts_ns"] >= last[key]["source"]["ts_ns"]:
            last[key] = record
    return {key: r["after"] for key, r in last.items() if r["op"] != "d"}


def test_with_chaos_the_last_states_still_equal_the_table(cdc_target: LocalInstance) -> None:
    cdc_target.stop()
    chaotic = LocalInstance(cdc_target.directory, cdc=CdcSettings(
        enabled=True, seed=11, **CdcSettings.CHAOS))  # type: ignore[arg-type]
    chaotic.start()
    info = chaotic.cdc_info()
    assert info["cdc_chaos"] is True
    rng = random.Random(5)
    with psycopg.connect(chaotic.url(), autocommit=True) as conn:
        table = _table(conn, "id int PRIMARY KEY, v int")
        reader = StreamReader(info)
        for n in range(300):
            key = rng.randrange(40)
            action = rng.choice(["upsert", "upsert", "delete"])
            if action == "upsert":
                conn.execute(f"INSERT INTO {table} VALUES (%s, %s) ON CONFLICT (id) "
                             "DO UPDATE SET v = excluded.v", (key, n))
            else:
                conn.execute(f"DELETE FROM {table} WHERE id = %s", (key,))
        reader.until(lambda: len(reader.of(table)) >= 250)
        reader.quiet(1.5)
        expected = {row[0]: {"id": row[0], "v": row[1]}
                    for row in conn.execute(f"SELECT id, v FROM {table}").fetchall()}
    records = reader.of(table)
    assert _apply(records) == expected
    ids = [(r["source"]["txId"], r["op"]) for r in records]
    assert len(ids) > len(set(ids)), "chaos sent no duplicate"
    stamps = [r["source"]["ts_ns"] for shard, r in reader.read if shard == reader.read[0][0]
              and r["source"]["table"] == table]
    assert stamps != sorted(stamps), "chaos reordered nothing within a shard"


def _accepts(endpoint: str) -> bool:
    host, port = endpoint.removeprefix("http://").split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


def test_stop_stops_the_local_kinesis_and_a_start_without_cdc_cleans_up(
        cdc_target: LocalInstance) -> None:
    instance = LocalInstance(cdc_target.directory)
    instance.start()
    info = instance.cdc_info()
    assert _accepts(info["cdc_kinesis_endpoint"])
    result = CliRunner().invoke(main, ["local", "stop", "--dir", str(instance.directory)])
    assert result.exit_code == 0, result.output
    assert not _accepts(info["cdc_kinesis_endpoint"])
    assert not (instance.state_dir / "emulator.cdc.json").exists()
    plain = LocalInstance(cdc_target.directory, cdc=CdcSettings())
    plain.start()
    assert plain.status().cdc is None
    with pytest.raises(Exception, match="runs without CDC"):
        plain.cdc_info()
    with psycopg.connect(plain.superuser_url(), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_publication").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone() == (0,)
    plain.stop()


def test_a_killed_emulator_takes_the_local_kinesis_with_it(cdc_target: LocalInstance) -> None:
    instance = LocalInstance(cdc_target.directory, cdc=CdcSettings(enabled=True))
    instance.start()
    info = instance.cdc_info()
    pid = instance.status().emulator_pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _accepts(info["cdc_kinesis_endpoint"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _accepts(info["cdc_kinesis_endpoint"])
    assert not process_alive(pid)
    # the next start makes a fresh stream, and the changes flow again
    instance.start()
    reader = StreamReader(instance.cdc_info())
    with psycopg.connect(instance.url(), autocommit=True) as conn:
        table = _table(conn, "id int PRIMARY KEY")
        conn.execute(f"INSERT INTO {table} VALUES (1)")
    reader.until(lambda: len(reader.of(table)) == 1)


def test_cdc_needs_a_restart_to_change(cdc_target: LocalInstance) -> None:
    instance = LocalInstance(cdc_target.directory, cdc=CdcSettings(enabled=True))
    instance.start()
    with pytest.raises(Exception, match="other CDC settings"):
        LocalInstance(cdc_target.directory, cdc=CdcSettings()).start()
