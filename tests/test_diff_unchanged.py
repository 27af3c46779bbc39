"""The diff that leaves provably unchanged tables out of Alembic's comparison equals the diff
that compares every table with Alembic (``exhaustive=True``, the way it was done before):
on every planner case, on hand-picked edge cases, and on random models and live schemas."""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic.operations import ops
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql

from dsql_migrate.catalog import Snapshot, snapshot
from dsql_migrate.diff import Desired, Diff, Renames, diff_live, engine_for
from dsql_migrate.diff.unchanged import PLAIN_TYPES, Facts, read_facts, unchanged_tables

from .planner.test_cases import CASE_NAMES, desired_of, load_case

_ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def normal(value: Any) -> Any:
    """A comparable form of an op and everything it holds (SQLAlchemy objects by repr; a
    table's constraints are a set, so their order is no difference)."""
    if isinstance(value, ops.CreateTableOp):
        return ("CreateTableOp", value.table_name, value.schema, normal(value.kw),
                tuple(sorted(repr(normal(c)) for c in value.columns)))
    if isinstance(value, ops.MigrateOperation):
        return (type(value).__name__,
                tuple(sorted((k, normal(v)) for k, v in vars(value).items() if k != "_reverse")))
    if isinstance(value, sa.Table):
        return ("Table", value.name, value.schema, normal(list(value.columns)),
                tuple(sorted(_ADDRESS.sub("", repr(c)) for c in value.constraints)),
                tuple(sorted(_ADDRESS.sub("", repr(i)) for i in value.indexes)))
    if isinstance(value, sa.Constraint):
        return (type(value).__name__, value.name, tuple(c.name for c in value.columns))
    if isinstance(value, sa.DefaultClause):
        return ("DefaultClause", str(value.arg), value.for_update)
    if isinstance(value, sa.sql.ClauseElement) and not isinstance(value, sa.Column | sa.Table):
        return (type(value).__name__, str(value))
    if isinstance(value, list | tuple):
        return tuple(normal(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), normal(v)) for k, v in value.items()))
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return _ADDRESS.sub("", repr(value))


def assert_same(fast: Diff, full: Diff) -> None:
    """Same ops (a dropped table's ops may come in another order among the drops: Alembic
    iterates them from a set) and the same warnings."""
    assert fast.warnings == full.warnings
    assert sorted(map(repr, map(normal, fast.ops))) == sorted(map(repr, map(normal, full.ops)))
    dropped = {op.table_name for op in full.ops if isinstance(op, ops.DropTableOp)}

    def kept(diff: Diff) -> list[Any]:
        return [normal(op) for op in diff.ops if getattr(op, "table_name", None) not in dropped]

    assert kept(fast) == kept(full)


def both(url: str, desired: Desired, renames: Renames | None = None) -> tuple[Diff, Diff]:
    fast, _ = diff_live(url, desired, renames=renames)
    full, _ = diff_live(url, desired, renames=renames, exhaustive=True)
    return fast, full


@pytest.mark.parametrize("name", CASE_NAMES)
def test_planner_cases_diff_as_alembic_alone(name: str, raw_url: str, scratch_url: str) -> None:
    case = load_case(name)
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        conn.execute((case.folder / "live.sql").read_text().encode())
    desired = desired_of(case, raw_url)
    fast, full = both(scratch_url, desired, case.renames())
    assert_same(fast, full)
    # the same desired schema against itself: nothing changes either way
    again = Desired(metadata=desired.metadata, source="again")
    assert_same(*both(scratch_url, again, case.renames()))


EDGE_LIVE = """
CREATE TABLE parent (id bigint PRIMARY KEY, code text COLLATE "C");
CREATE TABLE child (id bigint PRIMARY KEY, parent_id bigint REFERENCES parent (id)
                    ON DELETE CASCADE, name varchar(20), tags text[],
                    CONSTRAINT child_name_key UNIQUE (name));
CREATE INDEX ix_child_lower ON child (lower(name));
CREATE TABLE "Mixed" ("Id" bigint PRIMARY KEY, "select" integer);
CREATE INDEX "ix_Mixed_select" ON "Mixed" ("select");
CREATE TABLE plain (id bigint PRIMARY KEY, n numeric(10, 2) NOT NULL, c char(3),
                    t timestamp with time zone, d double precision);
COMMENT ON TABLE plain IS 'live comment';
CREATE TABLE gone (id bigint PRIMARY KEY);
CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);
"""


def edge_model(variant: int) -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table("parent", metadata, sa.Column("id", sa.BigInteger, primary_key=True),
             sa.Column("code", sa.Text))
    child = sa.Table(
        "child", metadata, sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("parent_id", sa.BigInteger,
                  sa.ForeignKey("parent.id", ondelete=None if variant else "CASCADE")),
        sa.Column("name", sa.String(20)), sa.Column("tags", postgresql.ARRAY(sa.Text)),
        sa.UniqueConstraint("name", name="child_name_key"))
    sa.Index("ix_child_lower", sa.func.lower(child.c.name))
    mixed = sa.Table("Mixed", metadata, sa.Column("Id", sa.BigInteger, primary_key=True),
                     sa.Column("select", sa.Integer))
    sa.Index("ix_Mixed_select", mixed.c.select)
    sa.Table("plain", metadata, sa.Column("id", sa.BigInteger, primary_key=True),
             sa.Column("n", sa.Numeric(10, 2), nullable=bool(variant)),
             sa.Column("c", sa.CHAR(3)), sa.Column("t", sa.DateTime(timezone=True)),
             sa.Column("d", sa.Float),
             comment="live comment" if variant else "another comment")
    if variant:
        sa.Table("fresh_a", metadata, sa.Column("id", sa.BigInteger, primary_key=True))
        sa.Table("fresh_b", metadata, sa.Column("id", sa.BigInteger, primary_key=True),
                 sa.Column("a_id", sa.BigInteger, sa.ForeignKey("fresh_a.id")))
    return metadata


@pytest.mark.parametrize("variant", [0, 1])
def test_edge_cases_diff_as_alembic_alone(variant: int, scratch_url: str) -> None:
    """Collations, arrays, expression indexes, FK options, quoted names, comments, Alembic's
    version table, dropped and created tables."""
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        conn.execute(EDGE_LIVE.encode())
    fast, full = both(scratch_url, Desired(metadata=edge_model(variant), source="edge"))
    assert_same(fast, full)
    assert full.ops  # the cases differ: something to agree on


# -- random models -------------------------------------------------------------------------------

#: type factories (a fresh instance per column: an Enum belongs to its table)
TYPES: list[Any] = [
    sa.BigInteger, sa.Integer, sa.SmallInteger, sa.Text, lambda: sa.String(20),
    lambda: sa.String(40), sa.Boolean, lambda: sa.Numeric(10, 2), lambda: sa.Numeric(12, 2),
    sa.Uuid, sa.DateTime, lambda: sa.DateTime(timezone=True), sa.Date, sa.Float,
    sa.LargeBinary, sa.JSON, postgresql.JSONB, lambda: sa.CHAR(3), sa.Time,
    lambda: sa.String(20, collation="C"), lambda: sa.Enum("a", "b", name="kind"),
    lambda: postgresql.ARRAY(sa.Integer),
]
DEFAULTS = [None, None, None, "0", "x"]
#: identity keys by name (None: a plain key): the options Alembic compares, and one it
#: ignores on PostgreSQL (Oracle's order)
IDENTITIES: dict[str | None, dict[str, Any]] = {
    None: {}, "cache1": {"cache": 1}, "default": {}, "start5": {"start": 5, "cache": 1},
    "always": {"always": True, "cache": 1}, "cache20": {"cache": 20},
    "ordered": {"cache": 1, "oracle_order": True},
}
COMMENTS = [None, None, "", "a comment"]


def _textual(type_index: int) -> bool:
    """Whether the type takes the text defaults of :data:`DEFAULTS`."""
    type_ = TYPES[type_index]()
    return isinstance(type_, sa.String) and not isinstance(type_, sa.Enum)


@st.composite
def table_specs(draw: st.DrawFn) -> list[dict[str, Any]]:
    tables = []
    for t in range(draw(st.integers(1, 4))):
        columns = []
        for c in range(draw(st.integers(1, 4))):
            type_index = draw(st.integers(0, len(TYPES) - 1))
            default = draw(st.sampled_from(DEFAULTS))
            if default is not None and not _textual(type_index):
                default = None
            columns.append({"name": f"c{c}", "type": type_index,
                            "nullable": draw(st.booleans()), "default": default,
                            "comment": draw(st.sampled_from(COMMENTS))})
        tables.append({
            "name": f"t{t}", "columns": columns,
            "comment": draw(st.sampled_from(COMMENTS)),
            "identity": draw(st.sampled_from(list(IDENTITIES))),
            "index": draw(st.sampled_from([None, "named", "unnamed", "unique"])),
            "unique": draw(st.sampled_from([None, "named", "unnamed"])),
            "fk": draw(st.sampled_from([None, "plain", "cascade"])) if t else None,
        })
    return tables


def mutate(data: st.DataObject, tables: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of ``tables`` with a few random changes (none when the draw says so)."""
    out = [{**t, "columns": [dict(c) for c in t["columns"]]} for t in tables]
    for _ in range(data.draw(st.integers(0, 3))):
        table = data.draw(st.sampled_from(out))
        kind = data.draw(st.sampled_from(
            ["type", "nullable", "default", "comment", "table_comment", "index", "unique",
             "fk", "identity", "add", "drop", "drop_table"]))
        column = data.draw(st.sampled_from(table["columns"]))
        if kind == "type":
            column["type"] = data.draw(st.integers(0, len(TYPES) - 1))
            column["default"] = None
        elif kind in ("nullable",):
            column["nullable"] = not column["nullable"]
        elif kind == "default" and _textual(column["type"]):
            column["default"] = data.draw(st.sampled_from(DEFAULTS))
        elif kind == "comment":
            column["comment"] = data.draw(st.sampled_from(COMMENTS))
        elif kind == "table_comment":
            table["comment"] = data.draw(st.sampled_from(COMMENTS))
        elif kind in ("index", "unique"):
            table[kind] = data.draw(st.sampled_from([None, "named", "unnamed", "unique"]
                                                    if kind == "index"
                                                    else [None, "named", "unnamed"]))
        elif kind == "fk" and table["fk"] is not None:
            table["fk"] = data.draw(st.sampled_from(["plain", "cascade"]))
        elif kind == "identity":
            table["identity"] = data.draw(st.sampled_from(list(IDENTITIES)))
        elif kind == "add":
            table["columns"].append({"name": f"n{len(table['columns'])}", "type": 0,
                                     "nullable": True, "default": None, "comment": None})
        elif kind == "drop" and len(table["columns"]) > 1:
            table["columns"].remove(column)
        elif kind == "drop_table" and len(out) > 1 and table is out[-1]:
            out.remove(table)
    return out


def build(tables: list[dict[str, Any]]) -> sa.MetaData:
    metadata = sa.MetaData()
    for spec in tables:
        key = (sa.Column("id", sa.BigInteger, sa.Identity(**IDENTITIES[spec["identity"]]),
                         primary_key=True)
               if spec["identity"]
               else sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False))
        columns = [sa.Column(c["name"], TYPES[c["type"]](), nullable=c["nullable"],
                             server_default=c["default"], comment=c["comment"])
                   for c in spec["columns"]]
        if spec["fk"]:
            columns.append(sa.Column("ref", sa.BigInteger, sa.ForeignKey(
                "t0.id", ondelete="CASCADE" if spec["fk"] == "cascade" else None)))
        table = sa.Table(spec["name"], metadata, key, *columns, comment=spec["comment"])
        first = columns[0]
        if spec["index"]:
            sa.Index(None if spec["index"] == "unnamed" else f"ix_{spec['name']}_first",
                     first, unique=spec["index"] == "unique")
        if spec["unique"]:
            table.append_constraint(sa.UniqueConstraint(
                first, name=f"uq_{spec['name']}" if spec["unique"] == "named" else None))
    return metadata


def test_the_random_types_reach_both_paths() -> None:
    """The random types include ones the check takes on and ones it leaves to Alembic."""
    compiled = {str(t().compile(dialect=postgresql.dialect())).split("(")[0].lower()
                for t in TYPES}
    assert compiled & {"bigint", "text", "varchar", "numeric"}
    assert {"varchar", "integer[]", "kind"} <= compiled
    assert "bigint" in PLAIN_TYPES


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(tables=table_specs(), data=st.data())
def test_random_models_diff_as_alembic_alone(tables: list[dict[str, Any]], data: st.DataObject,
                                             scratch_url: str) -> None:
    desired = build(mutate(data, tables))
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    engine = engine_for(scratch_url)
    try:
        with engine.begin() as sa_conn:
            build(tables).create_all(sa_conn)
    except sa.exc.DBAPIError:
        reject()  # a combination PostgreSQL refuses (a unique json column): not a live schema
    finally:
        engine.dispose()
    fast, full = both(scratch_url, Desired(metadata=desired, source="random"))
    assert_same(fast, full)
    assert_same(*both(scratch_url, Desired(metadata=build(tables), source="as created")))


def created(url: str, metadata: sa.MetaData) -> tuple[Snapshot, Facts]:
    """``metadata`` created on ``url``; the snapshot and the facts the check reads."""
    engine = engine_for(url)
    try:
        with engine.begin() as sa_conn:
            metadata.create_all(sa_conn)
    finally:
        engine.dispose()
    with psycopg.connect(url) as conn:
        return snapshot(conn), read_facts(conn)


def test_plain_tables_are_proven_unchanged_and_changed_ones_are_not(scratch_url: str) -> None:
    """The check is not vacuous: a plain model created as it is is proven unchanged (so
    Alembic is not run at all), and each kind of change sends its table to Alembic."""
    def key() -> sa.Column[int]:
        return sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False)

    metadata = sa.MetaData()
    parent = sa.Table("parent", metadata, key(),
                      sa.Column("name", sa.String(40), nullable=False, comment="who"),
                      sa.UniqueConstraint("name", name="uq_parent_name"), comment="people")
    child = sa.Table("child", metadata, key(),
                     sa.Column("parent_id", sa.BigInteger, sa.ForeignKey(parent.c.id)),
                     sa.Column("amount", sa.Numeric(12, 2)))
    sa.Index("ix_child_parent", child.c.parent_id)
    live, facts = created(scratch_url, metadata)
    dialect = postgresql.psycopg.dialect()
    assert unchanged_tables(metadata.tables.values(), live, facts, dialect) == {
        (None, "parent"), (None, "child")}
    changed = sa.MetaData()
    sa.Table("parent", changed, key(),
             sa.Column("name", sa.String(80), nullable=False, comment="who"),
             sa.UniqueConstraint("name", name="uq_parent_name"), comment="people")
    sa.Table("child", changed, key(),
             sa.Column("parent_id", sa.BigInteger, sa.ForeignKey("parent.id",
                                                                 ondelete="CASCADE")),
             sa.Column("amount", sa.Numeric(12, 2)), sa.Index("ix_child_parent", "parent_id"))
    assert unchanged_tables(changed.tables.values(), live, facts, dialect) == set()


def test_identity_keys_are_proven_unchanged_by_alembics_own_option_comparison(
        scratch_url: str) -> None:
    """An identity key as created is unchanged; other options (which Alembic reports, and the
    diff turns into a warning) send the table to Alembic; a plain key wanted over a live
    identity too."""
    def model(**identity: Any) -> sa.MetaData:
        metadata = sa.MetaData()
        sa.Table("t", metadata, sa.Column("id", sa.BigInteger, sa.Identity(**identity),
                                          primary_key=True),
                 sa.Column("name", sa.Text))
        return metadata

    live, facts = created(scratch_url, model(cache=1))
    dialect = postgresql.psycopg.dialect()
    assert unchanged_tables(model(cache=1).tables.values(), live, facts, dialect) == {
        (None, "t")}
    for other in ({"cache": 1, "start": 5}, {"cache": 1, "always": True}, {"cache": 20}):
        assert unchanged_tables(model(**other).tables.values(), live, facts, dialect) == set()
    plain = sa.MetaData()
    sa.Table("t", plain, sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
             sa.Column("name", sa.Text))
    assert unchanged_tables(plain.tables.values(), live, facts, dialect) == set()
    # and each way, the ops (or the warning) are Alembic's
    for options in ({"cache": 1}, {"cache": 1, "start": 5}, {"cache": 20}):
        assert_same(*both(scratch_url, Desired(metadata=model(**options), source="x")))


DEFAULT_CASES: list[tuple[str, Any, bool]] = [
    # (live column, model column's server default, proven unchanged)
    ("created timestamptz DEFAULT now()", sa.text("now()"), True),
    ("created timestamptz DEFAULT now()", sa.func.now(), True),
    ("created timestamptz DEFAULT now()", "now()", True),
    ("created timestamptz DEFAULT now()", None, False),
    ("created timestamptz", sa.text("now()"), False),
    ("created timestamptz DEFAULT now()", sa.text("CURRENT_TIMESTAMP"), False),
    ("created text DEFAULT 'x'", sa.text("'x'::text"), True),
    ("created text DEFAULT 'x'", "x", False),  # Alembic asks the server: left to it
    ("created text DEFAULT 'x'", "y", False),
    ("created integer DEFAULT 0", sa.text("0"), True),
    ("created integer DEFAULT 0", "1", False),
]


@pytest.mark.parametrize(("live", "default", "proven"), DEFAULT_CASES)
def test_server_defaults_are_proven_unchanged_only_when_alembic_sees_the_same_text(
        live: str, default: Any, proven: bool, scratch_url: str) -> None:
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE t (id bigint PRIMARY KEY, {live})")
        live_snapshot = snapshot(conn)
        facts = read_facts(conn)
    type_ = {"timestamptz": sa.DateTime(timezone=True), "text": sa.Text(),
             "integer": sa.Integer()}[live.split()[1]]
    metadata = sa.MetaData()
    sa.Table("t", metadata, sa.Column("id", sa.BigInteger, primary_key=True,
                                      autoincrement=False),
             sa.Column("created", type_, server_default=default))
    found = unchanged_tables(metadata.tables.values(), live_snapshot, facts,
                             postgresql.psycopg.dialect())
    assert found == ({(None, "t")} if proven else set())
    assert_same(*both(scratch_url, Desired(metadata=metadata, source="x")))
