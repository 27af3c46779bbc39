"""Cutting a file into batches of whole records: no database."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from dsql_migrate.load.source import (
    FORMATS,
    SourceError,
    chunks,
    cut_records,
    line_of_record,
    open_source,
    read_header,
    split_chunk,
)

CSV = FORMATS["csv"]
TSV = FORMATS["tsv"]


def test_a_quoted_newline_does_not_end_a_record() -> None:
    buf = b'1,"a\nb"\n2,"say ""hi""\n"\n3,c\n'
    cut = cut_records(buf, 0, len(buf), 2, b'"', final=True)
    assert (cut.rows, cut.lines) == (2, 4)
    assert buf[cut.end:] == b"3,c\n"


def test_the_last_record_needs_no_newline() -> None:
    buf = b"1,a\n2,b"
    cut = cut_records(buf, 0, len(buf), 10, b'"', final=True)
    assert (cut.end, cut.rows) == (len(buf), 2)
    # not at the end of the file: the partial record waits for more bytes
    assert cut_records(buf, 0, len(buf), 10, b'"', final=False).rows == 1


def test_the_byte_limit_stops_at_the_last_whole_record() -> None:
    buf = b"1,aaaa\n2,bbbb\n3,cccc\n"
    cut = cut_records(buf, 0, 16, 100, b'"', final=True)
    assert buf[:cut.end] == b"1,aaaa\n2,bbbb\n"


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode())
    return path


def test_chunks_cover_the_file_once_and_number_lines(tmp_path: Path) -> None:
    text = "id,v\n" + "".join(f'{i},"x\n{i}"\n' for i in range(1, 11))
    source = open_source(str(write(tmp_path / "a.csv", text)))
    start, names = read_header(source, CSV)
    assert names == ["id", "v"]
    got = list(chunks(source, CSV, start=start, first_line=2, max_rows=3, max_bytes=1000,
                      skip={}))
    assert [c.rows for c in got] == [3, 3, 3, 1]
    assert [c.line for c in got] == [2, 8, 14, 20]
    assert b"".join(c.data for c in got) == text.encode()[start:]
    assert line_of_record(got[1], 2, CSV.quote) == 10


@pytest.mark.parametrize("which", [slice(1, 3), slice(0, 1), slice(0, 2), slice(4, 5)])
def test_chunks_step_over_loaded_batches(tmp_path: Path, which: slice) -> None:
    text = "".join(f"{i}\tv{i}\n" for i in range(1, 21))
    source = open_source(str(write(tmp_path / "a.tsv", text)))
    first = list(chunks(source, TSV, start=0, first_line=1, max_rows=4, max_bytes=1000,
                        skip={}))
    loaded = {c.start: (c.end, c.rows, c.lines) for c in first[which]}
    again = list(chunks(source, TSV, start=0, first_line=1, max_rows=7, max_bytes=1000,
                        skip=loaded))
    covered = sorted([(c.start, c.end) for c in again] + [(s, e) for s, (e, _, _) in
                                                           loaded.items()])
    assert covered[0][0] == 0 and covered[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(covered))
    assert sum(c.rows for c in again) == 20 - sum(r for _, r, _ in loaded.values())
    # line numbers continue past the skipped ranges
    for chunk in again:
        assert chunk.data.startswith(f"{chunk.line}\t".encode())


def test_an_unterminated_quote_is_an_error_with_its_line(tmp_path: Path) -> None:
    source = open_source(str(write(tmp_path / "a.csv", 'a\n1\n"2\n3\n')))
    with pytest.raises(SourceError, match=r"a\.csv:3: an unterminated quoted field"):
        list(chunks(source, CSV, start=2, first_line=2, max_rows=100, max_bytes=1000,
                    skip={}))


def test_split_chunk_halves_at_a_record_boundary(tmp_path: Path) -> None:
    source = open_source(str(write(tmp_path / "a.csv", '1,"a\nb"\n2,c\n3,d\n4,e\n')))
    (chunk,) = chunks(source, CSV, start=0, first_line=1, max_rows=10, max_bytes=1000, skip={})
    first, second = split_chunk(chunk, CSV.quote)
    assert (first.rows, second.rows) == (2, 2)
    assert (first.line, second.line) == (1, 4)
    assert first.data + second.data == chunk.data and second.start == first.end


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"nope\.csv: cannot read"):
        open_source(str(tmp_path / "nope.csv"))


def test_parquet_slices_respect_rows_bytes_and_loaded_slices(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    parquet_io = pytest.importorskip("pyarrow.parquet")
    from dsql_migrate.load import parquet

    path = tmp_path / "a.parquet"
    parquet_io.write_table(pa.table({"id": list(range(100)), "v": ["x" * 50] * 100}), path,
                           row_group_size=30)
    source = open_source(str(path))
    fmt = FORMATS["parquet"]
    got = list(parquet.chunks(source, fmt, start=0, first_line=1, max_rows=40,
                              max_bytes=1000, skip={}))
    assert all(len(c.data) <= 1000 and c.rows <= 40 for c in got)
    assert [c.start for c in got] == [0, *(c.end for c in got[:-1])] and got[-1].end == 100
    skip = {c.start: (c.end, c.rows, c.lines) for c in got[2:4]}
    again = list(parquet.chunks(source, fmt, start=0, first_line=1, max_rows=40,
                                max_bytes=1000, skip=skip))
    assert sum(c.rows for c in again) + sum(r for _, r, _ in skip.values()) == 100
    assert not {c.start for c in again} & set(skip)
    first, second = split_chunk(got[0], fmt.quote, row_offsets=True)
    assert (first.start, first.end, second.start, second.end) == (
        got[0].start, got[0].start + first.rows, got[0].start + first.rows, got[0].end)
