"""The DSQL-rules proxy: PostgreSQL wire protocol v3 in front of the embedded server.

Bytes are relayed as they come; only message headers are parsed. Bodies are looked at for
client ``Query`` and ``Parse`` messages (through :func:`.rules.rewrite`, which answers from a
keyword fast path for ordinary statements) and for server ``ReadyForQuery`` (transaction status),
``CommandComplete`` (what a transaction did) and ``ErrorResponse`` (PostgreSQL's serialization
failures re-worded as DSQL's OC000).

What the proxy decides itself, per connection: the transaction age limit, OC001 (a write
transaction committing after DDL committed by another connection through this proxy), injected
commit failures, and the connection age limit. It decides at ``COMMIT`` by sending
``ROLLBACK; SELECT sys.dsql_error(...)`` instead, so the client sees the commit fail and the
transaction end, as on DSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import struct
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from typing import Any

from ..profiles import Profile
from . import rules

log = logging.getLogger(__name__)

PROTOCOL_3 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
MAX_STARTUP = 10_000
MAX_MESSAGE = 1 << 30
STARTUP_TIMEOUT = 60.0

OC000 = "mutation conflicts with another transaction, retry as needed (OC000)"
OC001 = "schema has been updated by another transaction, please retry: (OC001)"

_WRITE_TAGS = (b"INSERT", b"UPDATE", b"DELETE", b"COPY", b"MERGE")
_DDL_TAGS = (b"CREATE", b"ALTER", b"DROP", b"GRANT", b"REVOKE", b"COMMENT")


@dataclass
class Faults:
    """Fault injection: what reliability tests turn on (settable at start and at run time)."""

    #: fraction (0..1) of write-transaction commits that fail with 40001 OC000
    commit_failure_rate: float = 0.0
    #: close connections older than this many seconds (DSQL: 3600)
    max_connection_age: float | None = None
    #: seed of the random choices, so a faulty run can be replayed
    seed: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Faults:
        data = data or {}
        return cls(
            commit_failure_rate=float(data.get("commit_failure_rate") or 0.0),
            max_connection_age=(float(data["max_connection_age"])
                                if data.get("max_connection_age") else None),
            seed=int(data["seed"]) if data.get("seed") is not None else None,
        )


@dataclass
class ProxySettings:
    profile: Profile
    backend_host: str
    backend_port: int
    faults: Faults = field(default_factory=Faults)
    #: the transaction age limit in seconds (DSQL: 300)
    transaction_age: float | None = None

    def __post_init__(self) -> None:
        if self.transaction_age is None:
            self.transaction_age = float(self.profile.limits.transaction_seconds)


def error_response(sqlstate: str, message: str, severity: str = "ERROR") -> bytes:
    fields = b"".join(
        code + value.encode() + b"\0"
        for code, value in ((b"S", severity), (b"V", severity), (b"C", sqlstate),
                            (b"M", message))
    ) + b"\0"
    return b"E" + struct.pack("!I", len(fields) + 4) + fields


def parse_error_fields(body: bytes) -> list[tuple[bytes, bytes]]:
    fields = []
    for part in body.split(b"\0"):
        if part:
            fields.append((part[:1], part[1:]))
    return fields


def build_error(fields: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(code + value + b"\0" for code, value in fields) + b"\0"
    return b"E" + struct.pack("!I", len(body) + 4) + body


class ProtocolViolation(Exception):
    pass


class Proxy:
    """The listening side: one :class:`Session` per client connection."""

    def __init__(self, settings: ProxySettings,
                 on_dropped_indexes: Callable[[tuple[str, ...]], None] | None = None) -> None:
        self.settings = settings
        self.ddl_epoch = 0  # bumped when a transaction that did DDL commits
        self.rng = random.Random(settings.faults.seed)
        self.on_dropped_indexes = on_dropped_indexes
        self.sessions: set[Session] = set()
        self._server: asyncio.AbstractServer | None = None

    def set_faults(self, faults: Faults) -> None:
        self.settings.faults = faults
        self.rng = random.Random(faults.seed)

    async def start(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Session(self), host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            session.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)


class _Backend(asyncio.Protocol):
    """The connection to PostgreSQL: hands everything to its :class:`Session`."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def data_received(self, data: bytes) -> None:
        try:
            self.session.from_server(data)
        except Exception:
            log.exception("bad server message stream")
            self.session.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.session.close()

    def pause_writing(self) -> None:
        if self.session.client is not None:
            self.session.client.pause_reading()

    def resume_writing(self) -> None:
        if self.session.client is not None and not self.session.client.is_closing():
            self.session.client.resume_reading()


class Session(asyncio.Protocol):
    """One client connection and its backend connection.

    Callback-based (asyncio protocols rather than streams): a message is relayed within the
    ``data_received`` call that brought it, which keeps the added latency small.
    """

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.settings = proxy.settings
        self.client: asyncio.Transport | None = None
        self.backend: asyncio.Transport | None = None
        self.state = "startup"
        self.in_buf = b""
        self.out_buf = b""
        self.created = time.monotonic()
        self.status = b"I"
        self.pending = 0  # Query/Sync messages sent and not yet answered by ReadyForQuery
        self.txn_start = 0.0
        self.txn_epoch = 0
        self.txn_wrote = False
        self.txn_ddl = False
        self.last_tag = b""
        self.last_send = 0.0
        self.hidden_rollbacks = 0
        self._timers: list[asyncio.TimerHandle] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- lifecycle ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.client = transport
        self.proxy.sessions.add(self)
        loop = asyncio.get_running_loop()
        self._timers.append(loop.call_later(STARTUP_TIMEOUT, self._startup_timeout))

    def connection_lost(self, exc: Exception | None) -> None:
        self.close()

    def pause_writing(self) -> None:
        if self.backend is not None:
            self.backend.pause_reading()

    def resume_writing(self) -> None:
        if self.backend is not None and not self.backend.is_closing():
            self.backend.resume_reading()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.proxy.sessions.discard(self)
        for timer in self._timers:
            timer.cancel()
        for transport in (self.client, self.backend):
            if transport is not None:
                transport.close()

    def _startup_timeout(self) -> None:
        if self.state != "relay":
            self.close()

    def _fail(self, sqlstate: str, message: str) -> None:
        if self.client is not None and not self.client.is_closing():
            self.client.write(error_response(sqlstate, message, "FATAL"))
        self.close()

    # -- startup ------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        try:
            if self.state == "relay":
                self.from_client(data)
            elif self.state == "startup":
                self.in_buf += data
                self._startup()
            elif self.state == "connecting":
                self.in_buf += data
        except ProtocolViolation as exc:
            self._fail("08P01", str(exc))
        except Exception:  # never let one connection take the proxy down
            log.exception("connection failed")
            self._fail("XX000", "internal error in the local DSQL emulator")

    def _startup(self) -> None:
        assert self.client is not None
        while len(self.in_buf) >= 4:
            length = int.from_bytes(self.in_buf[:4], "big")
            if length < 8 or length > MAX_STARTUP:
                raise ProtocolViolation(f"invalid startup packet length {length}")
            if len(self.in_buf) < length:
                return
            code = int.from_bytes(self.in_buf[4:8], "big")
            payload, self.in_buf = self.in_buf[8:length], self.in_buf[length:]
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                self.client.write(b"N")
                continue
            if code == CANCEL_REQUEST:
                self._spawn(self._forward_cancel(code, payload))
                self.state = "closed"
                return
            if code >> 16 != 3:
                raise ProtocolViolation(
                    f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}: "
                    "server supports 3.0")
            self.state = "connecting"
            self._spawn(self._connect(code, self._startup_body(payload)))
            return

    def _startup_body(self, payload: bytes) -> bytes:
        params = payload.split(b"\0")
        pairs = dict(zip(params[0::2], params[1::2], strict=False))
        if b"user" not in pairs:
            raise ProtocolViolation("no PostgreSQL user name specified in startup packet")
        limits = self.settings.profile.limits
        extra = {
            b"dsql.emulate": b"on",
            b"default_transaction_isolation": b"repeatable read",
            b"dsql.row_limit": str(limits.rows_per_transaction).encode(),
            b"dsql.byte_limit": str(limits.bytes_per_transaction).encode(),
            b"dsql.index_limit": str(limits.indexes_per_table).encode(),
        }
        body = b"".join(k + b"\0" + v + b"\0" for k, v in pairs.items() if k and k not in extra)
        return body + b"".join(k + b"\0" + v + b"\0" for k, v in extra.items()) + b"\0"

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, code: int, body: bytes) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_connection(
                lambda: _Backend(self), self.settings.backend_host, self.settings.backend_port)
        except OSError:
            self._fail("08006", "the local PostgreSQL server is not reachable")
            return
        if self._closed:
            transport.close()
            return
        self.backend = transport
        transport.write(struct.pack("!II", len(body) + 8, code) + body)
        self.state = "relay"
        age = self.settings.faults.max_connection_age
        if age:
            self._timers.append(loop.call_later(age, self._expire))
        if self.in_buf:
            data, self.in_buf = self.in_buf, b""
            self.data_received(data)

    async def _forward_cancel(self, code: int, payload: bytes) -> None:
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection(self.settings.backend_host,
                                                      self.settings.backend_port)
            writer.write(struct.pack("!II", len(payload) + 8, code) + payload)
            await writer.drain()
            writer.close()
        self.close()

    def _expire(self) -> None:
        log.info("closing a connection older than %s s", self.settings.faults.max_connection_age)
        if self.pending == 0 and self.client is not None:
            self.client.write(error_response(
                "08006", "connection closed: maximum connection age reached", "FATAL"))
        self.close()

    # -- client -> server ---------------------------------------------------------------

    def from_client(self, data: bytes) -> None:
        assert self.backend is not None
        buf = self.in_buf + data if self.in_buf else data
        out: list[bytes] = []
        pos = 0
        end = len(buf)
        plain = True  # nothing rewritten so far: forward a slice of buf
        while end - pos >= 5:
            kind = buf[pos]
            length = int.from_bytes(buf[pos + 1:pos + 5], "big")
            if length < 4 or length > MAX_MESSAGE:
                raise ProtocolViolation(f"invalid message length {length}")
            stop = pos + 1 + length
            if stop > end:
                break
            if kind == 0x51:  # Query
                self.pending += 1
                new = self._on_query(buf[pos + 5:stop - 1], None)
            elif kind == 0x50:  # Parse
                new = self._on_parse(buf[pos + 5:stop])
            else:
                new = None
                if kind == 0x53:  # Sync
                    self.pending += 1
            if new is not None:
                if plain:
                    out.append(buf[:pos])
                    plain = False
                out.append(new)
            elif not plain:
                out.append(buf[pos:stop])
            pos = stop
        self.in_buf = buf[pos:]
        if pos:
            self.last_send = time.monotonic()
            self.backend.write(buf[:pos] if plain else b"".join(out))

    def _txn_verdict(self, is_commit: bool) -> tuple[str, str] | None:
        """The error a statement in the current transaction must get instead, if any."""
        if self.status != b"T":
            return None
        limit = self.settings.transaction_age
        if limit and time.monotonic() - self.txn_start > limit:
            return ("54000", f"transaction age limit of {limit:g}s exceeded")
        if not is_commit or not self.txn_wrote:
            return None
        if self.txn_epoch != self.proxy.ddl_epoch:
            return ("40001", OC001)
        rate = self.settings.faults.commit_failure_rate
        if rate and self.proxy.rng.random() < rate:
            return ("40001", OC000)
        return None

    def _on_query(self, raw: bytes, message: None) -> bytes | None:
        sql = raw.decode("utf-8", "replace")
        if self.status == b"T":
            word = rules.normalized_txn_word(sql) if len(sql) < 40 else ""
            verdict = self._txn_verdict(word in ("commit", "end", "commit transaction",
                                                 "commit work"))
            if verdict is not None:
                self.hidden_rollbacks += 1
                return _query(f"ROLLBACK; SELECT sys.dsql_error('{verdict[0]}', "
                              f"'{verdict[1]}')")
        result = rules.rewrite(sql, self.settings.profile)
        self._dropped(result.dropped_indexes)
        if result.sql is None:
            return None
        return _query(result.sql)

    def _on_parse(self, body: bytes) -> bytes | None:
        name_end = body.index(b"\0")
        query_end = body.index(b"\0", name_end + 1)
        sql = body[name_end + 1:query_end].decode("utf-8", "replace")
        replacement: str | None = None
        if self.status == b"T":
            verdict = self._txn_verdict(False)
            if verdict is not None:
                replacement = f"SELECT sys.dsql_error('{verdict[0]}', '{verdict[1]}')"
        if replacement is None:
            result = rules.rewrite(sql, self.settings.profile)
            self._dropped(result.dropped_indexes)
            replacement = result.sql
        if replacement is None:
            return None
        new_body = body[:name_end + 1] + replacement.encode() + body[query_end:]
        return b"P" + struct.pack("!I", len(new_body) + 4) + new_body

    def _dropped(self, names: tuple[str, ...]) -> None:
        if names and self.proxy.on_dropped_indexes is not None:
            self.proxy.on_dropped_indexes(names)

    # -- server -> client ---------------------------------------------------------------

    def from_server(self, data: bytes) -> None:
        assert self.client is not None
        buf = self.out_buf + data if self.out_buf else data
        pos = 0
        end = len(buf)
        changed: list[bytes] | None = None
        start = 0
        while end - pos >= 5:
            kind = buf[pos]
            stop = pos + 1 + int.from_bytes(buf[pos + 1:pos + 5], "big")
            if stop > end:
                break
            if kind == 0x5A:  # ReadyForQuery
                self._on_ready(buf[pos + 5:pos + 6])
            else:
                new = None
                if kind == 0x43:  # CommandComplete
                    new = self._on_complete(buf[pos + 5:stop - 1])
                elif kind == 0x45:  # ErrorResponse
                    new = self._on_error(buf[pos + 5:stop])
                if new is not None:
                    if changed is None:
                        changed = []
                    changed.append(buf[start:pos])
                    changed.append(new)
                    start = stop
            pos = stop
        self.out_buf = buf[pos:]
        if changed is not None:
            changed.append(buf[start:pos])
            self.client.write(b"".join(changed))
        elif pos:
            self.client.write(buf[:pos] if pos < end else buf)

    def _on_ready(self, status: bytes) -> None:
        if self.pending:
            self.pending -= 1
        if status == b"I":
            if self.txn_ddl and self.last_tag != b"ROLLBACK":
                self.proxy.ddl_epoch += 1
            self.txn_ddl = self.txn_wrote = False
        elif self.status == b"I":
            self.txn_start = self.last_send
            self.txn_epoch = self.proxy.ddl_epoch
        self.status = status

    def _on_complete(self, tag: bytes) -> bytes | None:
        if self.hidden_rollbacks and tag == b"ROLLBACK":
            # the ROLLBACK the proxy put before a failing COMMIT: the client sees only the error
            self.hidden_rollbacks -= 1
            self.last_tag = tag
            return b""
        self.last_tag = tag
        if tag.startswith(_WRITE_TAGS):
            self.txn_wrote = True
        elif tag.startswith(_DDL_TAGS):
            self.txn_ddl = True
        return None

    def _on_error(self, body: bytes) -> bytes | None:
        fields = parse_error_fields(body)
        code = next((v for k, v in fields if k == b"C"), b"")
        if code in (b"40001", b"40P01"):
            message = next((v for k, v in fields if k == b"M"), b"")
            if b"(OC00" not in message:
                return build_error([
                    (k, b"40001" if k == b"C" else OC000.encode() if k == b"M" else v)
                    for k, v in fields if k not in (b"D", b"H", b"W", b"R", b"L", b"F")])
        where = next((v for k, v in fields if k == b"W"), b"")
        if b"sys.dsql_error" in where or b"sys._" in where:
            # the emulator's own functions are an implementation detail: no CONTEXT line
            return build_error([(k, v) for k, v in fields
                                if k not in (b"W", b"R", b"L", b"F", b"P", b"q")])
        return None


def _query(sql: str) -> bytes:
    body = sql.encode() + b"\0"
    return b"Q" + struct.pack("!I", len(body) + 4) + body
