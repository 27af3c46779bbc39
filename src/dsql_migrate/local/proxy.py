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
from collections.abc import Callable
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
        self._server = await asyncio.start_server(self._handle, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            session.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(self, reader, writer)
        self.sessions.add(session)
        try:
            await session.run()
        except Exception:  # never let one connection take the proxy down
            log.exception("connection failed")
        finally:
            session.close()
            self.sessions.discard(session)


class Session:
    """One client connection and its backend connection."""

    def __init__(self, proxy: Proxy, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.proxy = proxy
        self.settings = proxy.settings
        self.client_r = reader
        self.client_w = writer
        self.server_r: asyncio.StreamReader | None = None
        self.server_w: asyncio.StreamWriter | None = None
        self.created = time.monotonic()
        self.status = b"I"
        self.pending = 0  # Query/Sync messages sent and not yet answered by ReadyForQuery
        self.txn_start = 0.0
        self.txn_epoch = 0
        self.txn_wrote = False
        self.txn_ddl = False
        self.last_tag = b""
        self.last_send = 0.0
        self._age_timer: asyncio.TimerHandle | None = None
        self._closed = False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._age_timer is not None:
            self._age_timer.cancel()
        for w in (self.client_w, self.server_w):
            if w is not None:
                with contextlib.suppress(Exception):
                    w.close()

    # -- startup ------------------------------------------------------------------------

    async def _read_startup(self) -> tuple[int, bytes]:
        header = await self.client_r.readexactly(8)
        length, code = struct.unpack("!II", header)
        if length < 8 or length > MAX_STARTUP:
            raise ProtocolViolation(f"invalid startup packet length {length}")
        return code, await self.client_r.readexactly(length - 8)

    async def _fail(self, sqlstate: str, message: str) -> None:
        self.client_w.write(error_response(sqlstate, message, "FATAL"))
        with contextlib.suppress(Exception):
            await self.client_w.drain()

    async def run(self) -> None:
        try:
            started = await asyncio.wait_for(self._startup(), 60)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.TimeoutError):
            return
        except ProtocolViolation as exc:
            await self._fail("08P01", str(exc))
            return
        if not started:
            return
        age = self.settings.faults.max_connection_age
        if age:
            self._age_timer = asyncio.get_running_loop().call_later(age, self._expire)
        upstream = asyncio.ensure_future(self._client_to_server())
        downstream = asyncio.ensure_future(self._server_to_client())
        done, pending = await asyncio.wait({upstream, downstream},
                                           return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in done:
            failure = task.exception()
            if isinstance(failure, ProtocolViolation):
                await self._fail("08P01", str(failure))
            elif failure is not None and not isinstance(
                    failure, (ConnectionError, asyncio.IncompleteReadError)):
                log.error("connection error: %r", failure)

    async def _startup(self) -> bool:
        while True:
            code, payload = await self._read_startup()
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                self.client_w.write(b"N")
                await self.client_w.drain()
                continue
            if code == CANCEL_REQUEST:
                await self._forward_cancel(code, payload)
                return False
            if code >> 16 != 3:
                raise ProtocolViolation(
                    f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}: "
                    "server supports 3.0")
            break
        params = payload.split(b"\0")
        pairs = dict(zip(params[0::2], params[1::2], strict=False))
        if b"user" not in pairs:
            raise ProtocolViolation("no PostgreSQL user name specified in startup packet")
        extra = {
            b"dsql.emulate": b"on",
            b"default_transaction_isolation": b"repeatable read",
            b"dsql.row_limit": str(self.settings.profile.limits.rows_per_transaction).encode(),
            b"dsql.byte_limit": str(self.settings.profile.limits.bytes_per_transaction).encode(),
            b"dsql.index_limit": str(self.settings.profile.limits.indexes_per_table).encode(),
        }
        body = b"".join(k + b"\0" + v + b"\0" for k, v in pairs.items() if k and k not in extra)
        body += b"".join(k + b"\0" + v + b"\0" for k, v in extra.items()) + b"\0"
        try:
            self.server_r, self.server_w = await asyncio.open_connection(
                self.settings.backend_host, self.settings.backend_port)
        except OSError:
            raise ProtocolViolation("the local PostgreSQL server is not reachable") from None
        self.server_w.write(struct.pack("!II", len(body) + 8, code) + body)
        return True

    async def _forward_cancel(self, code: int, payload: bytes) -> None:
        with contextlib.suppress(OSError):
            _, w = await asyncio.open_connection(self.settings.backend_host,
                                                 self.settings.backend_port)
            w.write(struct.pack("!II", len(payload) + 8, code) + payload)
            await w.drain()
            w.close()

    def _expire(self) -> None:
        log.info("closing a connection older than %s s", self.settings.faults.max_connection_age)
        if self.pending == 0:
            self.client_w.write(error_response(
                "08006", "connection closed: maximum connection age reached", "FATAL"))
        self.close()

    # -- client -> server ---------------------------------------------------------------

    async def _client_to_server(self) -> None:
        assert self.server_w is not None
        buf = b""
        reader = self.client_r
        server_w = self.server_w
        while True:
            data = await reader.read(65536)
            if not data:
                return
            buf += data
            out: list[bytes] = []
            pos = 0
            end = len(buf)
            while end - pos >= 5:
                kind = buf[pos:pos + 1]
                length = int.from_bytes(buf[pos + 1:pos + 5], "big")
                if length < 4 or length > MAX_MESSAGE:
                    raise ProtocolViolation(f"invalid message length {length}")
                stop = pos + 1 + length
                if stop > end:
                    break
                if kind == b"Q":
                    self.pending += 1
                    out.append(self._on_query(buf[pos + 5:stop - 1], buf[pos:stop]))
                elif kind == b"P":
                    out.append(self._on_parse(buf[pos + 5:stop], buf[pos:stop]))
                elif kind == b"S":
                    self.pending += 1
                    out.append(buf[pos:stop])
                elif kind == b"X":
                    out.append(buf[pos:stop])
                    server_w.write(b"".join(out))
                    return
                else:
                    out.append(buf[pos:stop])
                pos = stop
            buf = buf[pos:]
            if out:
                self.last_send = time.monotonic()
                server_w.write(out[0] if len(out) == 1 else b"".join(out))
                await server_w.drain()

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

    def _on_query(self, raw: bytes, message: bytes) -> bytes:
        sql = raw.decode("utf-8", "replace")
        if self.status == b"T":
            word = rules.normalized_txn_word(sql) if len(sql) < 40 else ""
            verdict = self._txn_verdict(word in ("commit", "end", "commit transaction",
                                                 "commit work"))
            if verdict is not None:
                return _query(f"ROLLBACK; SELECT sys.dsql_error('{verdict[0]}', "
                              f"'{verdict[1]}')")
        result = rules.rewrite(sql, self.settings.profile)
        self._dropped(result.dropped_indexes)
        if result.sql is None:
            return message
        return _query(result.sql)

    def _on_parse(self, body: bytes, message: bytes) -> bytes:
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
            return message
        new_body = body[:name_end + 1] + replacement.encode() + body[query_end:]
        return b"P" + struct.pack("!I", len(new_body) + 4) + new_body

    def _dropped(self, names: tuple[str, ...]) -> None:
        if names and self.proxy.on_dropped_indexes is not None:
            self.proxy.on_dropped_indexes(names)

    # -- server -> client ---------------------------------------------------------------

    async def _server_to_client(self) -> None:
        assert self.server_r is not None
        reader = self.server_r
        client_w = self.client_w
        buf = b""
        while True:
            data = await reader.read(65536)
            if not data:
                return
            buf += data
            pos = 0
            end = len(buf)
            changed: list[bytes] | None = None
            start = 0
            while end - pos >= 5:
                kind = buf[pos:pos + 1]
                length = int.from_bytes(buf[pos + 1:pos + 5], "big")
                stop = pos + 1 + length
                if stop > end:
                    break
                if kind == b"Z":
                    self._on_ready(buf[pos + 5:pos + 6])
                elif kind == b"C":
                    self._on_complete(buf[pos + 5:stop - 1])
                elif kind == b"E":
                    new = self._on_error(buf[pos + 5:stop])
                    if new is not None:
                        if changed is None:
                            changed = []
                        changed.append(buf[start:pos])
                        changed.append(new)
                        start = stop
                pos = stop
            if changed is not None:
                changed.append(buf[start:pos])
                client_w.write(b"".join(changed))
            else:
                client_w.write(buf[:pos] if pos < end else buf)
            buf = buf[pos:]
            await client_w.drain()

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

    def _on_complete(self, tag: bytes) -> None:
        self.last_tag = tag
        if tag.startswith(_WRITE_TAGS):
            self.txn_wrote = True
        elif tag.startswith(_DDL_TAGS):
            self.txn_ddl = True

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
