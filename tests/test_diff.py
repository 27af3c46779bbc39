"""diff: targets, declared renames and what Alembic's comparison misses for DSQL."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

import psycopg
import pytest
import sqlalchemy as sa
from alembic.operations import ops
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from dsql_migrate.diff import (
    ChangePrimaryKeyOp,
    Desired,
    Renames,
    ValidateConstraintOp,
    diff_live,
    load_model_target,
)
from dsql_migrate.errors import ConfigError


def test_declarative_base_target(workdir: Path) -> None:
    (workdir / "decl_models.py").write_text(
        "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column\n"
        "class Base(DeclarativeBase):\n    pass\n"
        "class User(Base):\n"
        "    __tablename__ = 'users'\n"
        "    id: Mapped[int] = mapped_column(primary_key=True)\n"
    )
    sys.modules.pop("decl_models", None)
    desired = load_model_target("decl_models:Base")
    assert list(desired.metadata.tables) == ["users"]
    assert load_model_target("decl_models:Base.metadata").metadata is desired.metadata


@pytest.mark.parametrize("spec", ["nope", "a=", "=b", "t.a=b.c"])
def test_bad_rename_specs(spec: str) -> None:
    with pytest.raises(ConfigError):
        Renames.parse([spec])


def test_rename_specs_and_model_info() -> None:
    renames = Renames.parse(["old=new", "users.nm=name"])
    assert renames.tables == {"old": "new"}
    assert renames.columns == {("users", "nm"): "name"}

    class Base(DeclarativeBase):
        pass

    class Account(Base):
        __tablename__ = "accounts"
        __table_args__: ClassVar[dict[str, Any]] = {"info": {"renamed_from": "acct"}}
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str] = mapped_column(info={"renamed_from": "mail"})

    merged = renames.with_model_info(Base.metadata)
    assert merged.tables == {"old": "new", "acct": "accounts"}
    assert merged.columns[("accounts", "mail")] == "email"


def run_diff(url: str, live_sql: list[str], metadata: sa.MetaData,
             renames: Renames | None = None) -> list[Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in live_sql:
            conn.execute(statement)
    result, _ = diff_live(url, Desired(metadata=metadata, source="test"), renames=renames)
    return result.ops


def test_undeclared_rename_is_drop_and_add_declared_is_rename(scratch_url: str) -> None:
    metadata = sa.MetaData()
    sa.Table("members", metadata, sa.Column("id", sa.BigInteger, primary_key=True))
    found = run_diff(scratch_url, ["CREATE TABLE people (id bigint PRIMARY KEY)"], metadata)
    assert {type(op) for op in found} == {ops.CreateTableOp, ops.DropTableOp}
    found = run_diff(scratch_url, [], metadata, Renames.parse(["people=members"]))
    assert [type(op) for op in found] == [ops.RenameTableOp]


def test_primary_key_change_and_not_valid_and_failed_index(scratch_url: str) -> None:
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE m (a bigint NOT NULL, b bigint NOT NULL, c text, "
                     "PRIMARY KEY (a))")
        conn.execute("INSERT INTO m VALUES (1, 1, 'x'), (2, 2, 'x')")
        conn.execute("ALTER TABLE m ADD CONSTRAINT m_b_check CHECK (b > 0) NOT VALID")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY ix_m_c ON m (c)")
    metadata = sa.MetaData()
    table = sa.Table("m", metadata, sa.Column("a", sa.BigInteger, primary_key=True),
                     sa.Column("b", sa.BigInteger, primary_key=True), sa.Column("c", sa.Text),
                     sa.CheckConstraint("b > 0", name="m_b_check"))
    sa.Index("ix_m_c", table.c.c, unique=True)
    found = run_diff(scratch_url, [], metadata)
    kinds = [type(op) for op in found]
    assert ChangePrimaryKeyOp in kinds and ValidateConstraintOp in kinds
    assert ops.DropIndexOp in kinds and ops.CreateIndexOp in kinds
    pk = next(op for op in found if isinstance(op, ChangePrimaryKeyOp))
    assert pk.columns == ("a", "b")
