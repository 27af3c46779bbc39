"""Issue 16 point 5 (MySQL half), end to end: ``dsql-migrate convert --from mysql`` of the
Chinook MySQL script, then ``dsql-migrate sql -f`` on the emulator (DSQL's rules), ends with
every table, primary key, foreign key, index and row of the source; the source is read
independently of the converter (see test_mysql_samples)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest

from _support import run
from dsql_migrate.convert.mysql import mysql_to_postgresql

from .test_mysql_samples import (
    _same,
    _samples,
    catalog,
    chinook_ddl_facts,
    load,
    mysql_inserts,
    rows_by_key,
)

pytestmark = pytest.mark.integration


def in_schema(url: str, schema: str) -> str:
    parts = urlsplit(url)
    option = "options=" + quote(f"-csearch_path={schema}")
    return urlunsplit(parts._replace(query=f"{parts.query}&{option}" if parts.query else option))


@pytest.fixture
def schema(raw_url: str) -> Iterator[str]:
    name = f"my_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(raw_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    yield name
    with psycopg.connect(raw_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}_state" CASCADE')


def test_chinook_mysql_converts_runs_on_the_emulator_and_keeps_everything(
    tmp_path: Path, dsql_url: str, raw_url: str, schema: str
) -> None:
    source = _samples() / "chinook-mysql.sql"
    out, report = tmp_path / "out.sql", tmp_path / "report.json"
    code, _, err = run("convert", "--from", "mysql", str(source), "-o", str(out),
                       "--report", str(report))
    assert code == 3, err  # converted, with changes to review; nothing flagged
    doc = json.loads(report.read_text())
    assert doc["summary"]["flagged"] == 0
    code, _, err = run("sql", "-f", str(out), "--url", in_schema(dsql_url, schema),
                       "--allow-destructive", "--state-schema", f"{schema}_state")
    assert code == 0, err

    text = source.read_text(encoding="utf-8")
    target = in_schema(raw_url, schema)
    found, declared = catalog(target), chinook_ddl_facts(text)
    for kind in declared:
        assert found[kind] == declared[kind], (kind, found[kind] ^ declared[kind])
    with psycopg.connect(target) as conn:
        invalid = conn.execute(
            "SELECT count(*) FROM pg_constraint WHERE NOT convalidated"
            " AND connamespace = current_schema()::regnamespace"
        ).fetchone()
    assert invalid == (0,)  # the foreign keys were validated
    rows = mysql_inserts(text)
    assert sum(len(r) for r in rows.values()) == 15607
    for table, source_rows in rows.items():
        stored = rows_by_key(target, table)
        assert len(stored) == len(source_rows), table
        if len(stored[0]) == len(source_rows[0]) + 1:  # AUTO_INCREMENT numbered the rows
            assert [row[0] for row in stored] == list(range(1, len(source_rows) + 1)), table
            pairs = [(row[1:], src) for row, src in zip(stored, source_rows, strict=True)]
        else:
            key = lambda row: tuple(str(value) for value in row)  # noqa: E731
            pairs = list(zip(sorted(stored, key=key), sorted(source_rows, key=key), strict=True))
        for stored_row, source_row in pairs:
            same = [_same(a, b) for a, b in zip(stored_row, source_row, strict=True)]
            assert all(same), (table, stored_row, source_row)


def digests(url: str) -> dict[str, tuple[int, str]]:
    """Row count and md5 of the rows' text, per table of the connection's schema."""
    with psycopg.connect(url) as conn:
        names = [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
        out = {}
        for table in names:
            row = conn.execute(
                f'SELECT count(*), md5(coalesce(string_agg(t::text, E\'\\n\' ORDER BY t::text),'
                f" '')) FROM \"{table}\" t"
            ).fetchone()
            assert row is not None
            out[table] = (row[0], row[1])
        return out


@pytest.mark.parametrize("name", ["mysqldump-shop.sql", "mysql-features.sql"])
def test_mysql_dumps_convert_and_run_on_the_emulator(
    name: str, tmp_path: Path, dsql_url: str, raw_url: str, scratch_url: str, schema: str
) -> None:
    """The DSQL path (convert, then sql -f on the emulator) ends with the same rows as the
    MySQL front end's PostgreSQL loaded into plain PostgreSQL (itself checked value by value
    against the source in test_mysql_samples)."""
    source = Path(__file__).parent / "data" / name
    out, report = tmp_path / "out.sql", tmp_path / "report.json"
    code, _, err = run("convert", "--from", "mysql", str(source), "-o", str(out),
                       "--report", str(report))
    assert code == 3, err
    code, _, err = run("sql", "-f", str(out), "--url", in_schema(dsql_url, schema),
                       "--allow-destructive", "--state-schema", f"{schema}_state")
    assert code == 0, err
    statements, _ = mysql_to_postgresql(source.read_text(encoding="utf-8"), name)
    load(scratch_url, (sql for _line, sql in statements))
    plain, dsql = digests(scratch_url), digests(in_schema(raw_url, schema))
    assert plain == dsql
    assert sum(count for count, _ in plain.values()) >= 1
