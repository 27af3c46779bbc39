"""Constraint and index names as stock Alembic on PostgreSQL gives them (issue 13, prefect
2fe6fe6ca16e): a name from ``op.f()`` or from the naming convention longer than 63 characters
is shortened by SQLAlchemy (its first 55 characters, ``_`` and 4 hex digits of its md5), not
cut at 63 bytes by PostgreSQL. The plugin's plan must carry the names stock Alembic sends."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy.dialects import postgresql

from dsql_migrate.alembic.compile import compile_ops, expand, record
from dsql_migrate.catalog import Snapshot
from dsql_migrate.planner import Options
from dsql_migrate.profiles import CURRENT

#: prefect's convention (orm_models.py): names of 64+ characters are common with it
CONVENTION = {
    "ix": "ix_%(table_name)s__%(column_0_N_name)s",
    "uq": "uq_%(table_name)s__%(column_0_N_name)s",
    "ck": "ck_%(table_name)s__%(constraint_name)s",
    "fk": "fk_%(table_name)s__%(column_0_N_name)s__%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
LONG_TABLE = "block_document_reference_with_a_rather_long_name"


def context(out: io.StringIO | None = None) -> MigrationContext:
    opts: dict[str, object] = {"as_sql": True,
                               "target_metadata": sa.MetaData(naming_convention=CONVENTION)}
    if out is not None:
        opts["output_buffer"] = out
    return MigrationContext.configure(dialect=postgresql.dialect(), opts=opts)


def upgrade() -> None:
    op.create_table(
        "block_document",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False))
    op.create_table(
        LONG_TABLE,
        sa.Column("id", sa.BigInteger, nullable=False),
        sa.Column("parent_block_document_id", sa.BigInteger, nullable=False),
        sa.Column("reference_block_document_id", sa.BigInteger, nullable=False),
        sa.Column("a_column_with_a_long_name_too", sa.Integer, index=True),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{LONG_TABLE}_and_more_words")),
        sa.ForeignKeyConstraint(  # op.f(): the name as written, shortened by SQLAlchemy
            ["parent_block_document_id"], ["block_document.id"],
            name=op.f(f"fk_{LONG_TABLE}__parent_block_document_id__block_document"),
            ondelete="cascade"),
        sa.ForeignKeyConstraint(  # unnamed: the convention's name, shortened
            ["reference_block_document_id"], ["block_document.id"]),
        sa.UniqueConstraint("parent_block_document_id", "reference_block_document_id"),
        sa.CheckConstraint("id > 0", name="a_check_whose_name_is_long_enough_already"),
    )
    op.create_index(op.f(f"ix_{LONG_TABLE}__parent_block_document_id_and_more"),
                    LONG_TABLE, ["parent_block_document_id"])
    op.create_foreign_key(None, LONG_TABLE, "block_document", ["id"], ["id"])
    op.create_unique_constraint(None, LONG_TABLE, ["id", "parent_block_document_id"])
    op.create_check_constraint("another_check_with_a_name_long_enough_to_matter", LONG_TABLE,
                               "id < 1000000")


def downgrade() -> None:
    op.drop_constraint(op.f(f"fk_{LONG_TABLE}__parent_block_document_id__block_document"),
                       LONG_TABLE, type_="foreignkey")
    op.drop_constraint("another_check_with_a_name_long_enough_to_matter", LONG_TABLE,
                       type_="check")  # a plain name: the convention's ck_..._<md5>
    op.drop_index(op.f(f"ix_{LONG_TABLE}__parent_block_document_id_and_more"),
                  table_name=LONG_TABLE)


def stock_sql(fn: Callable[[], None]) -> str:
    """What stock Alembic sends to PostgreSQL for ``fn`` (offline, ``--sql``)."""
    out = io.StringIO()
    mc = context(out)
    with Operations.context(mc):
        fn()
    return out.getvalue()


def names_in(sql: str) -> set[str]:
    found = re.findall(r'(?:CONSTRAINT|INDEX(?: ASYNC)?(?: IF EXISTS)?) "?([a-z0-9_]+)"?',
                       sql, flags=re.IGNORECASE)
    return {n for n in found if n.lower() not in ("if", "async")}


def test_names_are_those_stock_alembic_sends_to_postgresql() -> None:
    stock = names_in(stock_sql(upgrade))
    long = {n for n in stock if len(n) > 50}
    assert len(long) >= 6, stock  # the test means something: names near and over the limit
    assert all(len(n) <= 63 for n in stock)

    out = expand(record(upgrade, context()), CURRENT, where="r.py upgrade()", batch_rows=1000)
    plan = compile_ops(out, Snapshot(), sa.MetaData(), CURRENT, Options(), source={})
    ours = names_in("\n".join(s for step in plan.steps for s in step.sql))
    assert stock - ours == set(), f"stock names the plan lacks: {sorted(stock - ours)}"
    assert all(len(n) <= 63 for n in ours), sorted(n for n in ours if len(n) > 63)


def test_dropped_names_are_those_stock_alembic_sends() -> None:
    stock = names_in(stock_sql(downgrade))
    assert len(stock) == 3 and all(len(n) == 60 for n in stock), stock  # 55 + _ + 4
    recorded = record(downgrade, context())
    ours = {getattr(o, "constraint_name", None) or getattr(o, "index_name", None)
            for o in recorded}
    assert ours == stock


def add_column() -> None:
    op.add_column(LONG_TABLE, sa.Column(
        "another_reference_block_document_id", sa.BigInteger,
        sa.ForeignKey("block_document.id"), index=True, unique=True))


def test_a_columns_own_constraints_are_named_by_the_convention_as_stock() -> None:
    stock = names_in(stock_sql(add_column))
    assert len(stock) == 2 and all(len(n) == 60 for n in stock), stock  # FK, unique index
    recorded = expand(record(add_column, context()), CURRENT, where="r.py upgrade()",
                      batch_rows=1000)
    ours = {getattr(o, "constraint_name", None) or getattr(o, "index_name", None)
            for o in recorded.ops} - {None}
    assert ours == stock


def unnamed() -> None:
    op.create_primary_key(None, "t", ["id"])
    op.create_foreign_key(None, "t", "block_document", ["ref"], ["id"])
    op.drop_constraint("some_check", "t", type_="check")  # the convention's ck_t__some_check


def test_an_unnamed_or_plain_name_takes_the_convention_as_in_stock() -> None:
    stock = names_in(stock_sql(unnamed))
    assert stock == {"pk_t", "fk_t__ref__block_document", "ck_t__some_check"}, stock
    ours = {getattr(o, "constraint_name", None) for o in record(unnamed, context())}
    assert ours == stock


def enum_change() -> None:
    op.alter_column("t", "state",
                    existing_type=sa.Enum("a", "b", name="state_kind", native_enum=False,
                                          create_constraint=True),
                    type_=sa.Enum("a", "b", "c", name="state_kind", native_enum=False,
                                  create_constraint=True))


def test_an_enum_types_check_is_named_by_the_convention_as_stock() -> None:
    stock = names_in(stock_sql(enum_change))
    assert stock == {"ck_t__state_kind"}, stock
    out = expand(record(enum_change, context()), CURRENT, where="r.py upgrade()",
                 batch_rows=1000)
    ours = {getattr(o, "constraint_name", None) for o in out.ops} - {None}
    assert ours == stock
