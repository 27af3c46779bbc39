"""``dsql-migrate load``: a file's records into a table, in DSQL-legal, resumable batches.

One reader (the calling thread) cuts the source into batches of whole records
(:func:`.source.chunks`): at most the profile's row limit, less the state rows written with each
batch, and a share of its byte limit. ``parallel`` workers, each on its own connection, load the
batches: one transaction each, holding the batch's record in ``load_batches`` (conditional on the
lease: the fence) and a ``COPY ... FROM STDIN`` of the batch's bytes. A conflict (40001) retries
the whole transaction (:class:`~dsql_migrate.runner.session.Session`); a batch over a DSQL limit
(54000) is split in two and tried again; anything else stops the load, naming the file's line.

Resume: the recorded batches are byte ranges of the source. A later run of the same load (same
table, source and format options) steps over them, so no row is loaded twice and none is lost,
whatever moment a kill came at. A source that changed since is accepted only if every recorded
batch's bytes still match (CRC-32); otherwise the load is refused until ``--restart``.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from ..errors import DsqlMigrateError, ExitCode
from ..profiles import STATE_ROWS_PER_BATCH, Limits
from ..runner.lock import LeaseLock
from ..runner.retry import RetryPolicy, describe, is_limit_error
from ..runner.session import Conn, Session
from ..runner.state import StateStore
from . import parquet
from .source import (
    Chunk,
    Format,
    Source,
    chunks,
    line_of_record,
    open_source,
    read_header,
    split_chunk,
)
from .state import DONE, FAILED, BatchRow, LoadStore, load_key


class LoadFailed(DsqlMigrateError):
    """The load stopped: bad data, a refused statement, a missing table."""

    exit_code = ExitCode.FAILED


class LoadRefused(DsqlMigrateError):
    """The source changed under a load that already committed batches from it."""

    exit_code = ExitCode.REFUSED


@dataclass(frozen=True)
class LoadRequest:
    table: str
    location: str
    format: Format
    header: bool = True
    columns: tuple[str, ...] | None = None
    parallel: int = 4
    #: rows per batch (at most the profile's row limit less the state rows)
    batch_rows: int | None = None
    #: share of the per-transaction byte limit one batch may use
    byte_budget_share: float = 0.5
    #: forget the batches a previous run recorded and load the whole source again
    restart: bool = False
    wait_lock_seconds: float = 0.0

    def identity(self) -> dict[str, Any]:
        return {"format": self.format.name, "header": self.header,
                "columns": list(self.columns) if self.columns else None}


@dataclass
class LoadProgress:
    """Totals so far, shared by the workers (under ``lock``)."""

    bytes_total: int = 0
    rows: int = 0
    batches: int = 0
    bytes_done: int = 0
    rows_before: int = 0
    batches_before: int = 0
    retries: int = 0
    splits: int = 0
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class LoadResult:
    load_id: str
    table: str
    location: str
    columns: tuple[str, ...] | None
    rows: int
    batches: int
    rows_before: int
    batches_before: int
    seconds: float
    retries: int
    splits: int
    workers: int
    already_done: bool = False

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"load_id": self.load_id, "table": self.table, "source": self.location,
                "rows": self.rows, "batches": self.batches,
                "rows_loaded_before": self.rows_before,
                "batches_loaded_before": self.batches_before,
                "seconds": round(self.seconds, 3),
                "rows_per_second": round(self.rows_per_second, 1), "retries": self.retries,
                "splits": self.splits, "workers": self.workers,
                "already_done": self.already_done}


def table_identifier(name: str) -> sql.Composable:
    """``table`` or ``schema.table``; quoted parts (``"My Table"``) keep their case."""
    parts = re.findall(r'"((?:[^"]|"")+)"|([^."]+)', name)
    names = [quoted.replace('""', '"') if quoted else bare.lower() for quoted, bare in parts]
    if not 1 <= len(names) <= 2 or "".join(p for q, b in parts for p in (q, b)) == "":
        raise LoadFailed(f"{name!r} is not a table name", hint="give TABLE or SCHEMA.TABLE")
    return sql.Identifier(*names)


class Loader:
    """One load: set up, then the reader and the workers, then the summary."""

    def __init__(self, request: LoadRequest, session: Session, *, limits: Limits,
                 state: StateStore, on_progress: Callable[[LoadProgress], None] | None = None,
                 on_note: Callable[[str], None] | None = None,
                 source: Source | None = None, progress: LoadProgress | None = None) -> None:
        self.request = request
        self.session = session
        self.limits = limits
        self.store = LoadStore(state)
        self.on_progress = on_progress or (lambda _p: None)
        self.on_note = on_note or (lambda _m: None)
        self.source = source or open_source(request.location)
        self.table = table_identifier(request.table)
        self.load_id = load_key(request.table, _source_identity(self.source),
                                request.identity())
        self.lock = LeaseLock(state, session, name=self.load_id)
        self.progress = progress or LoadProgress()
        self.progress.bytes_total = (parquet.row_count(self.source) if request.format.binary
                                     else self.source.size)

    # -- limits ----------------------------------------------------------------------------------

    @property
    def max_rows(self) -> int:
        legal = self.limits.rows_per_transaction - STATE_ROWS_PER_BATCH
        return max(min(self.request.batch_rows or legal, legal), 1)

    @property
    def max_bytes(self) -> int:
        return max(int(self.limits.bytes_per_transaction * self.request.byte_budget_share), 1)

    # -- the run ---------------------------------------------------------------------------------

    def run(self) -> LoadResult:
        request = self.request
        start, columns = self._columns()
        columns = self._check_table(columns)
        self.store.ensure(self.session)
        self.lock.acquire(request.wait_lock_seconds)
        try:
            done = self._previous(start)
            if done is not None:
                return done
            skip = self._skip(start)
            copy = self._copy_statement(columns)
            self.session.transaction("start the load", lambda c: self.store.start_load(
                c, self.load_id, target=request.table, source=self.source.location,
                fingerprint=self.source.fingerprint(), options=request.identity(),
                run_id=self.lock.run_id))
            try:
                self._pump(copy, start, skip)
            except BaseException as exc:
                self._finish(FAILED, exc)
                raise
            self._finish(DONE, None)
        finally:
            self.lock.release()
        progress = self.progress
        return LoadResult(self.load_id, request.table, self.source.location,
                          tuple(columns) if columns else None, progress.rows, progress.batches,
                          progress.rows_before, progress.batches_before, progress.seconds,
                          progress.retries, progress.splits, self._workers())

    def _workers(self) -> int:
        return max(self.request.parallel, 1)

    def _finish(self, status: str, exc: BaseException | None) -> None:
        error = None if exc is None else (exc.message if isinstance(exc, DsqlMigrateError)
                                          else describe(exc))
        try:
            self.session.transaction("record the load's end", lambda c: self.store.finish_load(
                c, self.load_id, status, error))
        except psycopg.Error:
            if exc is None:
                raise
            # the load's own error is the one to report; the state row says "running"

    def _columns(self) -> tuple[int, list[str] | None]:
        """Where the records begin, and the columns they fill (None: all, in table order)."""
        if self.request.format.binary:  # Parquet names its columns
            return 0, list(self.request.columns or parquet.columns(self.source))
        if not self.request.header:
            return 0, list(self.request.columns) if self.request.columns else None
        start, names = read_header(self.source, self.request.format)
        return start, list(self.request.columns) if self.request.columns else names

    def _check_table(self, columns: Sequence[str] | None) -> list[str] | None:
        """The table exists and has the columns: a clear error before anything is written.
        Returns the columns as the table spells them (a header's ``ID`` fills ``id``)."""
        query = sql.SQL("SELECT * FROM {} WHERE false").format(self.table)

        def names(conn: Conn) -> list[str]:
            cursor = conn.execute(query)
            return [str(d.name) for d in cursor.description or ()]
        try:
            have = self.session.autocommit("check the table", names)
        except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName) as exc:
            raise LoadFailed(f"table {self.request.table} does not exist: {describe(exc)}",
                             hint="create it first (e.g. with 'dsql-migrate sql -f "
                             "schema.sql')") from None
        if columns is None:
            return None
        return [self._table_column(name, have) for name in columns]

    def _table_column(self, name: str, have: list[str]) -> str:
        if name in have:
            return name
        folded = [c for c in have if c.lower() == name.lower()]
        if len(folded) == 1:
            return folded[0]
        where = ("the file's header" if not self.request.columns and
                 (self.request.header or self.request.format.binary) else "--columns")
        raise LoadFailed(f"{self.source.location}: column {name!r} of {where} is not in table "
                         f"{self.request.table} (its columns: {', '.join(have)})",
                         hint="name the table's columns with --columns a,b,c (with "
                         "--no-header if the file has no header line)")

    def _copy_statement(self, columns: Sequence[str] | None) -> sql.Composed:
        listed = (sql.SQL(" ({})").format(sql.SQL(", ").join(sql.Identifier(c) for c in columns))
                  if columns else sql.SQL(""))
        return sql.SQL("COPY {}{} FROM STDIN ({})").format(
            self.table, listed, sql.SQL(self.request.format.copy_options))

    # -- resuming --------------------------------------------------------------------------------

    def _previous(self, start: int) -> LoadResult | None:
        """A finished load of the same source: nothing to do (unless ``--restart``)."""
        row = self.session.transaction("read the load", lambda c: self.store.get_load(
            c, self.load_id))
        if self.request.restart and row is not None:
            self._forget()
            return None
        if row is None or row.status != DONE or row.fingerprint != self.source.fingerprint():
            return None
        batches = self.session.transaction("read the batches", lambda c: self.store.batches(
            c, self.load_id))
        rows = sum(b.rows for b in batches)
        return LoadResult(self.load_id, self.request.table, self.source.location, None, 0, 0,
                          rows, len(batches), 0.0, 0, 0, self._workers(), already_done=True)

    def _forget(self) -> None:
        while self.session.transaction("forget the recorded batches", lambda c: self.store.forget(
                c, self.load_id, self.limits.rows_per_transaction - STATE_ROWS_PER_BATCH)):
            pass

    def _skip(self, start: int) -> dict[int, tuple[int, int, int]]:
        batches = self.session.transaction("read the batches", lambda c: self.store.batches(
            c, self.load_id))
        if not batches:
            return {}
        row = self.session.transaction("read the load", lambda c: self.store.get_load(
            c, self.load_id))
        if row is not None and row.fingerprint != self.source.fingerprint():
            if self.request.format.binary:
                raise LoadRefused(
                    f"{self.source.location} changed since an earlier run of this load loaded "
                    f"{sum(b.rows for b in batches)} of its rows",
                    hint="the rows already loaded stay in the table: delete them, then run "
                    "again with --restart to load the whole file")
            self._verify_unchanged(batches)
        self.progress.rows_before = sum(b.rows for b in batches)
        self.progress.batches_before = len(batches)
        self.progress.bytes_done = sum(b.end - b.start for b in batches)
        self.on_note(f"resuming: {self.progress.rows_before} rows in "
                     f"{self.progress.batches_before} batches were loaded by an earlier run; "
                     "they are skipped")
        return {b.start: (b.end, b.rows, b.lines) for b in batches}

    def _verify_unchanged(self, batches: list[BatchRow]) -> None:
        """The source changed: every recorded batch must still read the same bytes."""
        import zlib

        for batch in batches:
            with self.source.open_at(batch.start) as stream:
                data = stream.read(batch.end - batch.start)
            if len(data) != batch.end - batch.start or zlib.crc32(data) != batch.checksum:
                raise LoadRefused(
                    f"{self.source.location} changed since an earlier run of this load: the "
                    f"bytes {batch.start}..{batch.end} it loaded ({batch.rows} rows) differ now",
                    hint="the rows already loaded stay in the table: delete them, then run "
                    "again with --restart to load the whole file")
        self.on_note(f"{self.source.location} changed since the earlier run, but the "
                     f"{len(batches)} batches it loaded still match: resuming")

    # -- reader and workers ----------------------------------------------------------------------

    def _pump(self, copy: sql.Composed, start: int,
              skip: dict[int, tuple[int, int, int]]) -> None:
        workers = self._workers()
        work: queue.Queue[Chunk | None] = queue.Queue(maxsize=workers * 2)
        stop = threading.Event()
        errors: list[BaseException] = []

        def worker() -> None:
            session = self.session.fork()
            try:
                while (chunk := work.get()) is not None:
                    if not stop.is_set():
                        self._load(session, copy, chunk)
            except BaseException as exc:  # reported by the reading thread
                errors.append(exc)
                stop.set()
                while work.get() is not None:  # drain, so the reader never blocks
                    pass
            finally:
                session.close()
        threads = [threading.Thread(target=worker, daemon=True, name=f"load-worker-{n}")
                   for n in range(workers)]
        for thread in threads:
            thread.start()
        first_line = 2 if self.request.header and not self.request.format.binary else 1
        cut = parquet.chunks if self.request.format.binary else chunks
        try:
            for chunk in cut(self.source, self.request.format, start=start,
                                first_line=first_line, max_rows=self.max_rows,
                                max_bytes=self.max_bytes, skip=skip):
                while not stop.is_set():
                    try:
                        work.put(chunk, timeout=0.2)
                        break
                    except queue.Full:
                        self._heartbeat()
                if stop.is_set():
                    break
                self._heartbeat()
        finally:
            for _ in threads:
                work.put(None)
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.2)
                    self._heartbeat()
        if errors:
            raise errors[0]

    def _heartbeat(self) -> None:
        self.lock.heartbeat_if_due()
        self.on_progress(self.progress)

    def _load(self, session: Session, copy: sql.Composed, chunk: Chunk) -> None:
        """One batch in one transaction: its record (the fence) and its rows."""
        checksum = chunk.checksum

        def batch(conn: Conn) -> bool:
            if not self.store.record_batch(conn, self.load_id, start=chunk.start, end=chunk.end,
                                           rows=chunk.rows, lines=chunk.lines,
                                           checksum=checksum, run_id=self.lock.run_id,
                                           lease=self.lock.held()):
                return False
            with conn.cursor() as cur, cur.copy(copy) as stream:
                stream.write(chunk.data)
            return True

        try:
            recorded = session.transaction(f"load lines {chunk.line}..", batch)
        except psycopg.Error as exc:
            if is_limit_error(exc) and chunk.rows > 1:
                halves = split_chunk(chunk, self.request.format.quote,
                                     row_offsets=self.request.format.binary)
                if len(halves) > 1:
                    with self.progress.lock:
                        self.progress.splits += 1
                    for half in halves:
                        self._load(session, copy, half)
                    return
            raise self._data_error(chunk, exc) from None
        if not recorded:
            self._not_recorded(session, chunk)
        with self.progress.lock:
            self.progress.rows += chunk.rows
            self.progress.batches += 1
            self.progress.bytes_done += chunk.end - chunk.start

    def _not_recorded(self, session: Session, chunk: Chunk) -> None:
        """The batch's record was refused: its first COMMIT went through (a lost answer), or
        another run took the lease over."""
        existing = session.transaction("read the batch", lambda c: self.store.batch_at(
            c, self.load_id, chunk.start))
        if existing is not None and existing.end == chunk.end:
            return  # loaded once, by the attempt whose answer was lost
        session.transaction("check the lease", self.lock.ensure_held)
        raise LoadFailed(f"{self.source.location}:{chunk.line}: a batch recorded at byte "
                         f"{chunk.start} ends at {existing.end if existing else '?'}, not at "
                         f"{chunk.end}", hint="the file changed under the load: run with "
                         "--restart after deleting the loaded rows")

    def _data_error(self, chunk: Chunk, exc: psycopg.Error) -> LoadFailed:
        """file:line, the column and the server's reason for a batch COPY refused."""
        context = exc.diag.context or ""
        found = re.search(r"line (\d+)(?:, column ([^:]+))?", context)
        line = chunk.line
        column = ""
        if found:
            line = line_of_record(chunk, int(found.group(1)), self.request.format.quote)
            column = f" column {found.group(2)}:" if found.group(2) else ""
        progress = self.progress
        where = f" row {line}:" if self.request.format.binary else f"{line}:"
        return LoadFailed(
            f"{self.source.location}:{where}{column} {describe(exc)}",
            hint=f"the batch from line {chunk.line} ({chunk.rows} rows) was rolled back; "
            f"{progress.rows_before + progress.rows} rows are loaded. Fix the data and run the "
            "same command again: it resumes after the batches already loaded")


def _source_identity(source: Source) -> str:
    """A local file by its absolute path, an S3 object by its address."""
    path = getattr(source, "path", None)
    return str(path) if path is not None else source.location


def run_load(request: LoadRequest, factory: Callable[[], Conn], *, limits: Limits,
             state_schema: str, session: Session | None = None,
             retry: RetryPolicy | None = None, max_connection_seconds: float | None = None,
             on_progress: Callable[[LoadProgress], None] | None = None,
             on_note: Callable[[str], None] | None = None) -> LoadResult:
    """Load ``request.location`` into ``request.table``; see :class:`Loader`."""
    progress = LoadProgress()

    def retried(_what: str, _attempt: int, _exc: BaseException) -> None:
        with progress.lock:
            progress.retries += 1
    own = session is None
    session = session or Session(factory, on_retry=retried, retry=retry,
                                 max_connection_seconds=max_connection_seconds)
    try:
        return Loader(request, session, limits=limits, state=StateStore(state_schema),
                      on_progress=on_progress, on_note=on_note, progress=progress).run()
    finally:
        if own:
            session.close()
