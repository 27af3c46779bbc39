"""Proof on public samples: the MySQL front end's output loads into plain PostgreSQL with every
table, primary key, foreign key, index and row of the source.

The source side is read *independently* of the converter: a small scanner below decodes the
MySQL INSERT literals by MySQL's documented escape rules, and the DDL facts (keys, indexes) are
read with regular expressions; the Chinook PostgreSQL edition, loaded as is, is a second witness
for the data.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pglast
import psycopg
import pytest

from dsql_migrate.convert import Action
from dsql_migrate.convert.mysql import mysql_to_postgresql

pytestmark = pytest.mark.integration


def _samples() -> Path:
    """The public samples, kept beside the tests (licence: samples/LICENSE-chinook)."""
    return Path(__file__).parent / "samples"


# --- an independent reading of MySQL INSERT literals (MySQL manual, "String Literals") -------

_ESCAPES = {"0": "\0", "'": "'", '"': '"', "b": "\b", "n": "\n", "r": "\r", "t": "\t",
            "Z": "\x1a", "\\": "\\", "%": "\\%", "_": "\\_"}


def _mysql_string(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    out: list[str] = []
    i = start + 1
    while True:
        char = text[i]
        if char == "\\":
            nxt = text[i + 1]
            out.append(_ESCAPES.get(nxt, nxt))  # any other \x is x
            i += 2
        elif char == quote and text[i + 1 : i + 2] == quote:
            out.append(quote)
            i += 2
        elif char == quote:
            return "".join(out), i + 1
        else:
            out.append(char)
            i += 1


def mysql_inserts(text: str) -> dict[str, list[list[Any]]]:
    """Rows per table of every ``INSERT INTO `t` (...) VALUES (...), ...;`` in a script."""
    rows: dict[str, list[list[Any]]] = {}
    for match in re.finditer(r"INSERT INTO `(\w+)`(?: \([^)]*\))? VALUES", text):
        table_rows = rows.setdefault(match.group(1), [])
        i = match.end()
        row: list[Any] | None = None
        while True:
            char = text[i]
            if char == ";" and row is None:
                break
            if char == "(":
                row = []
                i += 1
            elif char == ")":
                assert row is not None
                table_rows.append(row)
                row = None
                i += 1
            elif char in "'\"" or (char == "N" and text[i + 1] == "'"):
                value, i = _mysql_string(text, i + (char == "N"))
                assert row is not None
                row.append(value)
            elif text.startswith("NULL", i):
                assert row is not None
                row.append(None)
                i += 4
            elif char in "-0123456789.":
                number = re.match(r"-?[0-9.]+(?:[eE][-+]?\d+)?", text[i:])
                assert number is not None and row is not None
                row.append(Decimal(number.group(0)))
                i += len(number.group(0))
            else:
                assert char in " ,\t\r\n", (char, text[i - 40 : i + 40])
                i += 1
    return rows


def _same(stored: Any, source: Any) -> bool:
    if source is None or stored is None:
        return stored is source
    if isinstance(stored, datetime):  # MySQL reads any punctuation as a date delimiter
        parts = [int(part) for part in re.split(r"\D+", source) if part]
        return list(stored.timetuple())[: len(parts)] == parts
    if isinstance(stored, (int, Decimal)) and not isinstance(stored, bool):
        return Decimal(stored) == Decimal(source)
    return bool(stored == source)


# --- loading --------------------------------------------------------------------------------


def load(url: str, statements: Iterator[str]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql.encode("utf-8"))


def rows_by_key(url: str, table: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(f'SELECT * FROM "{table}" ORDER BY 1').fetchall()


def catalog(url: str) -> dict[str, set[tuple[str, ...]]]:
    queries = {
        "tables": "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()",
        "primary keys": """SELECT c.conrelid::regclass::text, c.conname,
                                  string_agg(a.attname, ',' ORDER BY a.attnum)
                           FROM pg_constraint c JOIN pg_attribute a
                             ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
                           WHERE c.contype = 'p' AND c.connamespace = current_schema()::regnamespace
                           GROUP BY 1, 2""",
        "foreign keys": """SELECT c.conrelid::regclass::text, c.conname,
                                  (SELECT attname FROM pg_attribute
                                   WHERE attrelid = c.conrelid AND attnum = c.conkey[1]),
                                  c.confrelid::regclass::text,
                                  (SELECT attname FROM pg_attribute
                                   WHERE attrelid = c.confrelid AND attnum = c.confkey[1])
                           FROM pg_constraint c WHERE c.contype = 'f'
                             AND c.connamespace = current_schema()::regnamespace""",
        "indexes": """SELECT i.indexrelid::regclass::text, i.indrelid::regclass::text,
                             a.attname
                      FROM pg_index i JOIN pg_attribute a
                        ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                      JOIN pg_class t ON t.oid = i.indrelid
                      WHERE NOT i.indisprimary
                        AND t.relnamespace = current_schema()::regnamespace""",
    }
    with psycopg.connect(url) as conn:
        return {
            name: {tuple(str(v).strip('"') for v in row) for row in conn.execute(sql)}
            for name, sql in queries.items()
        }


def chinook_ddl_facts(text: str) -> dict[str, set[tuple[str, ...]]]:
    """What the Chinook MySQL script declares, read with regular expressions."""
    tables = {(name,) for name in re.findall(r"CREATE TABLE `(\w+)`", text)}
    primary = set()
    for table, body in re.findall(r"CREATE TABLE `(\w+)`\s*\((.*?)\n\);", text, re.S):
        name, columns = re.search(r"CONSTRAINT `(\w+)` PRIMARY KEY\s*\(([^)]*)\)", body).groups()
        primary.add((table, name, ",".join(c.strip(" `") for c in columns.split(","))))
    foreign = set(
        re.findall(
            r"ALTER TABLE `(\w+)` ADD CONSTRAINT `(\w+)`\s+FOREIGN KEY \(`(\w+)`\) "
            r"REFERENCES `(\w+)` \(`(\w+)`\)",
            text,
        )
    )
    indexes = {
        (name, table, column)
        for name, table, column in re.findall(r"CREATE INDEX `(\w+)` ON `(\w+)` \(`(\w+)`\)", text)
    }
    return {"tables": tables, "primary keys": primary, "foreign keys": foreign,
            "indexes": indexes}


# --- Chinook --------------------------------------------------------------------------------


def test_chinook_mysql_converts_and_loads_with_every_table_key_index_and_row(
    scratch_url: str,
) -> None:
    text = (_samples() / "chinook-mysql.sql").read_text(encoding="utf-8")
    out, changes = mysql_to_postgresql(text, "chinook-mysql.sql")
    # nothing the schema holds was removed: only the database statements
    removed = [c for c in changes if c.action is Action.REMOVED]
    assert [c.line for c in removed] == [19, 25, 28]
    load(scratch_url, (sql for _line, sql in out))

    found, declared = catalog(scratch_url), chinook_ddl_facts(text)
    for kind in declared:
        assert found[kind] == declared[kind], (kind, found[kind] ^ declared[kind])
    assert [len(declared[kind]) for kind in declared] == [11, 11, 11, 11]
    source = mysql_inserts(text)
    assert sum(len(rows) for rows in source.values()) == 15607
    for table, rows in source.items():
        stored = rows_by_key(scratch_url, table)
        assert len(stored) == len(rows), table
        if len(stored[0]) == len(rows[0]) + 1:
            # the INSERTs leave the AUTO_INCREMENT key out: MySQL numbers the rows 1, 2, ...
            # in order, and the foreign keys of the other tables' rows count on it
            assert [row[0] for row in stored] == list(range(1, len(rows) + 1)), table
            pairs = [(list(row[1:]), src) for row, src in zip(stored, rows, strict=True)]
        else:  # the rows carry their whole key: compare them as sets
            key = lambda row: tuple(str(value) for value in row)  # noqa: E731
            pairs = list(
                zip(sorted(map(list, stored), key=key), sorted(rows, key=key), strict=True)
            )
        for stored_row, source_row in pairs:
            same = [_same(a, b) for a, b in zip(stored_row, source_row, strict=True)]
            assert all(same), (table, stored_row, source_row)


def test_chinook_postgresql_edition_holds_the_same_rows_as_the_mysql_script(
    scratch_url: str,
) -> None:
    """A second witness: the PostgreSQL edition of Chinook, loaded as is.

    The editions differ in two ways only: four Track names, where the MySQL script writes ``\\ ``,
    which MySQL reads as a space (an unknown escape drops its backslash) while PostgreSQL keeps
    the backslash; and one city, 'Edinburgh ' with a trailing space in the MySQL script (a
    customer and 7 invoices), trimmed in the PostgreSQL edition.
    """
    samples = _samples()
    pg_text = (samples / "chinook-postgresql.sql").read_text(encoding="utf-8")
    statements = [
        s for s in pglast.split(pg_text.replace("\\c chinook_serial;", ""))
        if "DATABASE" not in s
    ]
    load(scratch_url, iter(statements))
    source = mysql_inserts((samples / "chinook-mysql.sql").read_text(encoding="utf-8"))
    pg_tables = re.findall(r"^CREATE TABLE (\w+)", pg_text, re.M)
    my_tables = re.findall(r"^CREATE TABLE `(\w+)`", (samples / "chinook-mysql.sql").read_text(
        encoding="utf-8"), re.M)
    assert len(pg_tables) == len(my_tables) == 11
    differences: list[tuple[str, str]] = []
    for pg_table, my_table in zip(pg_tables, my_tables, strict=True):
        stored = rows_by_key(scratch_url, pg_table)
        rows = source[my_table]
        assert len(stored) == len(rows), my_table
        offset = len(stored[0]) - len(rows[0])  # the generated key, when the INSERT leaves it
        for stored_row, source_row in zip(stored, rows, strict=True):
            for value, expected in zip(stored_row[offset:], source_row, strict=True):
                if not _same(value, expected):
                    differences.append((value, expected))
    backslash = [(v, e) for v, e in differences if v.replace(" \\ ", "  ") == e]
    trailing_space = [(v, e) for v, e in differences if (v, e) == ("Edinburgh", "Edinburgh ")]
    assert len(backslash) == 4 and len(trailing_space) == 8
    assert len(differences) == 12


# --- a mysqldump with the usual housekeeping, routines and MySQL-only column types -----------

DUMP = Path(__file__).parent / "data" / "mysqldump-shop.sql"


def test_a_mysqldump_loads_with_its_values_byte_for_byte(scratch_url: str) -> None:
    out, changes = mysql_to_postgresql(DUMP.read_text(encoding="utf-8"), "shop.sql")
    load(scratch_url, (sql for _line, sql in out))
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        orders = conn.execute(
            'SELECT id, user_id, status, flags, total, paid, note, created_at::text,'
            ' updated_at AT TIME ZONE \'UTC\', shipped_on FROM "order" ORDER BY id'
        ).fetchall()
        users = conn.execute('SELECT id, name, avatar, age FROM "user" ORDER BY id').fetchall()
        # the identities continue where MySQL's AUTO_INCREMENT would
        next_user = conn.execute(
            'INSERT INTO "user" (email) VALUES (\'new@example.com\') RETURNING id'
        ).fetchone()
        fk = conn.execute(
            "SELECT conname FROM pg_constraint WHERE contype = 'f'"
        ).fetchall()
        triggers = conn.execute("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal").fetchone()
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE \"order\" SET status = 'lost' WHERE id = 1001")
    assert [row[:6] for row in orders] == [
        (1001, 7, "paid", "gift,express", Decimal("19.99"), True),
        (1002, 7, "new", "", Decimal("0.00"), False),
        (1003, 8, "shipped", "express", Decimal("5.00"), True),
    ]
    assert orders[0][6] == "it's \"quoted\"; a \\ backslash\nnew line\ttab \x1a end"
    assert orders[2][6] == "caf├⌐? no: café, 日本, 😀 and 50\\% \\_ off"
    assert orders[0][7] == "2024-01-02 03:04:05"
    assert str(orders[1][8]) == "2024-03-01 00:00:00"  # written in the dump's zone, +00:00
    assert orders[1][9] is None  # the zero date
    assert users == [
        (7, "Ann O'Neil", b"\x00'\\GIF89a", 34),
        (8, None, bytes.fromhex("89504E470D0A1A0A00FF"), None),
    ]
    assert next_user == (9,)
    assert fk == [("fk_order_user",)]
    assert triggers == (0,)
    removed = {c.line for c in changes if c.action is Action.REMOVED}
    assert {57, 88, 90, 96, 98}.issubset(removed)  # trigger, procedure, event and their drops


# --- strings as mysqldump escapes them, through the converter into PostgreSQL ---------------

_DUMP_ESCAPES = {0: b"\\0", 10: b"\\n", 13: b"\\r", 92: b"\\\\", 39: b"\\'", 34: b'\\"',
                 26: b"\\Z"}


def mysqldump_literal(value: bytes) -> bytes:
    """``value`` as mysqldump writes it (mysql_real_escape_string escapes these 7 bytes)."""
    return b"'" + b"".join(_DUMP_ESCAPES.get(byte, bytes([byte])) for byte in value) + b"'"


def test_values_escaped_as_mysqldump_escapes_them_arrive_unchanged(scratch_url: str) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    alphabet = st.characters(blacklist_categories=("Cs",), blacklist_characters="\0")
    rows = st.lists(
        st.tuples(st.text(alphabet=alphabet, max_size=40), st.binary(max_size=40)),
        min_size=1,
        max_size=30,
    )

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(rows=rows)
    def round_trip(rows: list[tuple[str, bytes]]) -> None:
        values = b",".join(
            b"(%d,%s,%s)" % (number, mysqldump_literal(text.encode()), mysqldump_literal(blob))
            for number, (text, blob) in enumerate(rows, start=1)
        )
        script = b"CREATE TABLE s (id INT PRIMARY KEY, t LONGTEXT, b LONGBLOB);\n"
        script += b"INSERT INTO s VALUES " + values + b";\n"
        # a dump is bytes: blobs need not be UTF-8, so it is read with surrogateescape
        out, _ = mysql_to_postgresql(script.decode("utf-8", "surrogateescape"), "values.sql")
        with psycopg.connect(scratch_url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS s")
            for _line, sql in out:
                conn.execute(sql.encode("utf-8"))
            stored = conn.execute("SELECT t, b FROM s ORDER BY id").fetchall()
        assert [(text, bytes(blob)) for text, blob in stored] == rows

    round_trip()


def test_mariadb_and_mysql8_features_load(scratch_url: str) -> None:
    """Partitioned tables, generated columns, expression defaults, FLOAT UNSIGNED ZEROFILL,
    BIT(n), JSON, views as mysqldump writes them, an index named like a later table."""
    path = Path(__file__).parent / "data" / "mysql-features.sql"
    out, changes = mysql_to_postgresql(path.read_text(encoding="utf-8"), "features.sql")
    load(scratch_url, (sql for _line, sql in out))
    with psycopg.connect(scratch_url) as conn:
        row = conn.execute(
            "SELECT email, doc::text, full_name, score, y, bits, nick FROM person"
        ).fetchone()
        view = conn.execute("SELECT count(*) FROM v_person").fetchone()
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO person (email, score) VALUES ('x@y', -1)")
    assert row == ("a@b", '{"k": [1, "x"]}', "a@b x", 1.5, 2024, b"\x00\x05", None)
    assert view == (0,)
    assert "PARTITION BY dropped" in " ".join(c.message for c in changes)
