"""Issue 13, without a database: each revision shape seen in real histories, compiled as stock
Alembic would carry it out on PostgreSQL, or refused before anything runs (with the rule and
the revision line)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import op
from alembic.migration import MigrationContext
from alembic.operations import ops
from sqlalchemy.dialects import postgresql

from dsql_migrate.alembic import ops as _dsql_ops  # noqa: F401 - op.backfill
from dsql_migrate.alembic.compile import RevisionRefused, compile_ops, expand, record
from dsql_migrate.alembic.coverage import COVERAGE, alembic_op_classes, markdown_table
from dsql_migrate.alembic.record import RevisionCodeError
from dsql_migrate.catalog import Column, Constraint, Index, Snapshot, Table
from dsql_migrate.errors import ExitCode
from dsql_migrate.plan import Plan
from dsql_migrate.planner import Options
from dsql_migrate.profiles import CLASSIC, CURRENT, Profile


def live(*extra: Column, checks: tuple[Constraint, ...] = (),
         md_columns: tuple[sa.Column[Any], ...] = ()) -> tuple[Snapshot, sa.MetaData]:
    """``t (id BIGINT PK, a INTEGER, b TEXT, *extra)``, as a snapshot and as metadata."""
    md = sa.MetaData()
    sa.Table("t", md, sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
             sa.Column("a", sa.Integer), sa.Column("b", sa.Text), *md_columns)
    snap = Snapshot(schemas=("public",), tables={"public.t": Table(
        schema="public", name="t",
        columns=(Column("id", "bigint", False, position=1),
                 Column("a", "integer", True, position=2),
                 Column("b", "text", True, position=3), *extra),
        constraints=(Constraint("t_pkey", "primary_key", ("id",), "PRIMARY KEY (id)",
                                index="t_pkey"), *checks),
        indexes=(Index("t_pkey", True, ("id",), constraint="t_pkey"),),
        row_estimate=100)})
    return snap, md


def compiled(upgrade: Callable[[], None], profile: Profile = CURRENT,
             schema: tuple[Snapshot, sa.MetaData] | None = None) -> Plan:
    mc = MigrationContext.configure(dialect=postgresql.dialect(), opts={"as_sql": True})
    expanded = expand(record(upgrade, mc), profile, where="r.py upgrade()", batch_rows=1000)
    snap, md = schema or live()
    return compile_ops(expanded, snap, md, profile, Options(), source={})


def sql_of(plan: Plan) -> list[str]:
    return [" ".join(s.split()) for step in plan.steps for s in step.sql]


def line_of(fn: Callable[..., Any], text: str) -> str:
    lines, start = inspect.getsourcelines(fn)
    number = next(start + i for i, line in enumerate(lines) if text in line)
    return f"test_faithful.py:{number}"


# -- create_table: column ForeignKey and sa.Index items ------------------------------------------


def create_with_fk_and_index() -> None:
    op.create_table(
        "p", sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("t_id", sa.BigInteger, sa.ForeignKey("t.id", name="fk_p_t",
                                                       ondelete="CASCADE")),
        sa.Column("u_id", sa.BigInteger, sa.ForeignKey("t.id")),
        sa.Column("name", sa.Text, index=True),
        sa.Index("ix_p_u", "u_id"))


def test_create_table_keeps_column_foreign_keys_and_builds_its_indexes_async() -> None:
    plan = compiled(create_with_fk_and_index)
    create = sql_of(plan)[0]
    assert "CONSTRAINT fk_p_t FOREIGN KEY (t_id) REFERENCES t (id) ON DELETE CASCADE" in create
    assert "FOREIGN KEY (u_id) REFERENCES t (id)" in create
    assert [s.kind.value for s in plan.steps] == ["ddl", "async_index", "async_index"]
    assert set(sql_of(plan)[1:]) == {"CREATE INDEX ASYNC ix_p_name ON p (name)",
                                     "CREATE INDEX ASYNC ix_p_u ON p (u_id)"}


def test_create_table_foreign_keys_are_refused_on_classic() -> None:
    with pytest.raises(RevisionRefused) as refused:
        compiled(create_with_fk_and_index, CLASSIC)
    message = refused.value.message
    assert f"{line_of(create_with_fk_and_index, 'op.create_table(')}" in message
    assert "fk_p_t (t_id) -> t" in message and "classic profile has no foreign keys" in message


def test_add_column_with_foreign_key_adds_the_key_as_alembic_does() -> None:
    def upgrade() -> None:
        op.add_column("t", sa.Column("parent", sa.BigInteger, sa.ForeignKey("t.id")))

    statements = sql_of(compiled(upgrade))
    assert "ALTER TABLE t ADD COLUMN parent BIGINT" in statements
    assert any("ADD CONSTRAINT t_parent_fkey FOREIGN KEY (parent) REFERENCES t (id) NOT VALID"
               in s for s in statements)


# -- primary keys --------------------------------------------------------------------------------


def test_drop_and_create_primary_key_recreates_the_table_with_the_new_key() -> None:
    def upgrade() -> None:
        op.drop_constraint("t_pkey", "t", type_="primary")
        op.create_primary_key("t_pk", "t", ["id", "a"])

    plan = compiled(upgrade)
    creates = [s for s in sql_of(plan) if s.startswith("CREATE TABLE t__new")]
    assert len(creates) == 1 and "CONSTRAINT t_pk PRIMARY KEY (id, a)" in creates[0]
    assert any(s.kind.value == "swap" for s in plan.steps)


def test_create_primary_key_alone_is_never_ignored() -> None:
    def upgrade() -> None:
        op.create_primary_key("t_pkey", "t", ["a"])

    plan = compiled(upgrade)
    assert any("PRIMARY KEY (a)" in s for s in sql_of(plan) if s.startswith("CREATE TABLE"))


# -- Enum CHECKs ---------------------------------------------------------------------------------


def test_changing_a_non_native_enum_replaces_its_check() -> None:
    old = sa.Enum("x", "y", name="kind", native_enum=False, create_constraint=True)
    new = sa.Enum("x", "y", "z", name="kind", native_enum=False, create_constraint=True)

    def upgrade() -> None:
        op.alter_column("t", "k", type_=new, existing_type=old)

    check = Constraint("kind", "check", ("k",), "CHECK (k IN ('x', 'y'))")
    schema = live(Column("k", "character varying(1)", True, position=4), checks=(check,),
                  md_columns=(sa.Column("k", sa.String(1)),))
    statements = sql_of(compiled(upgrade, schema=schema))
    assert "ALTER TABLE t DROP CONSTRAINT kind" in statements
    assert any("ADD CONSTRAINT kind CHECK (k IN ('x', 'y', 'z')) NOT VALID" in s
               for s in statements)
    assert not any(s.startswith("CREATE TABLE") for s in statements)  # same VARCHAR(1)

    classic = sql_of(compiled(upgrade, CLASSIC, schema=schema))
    created = next(s for s in classic if s.startswith("CREATE TABLE t__new"))
    assert "CHECK (k IN ('x', 'y', 'z'))" in created and "'x', 'y')" not in created


def test_create_table_with_an_enum_keeps_its_check() -> None:
    def upgrade() -> None:
        op.create_table("e", sa.Column("id", sa.BigInteger, primary_key=True),
                        sa.Column("k", sa.Enum("a", "b", native_enum=False,
                                               create_constraint=True)))

    create = sql_of(compiled(upgrade))[0]
    assert "CONSTRAINT e_k_check CHECK (k IN ('a', 'b'))" in create


# -- equivalent type spellings -------------------------------------------------------------------


@pytest.mark.parametrize("live_type, new_type", [
    ("double precision", sa.Float(53)),
    ("double precision", sa.Float()),
    ("real", sa.Float(24)),
    ("real", sa.REAL()),
    ("integer", sa.INTEGER()),
    ("character varying(20)", sa.VARCHAR(20)),
    ("character varying", sa.String()),
    ("timestamp without time zone", sa.TIMESTAMP()),
    ("timestamp(3) with time zone", postgresql.TIMESTAMP(timezone=True, precision=3)),
])
def test_an_equivalent_type_spelling_is_no_change(live_type: str, new_type: Any) -> None:
    def upgrade() -> None:
        op.alter_column("t", "f", type_=new_type)

    schema = live(Column("f", live_type, True, position=4),
                  md_columns=(sa.Column("f", sa.Text),))
    assert compiled(upgrade, schema=schema).steps == ()


def test_a_real_type_change_still_recreates() -> None:
    def upgrade() -> None:
        op.alter_column("t", "f", type_=sa.Float(24))

    schema = live(Column("f", "double precision", True, position=4),
                  md_columns=(sa.Column("f", sa.Float(53)),))
    assert any(s.kind.value == "copy" for s in compiled(upgrade, schema=schema).steps)


# -- index keys DSQL cannot build ----------------------------------------------------------------


def desc_index() -> None:
    op.create_table("d", sa.Column("id", sa.BigInteger, primary_key=True))
    op.create_index("ix_t_b_desc", "t", [sa.text("b DESC")])


@pytest.mark.parametrize("upgrade, rule", [
    (desc_index, "index_sort_direction"),
    (lambda: op.create_index("ix_t_a", "t", [sa.desc(sa.column("a"))]),
     "index_sort_direction"),
    (lambda: op.create_index("ix_t_b", "t", ["b"], postgresql_ops={"b": "text_pattern_ops"}),
     "index_opclass"),
    (lambda: op.create_index("ix_t_b", "t", ["b"], postgresql_using="gin"), "index_using"),
    (lambda: op.create_table("d", sa.Column("id", sa.BigInteger, primary_key=True),
                             sa.Column("at", sa.BigInteger),
                             sa.Index("ix_d_at", sa.desc("at"))), "index_sort_direction"),
])
def test_index_keys_dsql_rejects_are_refused_before_anything_runs(
        upgrade: Callable[[], None], rule: str) -> None:
    with pytest.raises(RevisionRefused) as refused:
        compiled(upgrade)
    assert rule in refused.value.message and "test_faithful.py:" in refused.value.message
    assert "nothing of it was run" in refused.value.message


def test_the_refusal_names_the_revision_line() -> None:
    with pytest.raises(RevisionRefused) as refused:
        compiled(desc_index)
    assert line_of(desc_index, "ix_t_b_desc") in refused.value.message


# -- exceptions raised by a revision -------------------------------------------------------------


class LibraryError(Exception):
    """A library's own exception class."""


@pytest.mark.parametrize("exc", [RuntimeError("boom"), Exception("plain"), SystemExit(3),
                                 LibraryError("theirs"), KeyError("k")])
def test_any_exception_of_a_revision_is_file_line_message(exc: BaseException) -> None:
    def upgrade() -> None:
        op.add_column("t", sa.Column("c", sa.Integer))
        raise exc

    mc = MigrationContext.configure(dialect=postgresql.dialect(), opts={"as_sql": True})
    with pytest.raises(RevisionCodeError) as raised:
        record(upgrade, mc)
    error = raised.value
    assert error.exit_code == ExitCode.USAGE
    assert f"test_faithful.py:{line_of(upgrade, 'raise exc').split(':')[1]}: " in error.message
    assert type(exc).__name__ in error.message
    assert error.hint and "raise exc" in error.hint


# -- op coverage ---------------------------------------------------------------------------------


def test_every_alembic_op_class_is_covered() -> None:
    classes = set(alembic_op_classes())
    assert len(classes) >= 20  # enumerated from alembic.operations.ops, not listed by hand
    assert classes <= set(COVERAGE), sorted(c.__name__ for c in classes - set(COVERAGE))


class UnknownOp(ops.MigrateOperation):
    pass


def test_an_op_of_an_unknown_class_is_refused_not_dropped() -> None:
    def upgrade() -> None:
        op.invoke(UnknownOp())

    with pytest.raises(RevisionRefused) as refused:
        compiled(upgrade)
    assert "UnknownOp" in refused.value.message and "never skipped" in refused.value.message


SAMPLES: dict[type[ops.MigrateOperation], Callable[[], ops.MigrateOperation]] = {
    ops.AddColumnOp: lambda: ops.AddColumnOp("t", sa.Column("c", sa.Integer)),
    ops.AlterColumnOp: lambda: ops.AlterColumnOp("t", "a", modify_nullable=True),
    ops.BulkInsertOp: lambda: ops.BulkInsertOp(sa.table("t", sa.column("id", sa.BigInteger)),
                                                  [{"id": 9}]),
    ops.CreateCheckConstraintOp: lambda: ops.CreateCheckConstraintOp("ck", "t", "a > 0"),
    ops.CreateForeignKeyOp: lambda: ops.CreateForeignKeyOp("fk", "t", "t", ["a"], ["id"]),
    ops.CreateIndexOp: lambda: ops.CreateIndexOp("ix", "t", ["a"]),
    ops.CreatePrimaryKeyOp: lambda: ops.CreatePrimaryKeyOp("pk", "t", ["id", "a"]),
    ops.CreateTableCommentOp: lambda: ops.CreateTableCommentOp("t", "a table"),
    ops.CreateTableOp: lambda: ops.CreateTableOp("n", [sa.Column("id", sa.BigInteger,
                                                                 primary_key=True)]),
    ops.CreateUniqueConstraintOp: lambda: ops.CreateUniqueConstraintOp("uq", "t", ["a"]),
    ops.DropColumnOp: lambda: ops.DropColumnOp("t", "b"),
    ops.DropConstraintOp: lambda: ops.DropConstraintOp("ck", "t"),
    ops.DropIndexOp: lambda: ops.DropIndexOp("ix", "t"),
    ops.DropTableCommentOp: lambda: ops.DropTableCommentOp("t"),
    ops.DropTableOp: lambda: ops.DropTableOp("t"),
    ops.ExecuteSQLOp: lambda: ops.ExecuteSQLOp("UPDATE t SET a = 1 WHERE id = 1"),
    ops.RenameTableOp: lambda: ops.RenameTableOp("t", "t2"),
}


@pytest.mark.parametrize("profile", [CURRENT, CLASSIC], ids=["current", "classic"])
@pytest.mark.parametrize("op_type", sorted(alembic_op_classes(), key=lambda c: c.__name__),
                         ids=lambda c: c.__name__)
def test_every_op_class_is_planned_or_refused_never_dropped(op_type: type[Any],
                                                            profile: Profile) -> None:
    """Each op a revision can record yields steps or a refusal; containers and base classes
    are never recorded themselves (op.invoke of one is refused)."""
    sample = SAMPLES.get(op_type)
    if sample is None:
        assert COVERAGE[op_type].expand is None  # a base class or a container
        return

    def upgrade() -> None:
        op.invoke(sample())

    try:
        plan = compiled(upgrade, profile)
    except RevisionRefused as refused:
        assert "test_faithful.py:" in refused.message
        return
    assert plan.steps, f"{op_type.__name__} was compiled to nothing on {profile.name}"


def test_the_docs_table_lists_every_op_class() -> None:
    from pathlib import Path

    docs = (Path(__file__).parents[2] / "docs" / "alembic.md").read_text()
    for op_type in alembic_op_classes():
        assert f"| `{op_type.__name__}` |" in docs, op_type.__name__
    assert markdown_table() in docs, "regenerate the table: coverage.markdown_table()"


def test_upgrade_sql_answers_the_dialect_and_says_what_needs_a_connection() -> None:
    from dsql_migrate.alembic.record import NeedsConnection, Recorder

    def upgrade() -> None:
        if op.get_bind().dialect.name == "postgresql":  # common in real histories
            op.add_column("t", sa.Column("c", sa.Integer))
        op.get_bind().execute(sa.text("UPDATE t SET c = 1"))

    mc = MigrationContext.configure(dialect=postgresql.dialect(), opts={"as_sql": True})
    recorder = Recorder(mc, offline="upgrade --sql")
    with pytest.raises(NeedsConnection) as needed:
        recorder.run(upgrade)
    assert needed.value.where == line_of(upgrade, "op.get_bind().execute")
    assert "uses op.get_bind().execute" in needed.value.message
    assert [type(o).__name__ for o in recorder.recorded] == ["AddColumnOp"]


def test_a_key_given_to_a_table_of_the_same_revision_is_part_of_its_create_table() -> None:
    def upgrade() -> None:
        op.create_table("k", sa.Column("id", sa.BigInteger, nullable=False),
                        sa.Column("v", sa.BigInteger, nullable=False))
        op.create_primary_key("k_pk", "k", ["id", "v"])

    plan = compiled(upgrade)
    assert [s.kind.value for s in plan.steps] == ["ddl"]
    assert "CONSTRAINT k_pk PRIMARY KEY (id, v)" in sql_of(plan)[0]


def test_the_compile_path_has_no_import_circle() -> None:
    """model.py (the desired schema) does not import compile.py (the planning)."""
    import subprocess
    import sys

    code = ("import sys, dsql_migrate.alembic.model; "
            "assert 'dsql_migrate.alembic.compile' not in sys.modules")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_a_native_enum_is_refused_with_the_create_type_rule() -> None:
    """optuna's first revision: sa.Enum(StudyDirection) failed at step 1 with
    'type "studydirection" does not exist'."""
    def upgrade() -> None:
        op.create_table("s", sa.Column("id", sa.BigInteger, primary_key=True),
                        sa.Column("direction", sa.Enum("MINIMIZE", "MAXIMIZE",
                                                       name="studydirection")))

    with pytest.raises(RevisionRefused) as refused:
        compiled(upgrade)
    assert "CREATE TYPE" in refused.value.message and "native_enum=False" in (
        refused.value.message)


@pytest.mark.parametrize("upgrade", [
    lambda: op.create_index("ix_t_a", "t", ["a"], postgresql_where=sa.text("a > 0")),
    lambda: op.create_index("ix_t_a", "t", [sa.text("lower(b)")]),
], ids=["partial", "expression"])
def test_what_classic_cannot_do_is_refused_not_skipped(upgrade: Callable[[], None]) -> None:
    """The planner used to warn and plan nothing for these on classic."""
    with pytest.raises(RevisionRefused):
        compiled(upgrade, CLASSIC)
    assert compiled(upgrade, CURRENT).steps
