"""Data-driven: each file in cases/ is a revision's upgrade() and the step kinds it compiles to,
per profile, against a live table ``t (id BIGINT PK, a INTEGER, b TEXT)`` with an index on b."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from sqlalchemy.dialects import postgresql

from dsql_migrate.alembic import ops as _ops  # noqa: F401 - op.backfill
from dsql_migrate.alembic.compile import compile_ops, expand, record
from dsql_migrate.catalog import Column, Constraint, Index, Snapshot, Table
from dsql_migrate.planner import Options
from dsql_migrate.profiles import get_profile

CASES = sorted((Path(__file__).parent / "cases").glob("*.py"))


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"case_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def live_schema() -> tuple[Snapshot, sa.MetaData]:
    md = sa.MetaData()
    table = sa.Table("t", md, sa.Column("id", sa.BigInteger, primary_key=True,
                                        autoincrement=False),
                     sa.Column("a", sa.Integer), sa.Column("b", sa.Text))
    sa.Index("ix_t_b", table.c.b)
    snap = Snapshot(schemas=("public",), tables={"public.t": Table(
        schema="public", name="t",
        columns=(Column("id", "bigint", False, position=1),
                 Column("a", "integer", True, position=2),
                 Column("b", "text", True, position=3)),
        constraints=(Constraint("t_pkey", "primary_key", ("id",), "PRIMARY KEY (id)",
                                index="t_pkey"),),
        indexes=(Index("t_pkey", True, ("id",), constraint="t_pkey"),
                 Index("ix_t_b", False, ("b",))),
        row_estimate=5000)})
    return snap, md


@pytest.mark.parametrize("profile", ["current", "classic"])
@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_case(case: Path, profile: str) -> None:
    module = load(case)
    chosen = get_profile(profile)
    mc = MigrationContext.configure(dialect=postgresql.dialect(), opts={"as_sql": True})
    expanded = expand(record(module.upgrade, mc), chosen, where=case.name, batch_rows=1000)
    snap, md = live_schema()
    plan = compile_ops(expanded, snap, md, chosen, Options(), source={})
    assert [s.kind.value for s in plan.steps] == module.EXPECTED[profile], [
        s.summary for s in plan.steps]
