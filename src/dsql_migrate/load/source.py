"""Where the rows come from: a file read as bytes and cut into DSQL-sized batches of records.

The loader never parses values: PostgreSQL's ``COPY ... FROM STDIN`` does, batch by batch. This
module only finds *record boundaries*, so that every batch holds whole records, at most the
profile's row limit and a share of its byte limit. A boundary is a byte offset in the file; the
same file always yields the same boundaries whatever the batch size, which is what makes a load
resumable by byte offsets (:mod:`.state`).

Formats (a registry, :data:`FORMATS`):

``csv``
    PostgreSQL's CSV: ``,`` between fields, ``"`` quotes (doubled inside a quoted field), an
    unquoted empty field is NULL, quoted fields may hold newlines. A record ends at a newline
    outside quotes: the parity of the quote characters on a line tells.
``tsv``
    PostgreSQL's text format with a tab between fields (what ``mysqldump --tab`` and ``COPY ...
    TO`` write): ``\\N`` is NULL, backslash escapes, one record per line.

Sources (:func:`open_source`): a local path, or ``s3://bucket/key`` read through boto3 with
ranged GETs.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from ..errors import ConfigError, DsqlMigrateError

#: bytes read from the source at a time
READ_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Format:
    """How records are delimited, and the ``COPY`` options that read them."""

    name: str
    #: the quote byte whose parity decides whether a newline ends a record (None: every one)
    quote: bytes | None
    delimiter: str
    copy_options: str
    #: a text file cut at record boundaries (offsets are bytes), or a Parquet file cut into
    #: slices of rows (offsets are row numbers; :mod:`.parquet`)
    binary: bool = False

    def split_header(self, line: bytes) -> list[str]:
        """Column names from a header record."""
        text = line.decode("utf-8").rstrip("\r\n")
        if self.quote is None:
            return text.split(self.delimiter)
        import csv

        return next(csv.reader([text], delimiter=self.delimiter, quotechar=self.quote.decode()))


FORMATS: dict[str, Format] = {
    "csv": Format("csv", b'"', ",", "FORMAT csv"),
    "tsv": Format("tsv", None, "\t", "FORMAT text"),
    "parquet": Format("parquet", b'"', ",", "FORMAT csv", binary=True),
}


def get_format(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise ConfigError(f"unknown format {name!r}",
                          hint=f"use one of: {', '.join(FORMATS)}") from None


def format_for(location: str, given: str | None) -> Format:
    """The format given, else the file name's suffix (``.csv``, ``.tsv``/``.tab``/``.txt``,
    ``.parquet``/``.pq``)."""
    if given is not None:
        return get_format(given)
    suffix = location.lower().rsplit(".", 1)[-1] if "." in location else ""
    by_suffix = {"csv": "csv", "tsv": "tsv", "tab": "tsv", "txt": "tsv", "parquet": "parquet",
                 "pq": "parquet"}
    if suffix not in by_suffix:
        raise ConfigError(f"{location}: cannot tell the format from the file name",
                          hint="give --format csv, tsv or parquet")
    return get_format(by_suffix[suffix])


class SourceError(DsqlMigrateError):
    """The source cannot be read, or is not valid for its format."""


# -- sources --------------------------------------------------------------------------------------


class Source(Protocol):
    """Bytes by offset, a size and a fingerprint that changes when the content does."""

    location: str
    size: int

    def fingerprint(self) -> str: ...

    def open_at(self, offset: int) -> IO[bytes]: ...


@dataclass
class LocalFile:
    location: str
    path: Path
    size: int
    mtime_ns: int

    def fingerprint(self) -> str:
        return f"size={self.size};mtime_ns={self.mtime_ns}"

    def open_at(self, offset: int) -> IO[bytes]:
        handle = self.path.open("rb")
        handle.seek(offset)
        return handle


@dataclass
class S3Object:
    """``s3://bucket/key`` through boto3 (credentials from the standard AWS chain)."""

    location: str
    bucket: str
    key: str
    size: int
    etag: str
    client: Any

    def fingerprint(self) -> str:
        return f"size={self.size};etag={self.etag}"

    def open_at(self, offset: int) -> IO[bytes]:
        if offset >= self.size:
            import io

            return io.BytesIO(b"")
        answer = self.client.get_object(Bucket=self.bucket, Key=self.key,
                                        Range=f"bytes={offset}-", IfMatch=self.etag)
        body: IO[bytes] = answer["Body"]
        return body


def open_source(location: str) -> Source:
    if location.startswith("s3://"):
        return _s3_object(location)
    path = Path(location)
    try:
        stat = path.stat()
    except OSError as exc:
        raise SourceError(f"{location}: cannot read: {exc.strerror}",
                          hint="give the path of a readable CSV or TSV file") from None
    if not path.is_file():
        raise SourceError(f"{location}: not a file", hint="give the path of a CSV or TSV file")
    if not os.access(path, os.R_OK):
        raise SourceError(f"{location}: cannot read: permission denied")
    return LocalFile(location, path.resolve(), stat.st_size, stat.st_mtime_ns)


def _s3_object(location: str) -> S3Object:
    bucket, _, key = location[len("s3://"):].partition("/")
    if not bucket or not key:
        raise ConfigError(f"{location}: not an s3://bucket/key address")
    import boto3
    import botocore.exceptions

    client = boto3.client("s3")
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise SourceError(f"{location}: cannot read: {exc}",
                          hint="check the address and your AWS credentials") from None
    return S3Object(location, bucket, key, int(head["ContentLength"]), str(head["ETag"]),
                    client)


# -- cutting records into batches -----------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """Whole records ``[start, end)`` of the file, the first on physical line ``line``."""

    start: int
    end: int
    rows: int
    #: physical lines (a quoted CSV field may span several)
    lines: int
    line: int
    data: bytes

    @property
    def checksum(self) -> int:
        return zlib.crc32(self.data)


@dataclass(frozen=True)
class Cut:
    end: int  # offset in the buffer after the last whole record
    rows: int
    lines: int


def cut_records(buf: bytes, pos: int, limit: int, max_rows: int, quote: bytes | None,
                *, final: bool) -> Cut:
    """Whole records from ``buf[pos:]``: at most ``max_rows``, ending at most at ``limit``.

    ``final``: the buffer ends at the end of the file, so a last record without a newline
    counts (when it fits).
    """
    stop = min(limit, len(buf))
    lines, end = _lines(buf, pos, stop, max_rows)
    if quote is not None and any(line.count(quote) & 1 for line in lines):
        # a quoted field spans a newline: walk these records line by line
        rows, count, end = _quoted_records(buf, pos, stop, max_rows, quote)
    else:
        rows = count = len(lines)
    if final and rows < max_rows and stop == len(buf) and end < stop \
            and buf[end:stop].strip(b"\r\n"):
        tail_quotes = buf.count(quote, end, stop) if quote is not None else 0
        if not tail_quotes & 1:
            return Cut(stop, rows + 1, count + 1)
    return Cut(end, rows, count)


def _lines(buf: bytes, pos: int, stop: int, count: int) -> tuple[list[bytes], int]:
    """Up to ``count`` whole lines from ``pos`` (split in C over a window that grows until it
    holds them), and the offset after the last."""
    width = max(count * 64, 4096)
    while True:
        end = min(stop, pos + width)
        window = buf[pos:end]
        parts = window.split(b"\n", count)
        if len(parts) > count or end >= stop:
            return parts[:-1], end - len(parts[-1])
        seen = max(len(parts) - 1, 1)
        width = max(width * 2, int(width / seen * count * 1.1))


def _quoted_records(buf: bytes, i: int, stop: int, max_rows: int,
                    quote: bytes) -> tuple[int, int, int]:
    """Records, lines and the end offset, line by line: a newline ends a record when the quotes
    before it (in the record) pair up."""
    rows = lines = spanned = 0
    boundary, quoted = i, False
    while rows < max_rows:
        newline = buf.find(b"\n", i, stop)
        if newline < 0:
            break
        if buf.count(quote, i, newline) & 1:
            quoted = not quoted
        spanned, i = spanned + 1, newline + 1
        if not quoted:
            rows, lines, boundary = rows + 1, spanned, i
    return rows, lines, boundary


def read_header(source: Source, fmt: Format) -> tuple[int, list[str]]:
    """The header record: its length in bytes and the column names it gives."""
    with source.open_at(0) as stream:
        buf = stream.read(1024 * 1024)
    cut = cut_records(buf, 0, len(buf), 1, fmt.quote, final=len(buf) < 1024 * 1024)
    if cut.rows == 0:
        raise SourceError(f"{source.location}: no header line (empty file, or a first record "
                          "longer than 1 MiB)", hint="give --no-header if the file has none")
    try:
        names = [n.strip() for n in fmt.split_header(buf[:cut.end])]
    except (UnicodeDecodeError, StopIteration):
        raise SourceError(f"{source.location}:1: the header is not UTF-8 column names",
                          hint="give --no-header and --columns") from None
    if not all(names):
        raise SourceError(f"{source.location}:1: the header has an empty column name",
                          hint="give --no-header and --columns")
    return cut.end, names


def chunks(source: Source, fmt: Format, *, start: int, first_line: int, max_rows: int,
           max_bytes: int, skip: dict[int, tuple[int, int, int]]) -> Iterator[Chunk]:
    """The records from ``start`` to the end, in batches of at most ``max_rows`` records and
    ``max_bytes`` bytes; ranges in ``skip`` (``start -> (end, rows, lines)``, batches already
    loaded) are stepped over and never cut into."""
    starts = sorted(s for s in skip if s >= start)
    stream = source.open_at(start)
    try:
        buf, base, eof = b"", start, False  # buf[0] is at file offset base
        pos, line = start, first_line
        while True:
            if pos in skip:
                end, _rows, lines = skip[pos]
                pos, line = end, line + lines
                continue
            while starts and starts[0] <= pos:
                starts.pop(0)
            limit = min(pos + max_bytes, starts[0] if starts else source.size)
            if pos > base + len(buf):  # stepped past what was read: read on from pos
                stream.close()
                stream = source.open_at(pos)
                buf, base, eof = b"", pos, False
            # enough bytes in memory for this batch (or the end of the file)
            while not eof and base + len(buf) < limit:
                block = stream.read(READ_BYTES)
                if not block:
                    eof = True
                    break
                buf = buf[pos - base:] + block
                base = pos
            if pos - base > READ_BYTES:
                buf, base = buf[pos - base:], pos
            at = pos - base
            if at >= len(buf):
                return
            final = eof or base + len(buf) >= source.size
            cut = cut_records(buf, at, limit - base, max_rows, fmt.quote,
                              final=final and limit >= source.size)
            if cut.rows == 0:
                if limit - pos < max_bytes and starts and limit == starts[0]:
                    raise SourceError(f"{source.location}:{line}: the records before byte "
                                      f"{limit} do not end where a loaded batch begins",
                                      hint="the file changed: run with --restart")
                if final and not buf[at:].strip(b"\r\n"):
                    return  # only blank lines left
                what = ("an unterminated quoted field" if final
                        else f"a record longer than {max_bytes} bytes")
                raise SourceError(f"{source.location}:{line}: {what}",
                                  hint="check the file's quoting" if final else
                                  "DSQL limits a transaction's size; split the record's data")
            yield Chunk(pos, base + cut.end, cut.rows, cut.lines, line, buf[at:cut.end])
            pos, line = base + cut.end, line + cut.lines
    finally:
        stream.close()


def line_of_record(chunk: Chunk, record: int, quote: bytes | None) -> int:
    """The physical line where the chunk's ``record``-th record (1-based) starts."""
    if record <= 1 or chunk.lines == chunk.rows:
        return chunk.line + max(record - 1, 0)
    cut = cut_records(chunk.data, 0, len(chunk.data), record - 1, quote, final=False)
    return chunk.line + cut.lines


def split_chunk(chunk: Chunk, quote: bytes | None, *, row_offsets: bool = False) -> list[Chunk]:
    """Two halves of a chunk at a record boundary (a batch over a DSQL limit, tried again).
    ``row_offsets``: the chunk's offsets count rows (Parquet), not bytes."""
    half = max(chunk.rows // 2, 1)
    cut = cut_records(chunk.data, 0, len(chunk.data), half, quote, final=True)
    if cut.end >= len(chunk.data) or cut.rows == 0:
        return [chunk]
    middle = chunk.start + (cut.rows if row_offsets else cut.end)
    lines = cut.rows if row_offsets else cut.lines
    first = Chunk(chunk.start, middle, cut.rows, lines, chunk.line, chunk.data[:cut.end])
    second = Chunk(middle, chunk.end, chunk.rows - cut.rows, chunk.lines - lines,
                   chunk.line + lines, chunk.data[cut.end:])
    return [first, second]
