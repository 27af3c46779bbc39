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

import contextlib
import logging
import random
import re
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..profiles import Profile
from . import rules
from .iam import IamCredentials, verify_token
from .settings import Faults as Faults  # noqa: PLC0414 (re-exported: the name callers know)

log = logging.getLogger(__name__)

PROTOCOL_3 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
MAX_STARTUP = 10_000
MAX_MESSAGE = 1 << 30
STARTUP_TIMEOUT = 60.0
REWRITE_CACHE_SIZE = 4096

OC000 = "mutation conflicts with another transaction, retry as needed (OC000)"
OC001 = "schema has been updated by another transaction, please retry: (OC001)"

_COMMIT_WORDS = frozenset({"commit", "end", "commit transaction", "commit work"})
_WRITE_TAGS = (b"INSERT", b"UPDATE", b"DELETE", b"COPY", b"MERGE")
_DDL_TAGS = (b"CREATE", b"ALTER", b"DROP", b"GRANT", b"REVOKE", b"COMMENT")


@dataclass
class ProxySettings:
    profile: Profile
    backend_host: str
    backend_port: int
    #: the server's Unix-domain socket, in the instance's private directory: the server lets
    #: the emulator's OS user in there as any role but the superuser (``peer``), so clients
    #: need no password for it; without it (None), TCP, where every role needs a password
    backend_socket: str | None = None
    faults: Faults = field(default_factory=Faults)
    #: the transaction age limit in seconds (DSQL: 300)
    transaction_age: float | None = None
    #: serve TLS (``local start --iam``): SSLRequest and direct TLS are both accepted
    tls: ssl.SSLContext | None = None
    #: require an IAM auth token as password, checked against these credentials
    iam: IamCredentials | None = None
    #: roles refused before anything reaches the server: the server's bootstrap superuser,
    #: which DSQL does not have
    refused_roles: frozenset[str] = frozenset()

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
    """The listening side: one :class:`Session` (two threads) per client connection.

    Blocking sockets and a thread per direction rather than an asyncio loop: a relayed message
    costs one ``recv`` and one ``sendall`` in the thread that was waiting for it, which measured
    about a third less added latency than asyncio's callbacks (see benchmarks/).
    """

    def __init__(self, settings: ProxySettings,
                 on_dropped_indexes: Callable[[tuple[rules.IndexName, ...]], None] | None = None,
                 ) -> None:
        self.settings = settings
        self.ddl_epoch = 0  # bumped when a transaction that did DDL commits
        self.rng = random.Random(settings.faults.seed)
        self.on_dropped_indexes = on_dropped_indexes
        self.sessions: set[Session] = set()
        self.lock = threading.Lock()
        self._rewrites: dict[bytes, rules.Rewrite] = {}
        self._listener: socket.socket | None = None
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []

    def set_faults(self, faults: Faults) -> None:
        self.settings.faults = faults
        self.rng = random.Random(faults.seed)

    def rewrite(self, raw: bytes) -> rules.Rewrite:
        """:func:`.rules.rewrite` of a statement text, remembered (clients repeat statements)."""
        result = self._rewrites.get(raw)
        if result is None:
            result = rules.rewrite(raw.decode("utf-8", "replace"), self.settings.profile)
            if len(self._rewrites) >= REWRITE_CACHE_SIZE:
                self._rewrites.clear()
            self._rewrites[raw] = result
        return result

    def bump_epoch(self) -> None:
        with self.lock:
            self.ddl_epoch += 1

    def start(self, host: str, port: int) -> int:
        """Listen and serve in background threads; returns the port."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(128)
        listener.settimeout(0.25)
        self._listener = listener
        for target in (self._accept_loop, self._reaper_loop):
            thread = threading.Thread(target=target, daemon=True, name=target.__name__)
            thread.start()
            self._threads.append(thread)
        return int(listener.getsockname()[1])

    def close(self) -> None:
        self._stopped.set()
        for thread in self._threads:
            thread.join(2)
        if self._listener is not None:
            self._listener.close()
        for session in list(self.sessions):
            session.close()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopped.is_set():
                    return
                log.exception("accept failed")
                time.sleep(0.1)
                continue
            session = Session(self, client)
            with self.lock:
                self.sessions.add(session)
            threading.Thread(target=session.run, daemon=True, name="session").start()

    def _reaper_loop(self) -> None:
        """Close connections older than the maximum connection age, if one is set."""
        while not self._stopped.wait(0.1):
            age = self.settings.faults.max_connection_age
            if not age:
                continue
            now = time.monotonic()
            with self.lock:
                old = [s for s in self.sessions if now - s.created > age]
            for session in old:
                session.expire()


class Session:
    """One client connection and its backend connection."""

    def __init__(self, proxy: Proxy, client: socket.socket) -> None:
        self.proxy = proxy
        self.settings = proxy.settings
        self.client = client
        self.backend: socket.socket | None = None
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
        #: prepared statements (by name) that drop indexes: their builds are cancelled at
        #: every Bind, since a prepared DROP INDEX can run many times with one Parse
        self.dropping_statements: dict[bytes, tuple[rules.IndexName, ...]] = {}
        self.up_skip = 0  # bytes of a client message still to forward as they come
        self.down_skip = 0  # the same for a server message
        self._client_lock = threading.Lock()  # both threads may write to the client
        self._closed = False

    # -- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self.proxy.lock:
            self.proxy.sessions.discard(self)
        for sock in (self.client, self.backend):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()

    def _to_client(self, data: bytes) -> None:
        with self._client_lock:
            self.client.sendall(data)

    def _fail(self, sqlstate: str, message: str) -> None:
        with contextlib.suppress(OSError):
            self._to_client(error_response(sqlstate, message, "FATAL"))
        self.close()

    def expire(self) -> None:
        log.info("closing a connection older than %s s", self.settings.faults.max_connection_age)
        if self.pending == 0 and not self._closed:
            with contextlib.suppress(OSError):
                self._to_client(error_response(
                    "08006", "connection closed: maximum connection age reached", "FATAL"))
        self.close()

    def run(self) -> None:
        try:
            self.client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.client.settimeout(STARTUP_TIMEOUT)
            if not self._startup():
                return
            self.client.settimeout(None)
            assert self.backend is not None
            if self.is_tls:
                self._pump_both()  # one thread: an SSL object must not be shared by two
                return
            down = threading.Thread(target=self._pump_down, daemon=True, name="session-down")
            down.start()
            self._pump_up()
        except ProtocolViolation as exc:
            self._fail("08P01", str(exc))
        except (OSError, ConnectionError):
            pass
        except Exception:  # never let one connection take the proxy down
            log.exception("connection failed")
            self._fail("XX000", "internal error in the local DSQL emulator")
        finally:
            self.close()

    def _pump_up(self) -> None:
        recv = self.client.recv
        while True:
            data = recv(65536)
            if not data:
                return
            self.from_client(data)

    def _pump_both(self) -> None:
        client, backend = self.client, self.backend
        assert isinstance(client, ssl.SSLSocket) and backend is not None
        while True:
            # decrypted bytes may wait inside the SSL object, invisible to select()
            ready = [client] if client.pending() else select.select([client, backend], [], [])[0]
            for sock in ready:
                try:
                    data = sock.recv(65536)
                except ssl.SSLWantReadError:
                    continue
                if not data:
                    return
                if sock is client:
                    self.from_client(data)
                else:
                    self.from_server(data)

    def _pump_down(self) -> None:
        assert self.backend is not None
        recv = self.backend.recv
        try:
            while True:
                data = recv(65536)
                if not data:
                    return
                self.from_server(data)
        except OSError:
            pass
        except Exception:
            log.exception("bad server message stream")
        finally:
            self.close()

    # -- startup ------------------------------------------------------------------------

    def _recv_exact(self, count: int) -> bytes:
        while len(self.in_buf) < count:
            data = self.client.recv(65536)
            if not data:
                raise ConnectionError("client went away")
            self.in_buf += data
        chunk, self.in_buf = self.in_buf[:count], self.in_buf[count:]
        return chunk

    def _startup(self) -> bool:
        tls = self.settings.tls
        if tls is not None and self.client.recv(1, socket.MSG_PEEK) == b"\x16":
            self._wrap_tls(tls)  # direct TLS (libpq's sslnegotiation=direct): a ClientHello
        while True:
            length = int.from_bytes(self._recv_exact(4), "big")
            if length < 8 or length > MAX_STARTUP:
                raise ProtocolViolation(f"invalid startup packet length {length}")
            code = int.from_bytes(self._recv_exact(4), "big")
            payload = self._recv_exact(length - 8)
            if code == SSL_REQUEST and tls is not None and not self.is_tls:
                self._to_client(b"S")
                self._wrap_tls(tls)
                continue
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                self._to_client(b"N")
                continue
            if code == CANCEL_REQUEST:
                with contextlib.suppress(OSError), self._connect_backend() as backend:
                    backend.sendall(struct.pack("!II", length, code) + payload)
                return False
            if code >> 16 != 3:
                raise ProtocolViolation(
                    f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}: "
                    "server supports 3.0")
            body, user = self._startup_body(payload)
            if user in self.settings.refused_roles:
                self._fail("28000", f'role "{user}" is not permitted to log in to the local '
                           "DSQL target (the local server's bootstrap superuser; connect as "
                           "admin)")
                return False
            if self.settings.iam is not None and not self._authenticate(user):
                return False
            try:
                self.backend = self._connect_backend()
            except OSError:
                self._fail("08006", "the local PostgreSQL server is not reachable")
                return False
            self.backend.sendall(struct.pack("!II", len(body) + 8, code) + body)
            if self.in_buf:
                data, self.in_buf = self.in_buf, b""
                self.from_client(data)
            return True

    @property
    def is_tls(self) -> bool:
        return isinstance(self.client, ssl.SSLSocket)

    def _wrap_tls(self, context: ssl.SSLContext) -> None:
        if self.in_buf:
            raise ProtocolViolation("unexpected data before the TLS handshake")
        try:
            self.client = context.wrap_socket(self.client, server_side=True)
        except ssl.SSLError as exc:
            raise ConnectionError(f"TLS handshake failed: {exc.reason}") from None

    def _authenticate(self, user: str) -> bool:
        """DSQL's IAM authentication: the password is a token, checked here (never logged)."""
        iam = self.settings.iam
        assert iam is not None
        if not self.is_tls:
            self._fail("28000", "unable to accept connection, SSL is required")
            return False
        self._to_client(b"R" + struct.pack("!II", 8, 3))  # AuthenticationCleartextPassword
        kind = self._recv_exact(1)
        length = int.from_bytes(self._recv_exact(4), "big")
        if kind != b"p" or not 4 < length <= MAX_STARTUP:
            raise ProtocolViolation("expected a password message")
        token = self._recv_exact(length - 4).rstrip(b"\0").decode("utf-8", "replace")
        problem = verify_token(token, user=user, credentials=iam)
        if problem is None:
            return True
        log.info("refused an IAM token for role %r: %s", user, problem)
        self._fail("28P01", f'IAM authentication failed for user "{user}"')
        return False

    def _connect_backend(self) -> socket.socket:
        path = self.settings.backend_socket
        if path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(path)
            except OSError:
                sock.close()
                raise
            return sock
        sock = socket.create_connection((self.settings.backend_host, self.settings.backend_port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _startup_body(self, payload: bytes) -> tuple[bytes, str]:
        params = payload.split(b"\0")
        pairs = dict(zip(params[0::2], params[1::2], strict=False))
        if b"user" not in pairs:
            raise ProtocolViolation("no PostgreSQL user name specified in startup packet")
        user = pairs[b"user"].decode("utf-8", "replace")
        limits = self.settings.profile.limits
        extra = {
            b"dsql.emulate": b"on",
            b"default_transaction_isolation": b"repeatable read",
            b"dsql.row_limit": str(limits.rows_per_transaction).encode(),
            b"dsql.byte_limit": str(limits.bytes_per_transaction).encode(),
            b"dsql.index_limit": str(limits.indexes_per_table).encode(),
            b"dsql.schema_limit": str(limits.schemas).encode(),
            b"dsql.table_limit": str(limits.tables_per_database).encode(),
        }
        body = b"".join(k + b"\0" + v + b"\0" for k, v in pairs.items() if k and k not in extra)
        return body + b"".join(k + b"\0" + v + b"\0" for k, v in extra.items()) + b"\0", user

    # -- client -> server ---------------------------------------------------------------

    def from_client(self, data: bytes) -> None:
        assert self.backend is not None
        if self.up_skip:  # the rest of a long message that needs no inspection
            head, data = data[:self.up_skip], data[self.up_skip:]
            self.up_skip -= len(head)
            self.backend.sendall(head)
            if not data:
                return
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
                if kind == 0x42 and self.dropping_statements:  # Bind: the names come first
                    self._on_bind(buf[pos + 5:end])
                if kind not in (0x51, 0x50, 0x53):  # stream it rather than buffer it
                    if not plain:
                        out.append(buf[pos:end])
                    self.up_skip = stop - end
                    pos = end
                break
            if kind == 0x51:  # Query
                self.pending += 1
                new = self._on_query(buf[pos + 5:stop - 1])
            elif kind == 0x50:  # Parse
                new = self._on_parse(buf[pos + 5:stop])
            elif kind == 0x42 and self.dropping_statements:  # Bind
                self._on_bind(buf[pos + 5:stop])
                new = None
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
            self.backend.sendall(buf[:pos] if plain else b"".join(out))

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

    def _on_query(self, raw: bytes) -> bytes | None:
        if self.status == b"T":
            word = rules.normalized_txn_word(raw.decode("utf-8", "replace")) \
                if len(raw) < 40 else ""
            verdict = self._txn_verdict(word in _COMMIT_WORDS)
            if verdict is not None:
                self.hidden_rollbacks += 1
                return _query(f"ROLLBACK; SELECT sys.dsql_error('{verdict[0]}', "
                              f"'{verdict[1]}')")
        result = self.proxy.rewrite(raw)
        self._dropped(result.dropped_indexes)
        if result.sql is None:
            return None
        return _query(result.sql)

    def _on_parse(self, body: bytes) -> bytes | None:
        name_end = body.find(b"\0")
        query_end = body.find(b"\0", name_end + 1)
        if name_end < 0 or query_end < 0 or len(body) < query_end + 3:
            raise ProtocolViolation("invalid Parse message")
        replacement: str | None = None
        if self.dropping_statements:  # the name now stands for this statement
            self.dropping_statements.pop(body[:name_end], None)
        if self.status == b"T" and name_end == 0:
            # unnamed statements only: a named one outlives this transaction
            raw = body[1:query_end]
            word = rules.normalized_txn_word(raw.decode("utf-8", "replace")) \
                if len(raw) < 40 else ""
            verdict = self._txn_verdict(word in _COMMIT_WORDS)
            if verdict is not None:
                replacement = f"SELECT sys.dsql_error('{verdict[0]}', '{verdict[1]}')"
        if replacement is None:
            result = self.proxy.rewrite(body[name_end + 1:query_end])
            if result.dropped_indexes:
                self.dropping_statements[body[:name_end]] = result.dropped_indexes
            replacement = result.sql
        if replacement is None:
            return None
        if replacement.startswith("SELECT sys.dsql_error("):
            sql = body[name_end + 1:query_end].decode("utf-8", "replace")
            replacement += _parameter_refs(sql, int.from_bytes(body[query_end + 1:query_end + 3],
                                                                "big"))
        new_body = body[:name_end + 1] + replacement.encode() + body[query_end:]
        return b"P" + struct.pack("!I", len(new_body) + 4) + new_body

    def _on_bind(self, body: bytes) -> None:
        portal_end = body.find(b"\0")
        name_end = body.find(b"\0", portal_end + 1)
        if portal_end >= 0 and name_end >= 0:
            self._dropped(self.dropping_statements.get(body[portal_end + 1:name_end], ()))

    def _dropped(self, names: tuple[rules.IndexName, ...]) -> None:
        """Before a DROP INDEX is forwarded: cancel the builds of those indexes, and wait until
        they have stopped (a build submitted after the DROP must not be hit)."""
        if names and self.proxy.on_dropped_indexes is not None:
            self.proxy.on_dropped_indexes(names)

    # -- server -> client ---------------------------------------------------------------

    def from_server(self, data: bytes) -> None:
        if self.down_skip:  # the rest of a long message that needs no inspection
            head, data = data[:self.down_skip], data[self.down_skip:]
            self.down_skip -= len(head)
            self._to_client(head)
            if not data:
                return
        buf = self.out_buf + data if self.out_buf else data
        pos = 0
        end = len(buf)
        delay = 0.0  # the added commit latency, when this data ends a write transaction
        changed: list[bytes] | None = None
        start = 0
        while end - pos >= 5:
            kind = buf[pos]
            stop = pos + 1 + int.from_bytes(buf[pos + 1:pos + 5], "big")
            if stop > end:
                if kind not in (0x5A, 0x43, 0x45):  # stream it rather than buffer it
                    self.down_skip = stop - end
                    pos = end
                break
            if kind == 0x5A:  # ReadyForQuery
                if self._on_ready(buf[pos + 5:pos + 6]):
                    delay = self.settings.faults.commit_latency
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
        if delay > 0:  # this session's thread waits; other connections go on meanwhile
            time.sleep(delay)
        if changed is not None:
            changed.append(buf[start:pos])
            self._to_client(b"".join(changed))
        elif pos:
            self._to_client(buf[:pos] if pos < end else buf)

    def _on_ready(self, status: bytes) -> bool:
        """Track the transaction status; True when a transaction that wrote just committed."""
        if self.pending:
            self.pending -= 1
        committed = False
        if status == b"I":
            committed = (self.txn_ddl or self.txn_wrote) and self.last_tag != b"ROLLBACK"
            if self.txn_ddl and committed:
                self.proxy.bump_epoch()
            self.txn_ddl = self.txn_wrote = False
        elif self.status == b"I":
            self.txn_start = self.last_send
            self.txn_epoch = self.proxy.ddl_epoch
        self.status = status
        return committed

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


_PARAM = re.compile(r"\$(\d+)")


def _parameter_refs(sql: str, declared: int) -> str:
    """A FROM clause that uses every parameter of a Parse message whose statement is replaced
    by an error, so that PostgreSQL can still type them and Bind still matches."""
    count = declared or max((int(n) for n in _PARAM.findall(sql)), default=0)
    if not count:
        return ""
    return " FROM (SELECT " + ", ".join(f"${i}::text" for i in range(1, count + 1)) + \
        ") AS _parameters"


def _query(sql: str) -> bytes:
    body = sql.encode() + b"\0"
    return b"Q" + struct.pack("!I", len(body) + 4) + body
