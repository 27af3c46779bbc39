"""The snapshot answers Alembic's reflection exactly as the server does.

:class:`~dsql_migrate.diff.reflected.SnapshotInspector` must give, for every table it takes
on, what SQLAlchemy's inspector reflects from the server: compared here method by method on
every planner case and on hand-picked edge cases, and then as ops (Alembic fed by the
snapshot vs Alembic reflecting for real). Tables it does not take on must raise
``Unsupported`` (the caller then reflects for real), never answer wrong.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from dsql_migrate.catalog import Snapshot, snapshot
from dsql_migrate.diff import Desired, compare, diff_live, engine_for
from dsql_migrate.diff.reflected import (
    ReflectionFacts,
    SnapshotInspector,
    Unsupported,
    read_reflection_facts,
)
from dsql_migrate.diff.unchanged import Facts, read_facts

from .planner.test_cases import CASE_NAMES, desired_of, load_case
from .test_diff_unchanged import assert_same

METHODS = ("columns", "pk_constraint", "foreign_keys", "indexes", "unique_constraints",
           "table_comment", "check_constraints", "table_options")
_ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def comparable(value: Any) -> Any:
    """Reflected data with SQLAlchemy type objects by their repr (they have no equality)."""
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [comparable(v) for v in value]
    if isinstance(value, sa.types.TypeEngine):
        return _ADDRESS.sub("", repr(value))
    return value


@contextmanager
def inspectors(url: str) -> Iterator[tuple[sa.engine.Inspector, SnapshotInspector | None,
                                           Snapshot, Facts, ReflectionFacts]]:
    """The real inspector and the snapshot's (None when it takes nothing on) over ``url``."""
    with psycopg.connect(url, autocommit=True) as raw:
        live = snapshot(raw)
        with raw.transaction():
            facts = read_facts(raw)
        reflection = read_reflection_facts(raw, [t.name for t in live.tables.values()])
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            try:
                fake: SnapshotInspector | None = SnapshotInspector(
                    conn, live, facts.default_schema, reflection)
            except Unsupported:
                fake = None
            yield sa.inspect(conn), fake, live, facts, reflection
    finally:
        engine.dispose()


def compare_inspectors(url: str) -> tuple[int, int]:
    """Every table alone and all at once, every method: the snapshot's answer is the
    server's or ``Unsupported``. Returns (tables answered, tables refused)."""
    answered = refused = 0
    with inspectors(url) as (real, fake, _live, _facts, _reflection):
        if fake is None:
            return 0, 1
        names = real.get_table_names()
        assert sorted(fake.get_table_names()) == sorted(names)
        for name in names:
            try:
                got = {m: comparable(dict(getattr(fake, f"get_multi_{m}")(
                    filter_names=[name]))) for m in METHODS}
            except Unsupported:
                refused += 1
                continue
            want = {m: comparable(dict(getattr(real, f"get_multi_{m}")(
                filter_names=[name]))) for m in METHODS}
            assert got == want, name
            answered += 1
        if refused == 0 and names:
            for m in METHODS:
                assert comparable(dict(getattr(fake, f"get_multi_{m}")())) == comparable(
                    dict(getattr(real, f"get_multi_{m}")())), m
    return answered, refused


ANSWERED: dict[str, int] = {}


@pytest.mark.parametrize("name", CASE_NAMES)
def test_planner_cases_reflect_as_the_server(name: str, raw_url: str, scratch_url: str) -> None:
    case = load_case(name)
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        conn.execute((case.folder / "live.sql").read_text().encode())
    answered, _refused = compare_inspectors(scratch_url)
    ANSWERED[name] = answered
    # and the ops: Alembic fed by the snapshot, Alembic reflecting for real
    desired = desired_of(case, raw_url)
    with inspectors(scratch_url) as (real, _fake, live, facts, reflection):
        conn = real.bind
        assert isinstance(conn, sa.Connection)
        fast = compare(conn, live, desired.metadata, renames=case.renames(), facts=facts,
                       reflection=lambda _names: reflection)
        full = compare(conn, live, desired.metadata, renames=case.renames(), facts=facts)
    assert_same(fast, full)


def test_the_planner_cases_reach_the_snapshot_path() -> None:
    """Not every table is refused: the comparison above compares something."""
    if len(ANSWERED) < len(CASE_NAMES):
        pytest.skip("needs the planner cases above")
    assert sum(ANSWERED.values()) > len(CASE_NAMES)


EDGE_LIVE = """
CREATE TABLE parent (id bigint PRIMARY KEY, code text, amount numeric(12, 2) DEFAULT 0,
                     born timestamp(3) with time zone, flags boolean[] NOT NULL,
                     ident bigint GENERATED BY DEFAULT AS IDENTITY (START 5 CACHE 7),
                     doc jsonb, t time without time zone, i interval);
COMMENT ON TABLE parent IS 'a comment';
COMMENT ON COLUMN parent.code IS 'a column comment';
CREATE TABLE child (id bigint, parent_id bigint REFERENCES parent (id) ON DELETE CASCADE
                    DEFERRABLE INITIALLY DEFERRED, name varchar(20), tenant uuid,
                    CONSTRAINT child_pk PRIMARY KEY (id) INCLUDE (name),
                    CONSTRAINT child_name_key UNIQUE NULLS NOT DISTINCT (name, tenant));
ALTER TABLE child ADD CONSTRAINT child_parent_nv FOREIGN KEY (tenant)
    REFERENCES child_tenant_target (tenant) NOT VALID;
CREATE INDEX ix_child_cover ON child (tenant) INCLUDE (name);
CREATE UNIQUE INDEX ix_child_part ON child (name) WHERE name IS NOT NULL;
CREATE TABLE opts (id bigint PRIMARY KEY) WITH (fillfactor = 70);
CREATE TABLE empty_one ();
CREATE TABLE with_check (id bigint PRIMARY KEY, n int CHECK (n > 0));
CREATE TABLE generated (id bigint PRIMARY KEY, g bigint GENERATED ALWAYS AS (id * 2) STORED);
CREATE TABLE fancy (id bigint PRIMARY KEY, name text);
CREATE INDEX ix_fancy_desc ON fancy (name DESC);
CREATE INDEX ix_fancy_ops ON fancy (name text_pattern_ops);
CREATE INDEX ix_fancy_lower ON fancy (lower(name));
CREATE TABLE "Quoted" ("Id" bigint PRIMARY KEY);
CREATE TABLE serials (id serial PRIMARY KEY);
COMMENT ON CONSTRAINT fancy_pkey ON fancy IS 'a constraint comment';
"""


def test_edge_cases_reflect_as_the_server_or_are_refused(scratch_url: str) -> None:
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE child_tenant_target (tenant uuid PRIMARY KEY)")
        conn.execute(EDGE_LIVE)
    answered, refused = compare_inspectors(scratch_url)
    # parent, child, opts, empty_one, child_tenant_target are restated; with_check, generated,
    # fancy, "Quoted" are refused (serials: the sequence default is restated)
    assert (answered, refused) == (6, 4)


def test_a_search_path_beyond_the_default_schema_reflects_for_real(scratch_url: str) -> None:
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA other; CREATE TABLE other.hidden (id bigint PRIMARY KEY);"
                     "CREATE TABLE shown (id bigint PRIMARY KEY)")
        conn.execute(f'ALTER DATABASE "{conn.info.dbname}" SET search_path = public, other')
    assert compare_inspectors(scratch_url) == (0, 1)


def test_the_benchmark_change_kinds_are_answered_without_reflection_queries(
        scratch_url: str) -> None:
    """An added column, a type change, a new index and a new table: the snapshot answers
    Alembic, no reflection query reaches the server, and the ops are Alembic's."""
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        for i in range(3):
            conn.execute(f"CREATE TABLE t{i} (id bigint PRIMARY KEY, name varchar(40), "
                         f"parent_id bigint{f' REFERENCES t{i - 1} (id)' if i else ''})")
            conn.execute(f"CREATE INDEX ix_t{i}_name ON t{i} (name)")
    metadata = sa.MetaData()
    for i in range(3):
        table = sa.Table(
            f"t{i}", metadata, sa.Column("id", sa.BigInteger, primary_key=True,
                                         autoincrement=False),
            sa.Column("name", sa.String(80 if i == 1 else 40)),
            sa.Column("parent_id", sa.BigInteger, sa.ForeignKey(f"t{i - 1}.id") if i else None),
            *([sa.Column("status", sa.Text, server_default="new")] if i == 0 else []))
        sa.Index(f"ix_t{i}_name", table.c.name)
        if i == 2:
            sa.Index("ix_t2_parent", table.c.parent_id)
    sa.Table("brand_new", metadata, sa.Column("id", sa.BigInteger, primary_key=True))
    sent: list[str] = []
    original = psycopg.Cursor.execute

    def spy(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(str(query))
        return original(self, query, *args, **kwargs)

    psycopg.Cursor.execute = spy  # type: ignore[method-assign]
    try:
        fast, _ = diff_live(scratch_url, Desired(metadata=metadata, source="t"))
    finally:
        psycopg.Cursor.execute = original  # type: ignore[method-assign]
    full, _ = diff_live(scratch_url, Desired(metadata=metadata, source="t"), exhaustive=True)
    assert_same(fast, full)
    assert len(fast.ops) == 4
    # SQLAlchemy's reflection queries name the catalogs pg_catalog.pg_*; ours do not
    assert [q for q in sent if "pg_catalog.pg_" in q] == []
