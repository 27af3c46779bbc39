"""Parquet sources (the ``parquet`` extra: ``pip install 'dsql-migrate[parquet]'``).

A Parquet file is read with pyarrow in record batches, and each DSQL-sized slice of rows is
written as CSV (pyarrow's writer: NULL as an unquoted empty field, strings quoted, timestamps in
ISO 8601), which ``COPY ... FROM STDIN (FORMAT csv)`` reads. The offsets that make a load
resumable are **row numbers** here (0-based), not bytes: a batch ``[start, end)`` is rows
``start`` to ``end - 1`` of the file.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .source import Chunk, Format, Source, SourceError

#: rows read from the file at a time
READ_ROWS = 65_536


def _pyarrow() -> tuple[Any, Any, Any]:
    try:
        import pyarrow  # type: ignore[import-untyped,import-not-found,unused-ignore]
        import pyarrow.csv  # type: ignore[import-untyped,import-not-found,unused-ignore]
        import pyarrow.parquet  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        raise ConfigError("reading Parquet needs pyarrow",
                          hint="pip install 'dsql-migrate[parquet]' (or pip install pyarrow), "
                          "or convert the file to CSV") from None
    return pyarrow, pyarrow.csv, pyarrow.parquet


def _open(source: Source) -> Any:
    path = getattr(source, "path", None)
    if not isinstance(path, Path):
        raise SourceError(f"{source.location}: Parquet is read from a local file only",
                          hint="download the object first (aws s3 cp), then load the file")
    _, _, parquet = _pyarrow()
    try:
        return parquet.ParquetFile(str(path))
    except Exception as exc:  # pyarrow raises its own ArrowInvalid/OSError kinds
        raise SourceError(f"{source.location}: not a readable Parquet file: {exc}") from None


def columns(source: Source) -> list[str]:
    """The file's column names, in file order."""
    return [str(name) for name in _open(source).schema_arrow.names]


def row_count(source: Source) -> int:
    return int(_open(source).metadata.num_rows)


def _csv(rows: Any) -> bytes:
    _, csv, _ = _pyarrow()
    out = io.BytesIO()
    try:
        csv.write_csv(rows, out, csv.WriteOptions(include_header=False))
    except Exception as exc:  # a column type CSV cannot hold (lists, structs, maps)
        raise SourceError(f"a Parquet column cannot be written as CSV: {exc}",
                          hint="load the other columns with --columns, or flatten the file "
                          "first") from None
    return out.getvalue()


def chunks(source: Source, fmt: Format, *, start: int, first_line: int, max_rows: int,
           max_bytes: int, skip: dict[int, tuple[int, int, int]]) -> Iterator[Chunk]:
    """Rows from row ``start`` on, in slices of at most ``max_rows`` rows and ``max_bytes``
    bytes of CSV; slices in ``skip`` (``start -> (end, rows, lines)``) are stepped over."""
    file = _open(source)
    starts = sorted(skip)
    pos, base = start, 0
    for batch in file.iter_batches(batch_size=READ_ROWS):
        end_of_batch = base + batch.num_rows
        while pos < end_of_batch:
            if pos in skip:
                pos = skip[pos][0]
                continue
            limit = min([pos + max_rows, end_of_batch, *(s for s in starts if s > pos)])
            rows = batch.slice(pos - base, limit - pos)
            data = _csv(rows)
            while len(data) > max_bytes and rows.num_rows > 1:
                rows = rows.slice(0, rows.num_rows // 2)
                data = _csv(rows)
            if len(data) > max_bytes:
                raise SourceError(f"{source.location}: row {pos + 1} is larger than "
                                  f"{max_bytes} bytes",
                                  hint="DSQL limits a transaction's size")
            yield Chunk(pos, pos + rows.num_rows, rows.num_rows, rows.num_rows, pos + 1, data)
            pos += rows.num_rows
        base = end_of_batch
