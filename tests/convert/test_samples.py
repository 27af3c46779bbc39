"""Issue 16 point 5 (PostgreSQL half): public samples and a real pg_dump convert, run with
``sql -f`` on the emulator, and end with every table, primary key, foreign key, index and row of
the source, compared with the ORIGINAL script loaded into plain PostgreSQL (row counts and a
per-table checksum of the rows' text).

Samples (licences beside them in samples/): Chinook 1.4.5 (PostgreSQL, serial keys) and a
Northwind pg_dump. The richer dump is made here, by pg_dump, from data/rich-source.sql: enums,
serials, an identity, arrays, a partitioned table, a view, a trigger, row-level security.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest

from _support import run
from dsql_migrate.local.binaries import find_binaries
from dsql_migrate.local.instance import LocalInstance

HERE = Path(__file__).parent
SAMPLES = HERE / "samples"


def with_options(url: str, search_path: str) -> str:
    """``url`` whose connections use ``search_path`` (the emulator passes options through)."""
    parts = urlsplit(url)
    option = "options=" + quote(f"-csearch_path={search_path}")
    return urlunsplit(parts._replace(query=f"{parts.query}&{option}" if parts.query
                                     else option))


def psql(url: str, file: Path, *, search_path: str | None = None) -> None:
    env = dict(os.environ)
    if search_path:
        env["PGOPTIONS"] = f"-c search_path={search_path}"
    subprocess.run([find_binaries().path("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                    "-d", url, "-f", str(file)], check=True, env=env, capture_output=True)


def tables(conn: psycopg.Connection[Any], schema: str) -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
        "ORDER BY 1", (schema,)).fetchall()
    return [r[0] for r in rows]


def table_facts(conn: psycopg.Connection[Any], schema: str) -> dict[str, Any]:
    """Rows (count, md5 of the rows' text in order), primary keys, foreign keys and indexes
    of every table of ``schema`` (partitions count as their parent)."""
    out: dict[str, Any] = {}
    for name in tables(conn, schema):
        q = f'"{schema}"."{name}"'
        count, digest = conn.execute(
            f"SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) "
            f"FROM {q} t").fetchone() or (0, "")
        constraints = conn.execute(
            "SELECT conname, contype, pg_get_constraintdef(oid, true), convalidated "
            "FROM pg_constraint WHERE conrelid = %s::regclass AND contype IN ('p', 'f', 'u') "
            "ORDER BY conname", (q,)).fetchall()
        indexes = conn.execute(
            "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = "
            "i.indexrelid WHERE i.indrelid = %s::regclass ORDER BY 1", (q,)).fetchall()
        out[name] = {
            "rows": count, "md5": digest,
            "constraints": [(n, t, _no_schema(d, schema)) for n, t, d, _ in constraints],
            "invalid": [n for n, _, _, valid in constraints if not valid],
            "indexes": [n for n, _ in indexes],
            "invalid_indexes": [n for n, valid in indexes if not valid],
        }
    return out


def _no_schema(definition: str, schema: str) -> str:
    return re.sub(rf'\b"?{re.escape(schema)}"?\.', "", definition).replace(" NOT VALID", "")


def assert_same(source: dict[str, Any], target: dict[str, Any]) -> None:
    assert sorted(target) == sorted(source)
    for name, want in source.items():
        got = target[name]
        assert (got["rows"], got["md5"]) == (want["rows"], want["md5"]), name
        assert got["constraints"] == want["constraints"], name
        assert got["invalid"] == [] and got["invalid_indexes"] == [], name
        assert got["indexes"] == want["indexes"], name


@pytest.fixture
def schema(raw_url: str) -> Iterator[str]:
    name = f"cv_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(raw_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}_state" CASCADE')


def convert(source: Path, out: Path, report: Path, *extra: str) -> dict[str, Any]:
    code, _, err = run("convert", str(source), "-o", str(out), "--report", str(report), *extra)
    assert code == 3, err  # converted, with changes to review; nothing flagged
    doc: dict[str, Any] = json.loads(report.read_text())
    assert doc["summary"]["flagged"] == 0
    return doc


def load_into_dsql(out: Path, dsql_url: str, schema: str, *, search_path: bool) -> None:
    url = with_options(dsql_url, schema) if search_path else dsql_url
    code, _, err = run("sql", "-f", str(out), "--url", url, "--allow-destructive",
                       "--state-schema", f"{schema}_state")
    assert code == 0, err


def load_original(sample: str, tmp_path: Path, scratch_url: str) -> None:
    """The original, as written, into plain PostgreSQL; Chinook's first three statements
    (DROP/CREATE DATABASE, \\c) would leave the scratch database, so they are cut here."""
    original = (SAMPLES / sample).read_text(encoding="utf-8")
    if sample.startswith("chinook"):
        assert original.count("chinook_serial") == 3
        original = re.sub(r"^(DROP DATABASE|CREATE DATABASE|\\c) .*$", "", original,
                          flags=re.MULTILINE)
    plain = tmp_path / "original.sql"
    plain.write_text(original, encoding="utf-8")
    psql(scratch_url, plain)


@pytest.mark.parametrize("sample", ["northwind-pg_dump.sql", "chinook-postgresql.sql"])
def test_sample_converts_loads_and_matches_plain_postgresql(
        sample: str, tmp_path: Path, dsql_url: str, raw_url: str, scratch_url: str,
        schema: str) -> None:
    source = SAMPLES / sample
    out, report = tmp_path / "out.sql", tmp_path / "report.json"
    doc = convert(source, out, report)
    load_original(sample, tmp_path, scratch_url)

    with psycopg.connect(raw_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    load_into_dsql(out, dsql_url, schema, search_path=True)

    with psycopg.connect(scratch_url) as src, psycopg.connect(raw_url) as dst:
        want, got = table_facts(src, "public"), table_facts(dst, schema)
    assert len(want) in (8, 11, 14)  # Chinook's 11 tables, Northwind's 14
    assert sum(t["rows"] for t in want.values()) > 3000
    assert_same(want, got)
    removed = {c["statement"].split()[0] for c in doc["changes"] if c["action"] == "removed"}
    assert removed <= {"SET", "DROP", "CREATE", "\\c"}


def test_on_classic_the_foreign_keys_are_removed_and_all_else_matches(
        tmp_path: Path, classic_instance: LocalInstance, scratch_url: str, schema: str) -> None:
    out, report = tmp_path / "out.sql", tmp_path / "report.json"
    doc = convert(SAMPLES / "chinook-postgresql.sql", out, report, "--profile", "classic")
    fk_removals = [c for c in doc["changes"] if c["action"] == "removed"
                   and c["rule"] == "foreign_key"]
    assert len(fk_removals) == 11 and all("parent row exists" in c["follow_up"]
                                          for c in fk_removals)
    load_original("chinook-postgresql.sql", tmp_path, scratch_url)
    raw = classic_instance.raw_url()
    try:
        with psycopg.connect(raw, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        load_into_dsql(out, classic_instance.url(), schema, search_path=True)
        with psycopg.connect(scratch_url) as src, psycopg.connect(raw) as dst:
            want, got = table_facts(src, "public"), table_facts(dst, schema)
    finally:
        with psycopg.connect(raw, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}_state" CASCADE')
    for facts in want.values():  # what classic cannot hold: the foreign keys
        facts["constraints"] = [c for c in facts["constraints"] if c[1] != "f"]
    assert_same(want, got)


def test_a_real_pg_dump_with_partitions_enums_serials_and_views(
        tmp_path: Path, dsql_url: str, raw_url: str, scratch_url: str, schema: str) -> None:
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    psql(scratch_url, HERE / "data" / "rich-source.sql", search_path=schema)
    dump = tmp_path / "dump.sql"
    subprocess.run([find_binaries().path("pg_dump"), "-d", scratch_url, "-n", schema,
                    "-f", str(dump)], check=True, capture_output=True)
    out, report = tmp_path / "out.sql", tmp_path / "report.json"
    doc = convert(dump, out, report)
    # the SQL function's body names `account` unqualified, as written: like the source's
    # sessions, the run uses the schema as its search_path (DSQL checks function bodies)
    load_into_dsql(out, dsql_url, schema, search_path=True)

    with psycopg.connect(scratch_url) as src, psycopg.connect(raw_url) as dst:
        want, got = table_facts(src, schema), table_facts(dst, schema)
        assert sorted(want) == ["account", "event", "invoice"]
        # the partitions' indexes and keys are the parent's: compare without them
        assert_same(want, got)
        # behaviour kept: the identity continues after the dump's rows, the enum is checked,
        # the view and the SQL function answer as in the source
        view = f'SELECT count(*) FROM "{schema}".happy_account'
        assert dst.execute(view).fetchone() == src.execute(view).fetchone() == (20,)
        dst.execute(f'SET search_path = "{schema}"')
        assert dst.execute("SELECT account_count()").fetchone() == (60,)
    with psycopg.connect(dsql_url, autocommit=True) as conn:
        row = conn.execute(f'INSERT INTO "{schema}".account (email) VALUES (%s) RETURNING id',
                           ("new@example.com",)).fetchone()
        assert row == (61,)
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(f"INSERT INTO \"{schema}\".invoice (status) VALUES ('angry')")
    actions = {(c["action"], c["statement"].split()[0]) for c in doc["changes"]}
    assert ("removed", "CREATE") in actions  # the trigger, its function, the policy, ...
    messages = " ".join(c["message"] for c in doc["changes"])
    for expected in ("PARTITION BY removed", "an enum", "array literal", "trigger",
                     "row-level security", "GENERATED ALWAYS became BY DEFAULT"):
        assert expected in messages, expected


def test_a_second_real_pg_dump_with_identity_domains_storage_and_index_forms(
        tmp_path: Path, dsql_url: str, raw_url: str, scratch_url: str, schema: str) -> None:
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    psql(scratch_url, HERE / "data" / "more-source.sql", search_path=schema)
    dump = tmp_path / "dump.sql"
    subprocess.run([find_binaries().path("pg_dump"), "-d", scratch_url, "-n", schema,
                    "-f", str(dump)], check=True, capture_output=True)
    out, report = tmp_path / "out.sql", tmp_path / "report.json"
    doc = convert(dump, out, report)
    load_into_dsql(out, dsql_url, schema, search_path=False)
    with psycopg.connect(scratch_url) as src, psycopg.connect(raw_url) as dst:
        want, got = table_facts(src, schema), table_facts(dst, schema)
        assert sorted(want) == ["dept", "emp", "scratchpad"]
        assert_same(want, got)
        size = f'SELECT sum(n) FROM "{schema}".dept_size'
        assert dst.execute(size).fetchone() == src.execute(size).fetchone() == (3200,)
    assert doc["summary"]["split"] == 1  # the 3,200-row COPY
