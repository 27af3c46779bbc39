"""Recording and compiling revisions, without a database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import op
from alembic.migration import MigrationContext
from alembic.operations import ops
from sqlalchemy.dialects import postgresql

from dsql_migrate.alembic import ops as dsql_ops  # noqa: F401 - op.backfill
from dsql_migrate.alembic.compile import RevisionRefused, compile_ops, expand, record
from dsql_migrate.alembic.model import desired_metadata
from dsql_migrate.alembic.rewriter import fix_identity
from dsql_migrate.catalog import Snapshot
from dsql_migrate.plan import StepKind
from dsql_migrate.profiles import CLASSIC, CURRENT


def offline_context() -> MigrationContext:
    return MigrationContext.configure(dialect=postgresql.dialect(), opts={"as_sql": True})


def recorded(fn: Any) -> list[ops.MigrateOperation]:
    return record(fn, offline_context())


def test_record_keeps_ops_instead_of_running_them() -> None:
    def upgrade() -> None:
        table = op.create_table("t", sa.Column("id", sa.BigInteger, primary_key=True))
        op.bulk_insert(table, [{"id": 1}, {"id": 2}])
        op.add_column("t", sa.Column("a", sa.Integer))
        op.backfill("t", set={"a": "id * 2"}, batch_size=10)

    kinds = [type(o).__name__ for o in recorded(upgrade)]
    assert kinds == ["BuiltCreateTableOp", "BulkInsertOp", "AddColumnOp", "BackfillOp"]


def test_raw_sql_is_split_and_dsql_illegal_sql_refused() -> None:
    def several() -> None:
        op.execute("CREATE TABLE a (id BIGINT PRIMARY KEY); CREATE INDEX ASYNC ix_a ON a (id);"
                   "INSERT INTO a VALUES (1)")

    out = expand(recorded(several), CURRENT, where="r.py upgrade()", batch_rows=1000)
    assert [(o.kind, o.is_async) for o in out.ops] == [  # type: ignore[attr-defined]
        ("ddl", False), ("ddl", True), ("dml", False)]

    def illegal() -> None:
        op.execute("CREATE INDEX ix_a ON a (id)")
        op.execute("TRUNCATE a")

    with pytest.raises(RevisionRefused) as refused:
        expand(recorded(illegal), CURRENT, where="r.py upgrade()", batch_rows=1000)
    message = refused.value.message
    assert "r.py upgrade() at test_compile.py:53: op.execute #1:1:1" in message
    assert "r.py upgrade() at test_compile.py:54: op.execute #2:1:1" in message


def test_execute_of_text_with_binds_and_of_untyped_core_renders_the_values() -> None:
    items = sa.table("t", sa.column("note"), sa.column("id"))

    def upgrade() -> None:
        op.execute(sa.text("UPDATE t SET a = :v WHERE b = :w").bindparams(v=1, w="it's"))
        op.execute(items.update().values(note="core").where(items.c.id == 3))
        op.execute(sa.text("UPDATE t SET t = '10:30' WHERE id = 1"))

    out = expand(recorded(upgrade), CURRENT, where="r.py upgrade()", batch_rows=1000)
    assert [o.sql for o in out.ops] == [  # type: ignore[attr-defined]
        "UPDATE t SET a = 1 WHERE b = 'it''s'", "UPDATE t SET note='core' WHERE t.id = 3",
        "UPDATE t SET t = '10:30' WHERE id = 1"]

    def unrenderable() -> None:
        op.execute("SELECT 1")
        op.execute(items.update().values(note=object()).where(items.c.id == 3))

    with pytest.raises(RevisionRefused) as refused:
        expand(recorded(unrenderable), CURRENT, where="r.py upgrade()", batch_rows=1000)
    assert "r.py upgrade() at test_compile.py:78: op.execute #2: cannot render" in (
        refused.value.message)
    assert "sa.column('note', sa.Text)" in str(refused.value.hint)


def test_unbounded_update_is_a_warning_not_a_refusal() -> None:
    def upgrade() -> None:
        op.execute("UPDATE a SET x = 1")

    out = expand(recorded(upgrade), CURRENT, where="r.py upgrade()", batch_rows=1000)
    assert len(out.ops) == 1
    assert any("unbatched_dml" in w for w in out.warnings)


def test_bulk_insert_is_cut_into_bounded_batches() -> None:
    table = sa.table("t", sa.column("id", sa.BigInteger))

    def upgrade() -> None:
        op.bulk_insert(table, [{"id": i} for i in range(2500)])

    out = expand(recorded(upgrade), CURRENT, where="r", batch_rows=1000)
    assert [o.rows for o in out.ops] == [1000, 1000, 500]  # type: ignore[attr-defined]


def test_desired_schema_applies_the_revision_to_the_live_one() -> None:
    live = sa.MetaData()
    sa.Table("t", live, sa.Column("id", sa.BigInteger, primary_key=True),
             sa.Column("a", sa.Integer), sa.Column("b", sa.Text))
    changes = [
        ops.AlterColumnOp("t", "a", modify_type=sa.BigInteger(), modify_nullable=False),
        ops.DropColumnOp("t", "b"),
        ops.AddColumnOp("t", sa.Column("c", sa.String(5))),
        ops.RenameTableOp("t", "u"),
    ]
    desired = desired_metadata(live, changes)
    table = desired.tables["u"]
    assert [c.name for c in table.columns] == ["id", "a", "c"]
    assert isinstance(table.c.a.type, sa.BigInteger) and table.c.a.nullable is False
    assert "t" not in desired.tables and "t" in live.tables


def test_backfill_compiles_to_a_batched_step_with_escaped_percent() -> None:
    live = sa.MetaData()
    sa.Table("t", live, sa.Column("id", sa.BigInteger, primary_key=True),
             sa.Column("a", sa.Integer))

    def upgrade() -> None:
        op.backfill("t", set={"a": "id % 10"}, where="a IS NULL", batch_size=250)

    out = expand(recorded(upgrade), CLASSIC, where="r", batch_rows=1000)
    plan = compile_ops(out, Snapshot(), live, CLASSIC, __import__(
        "dsql_migrate.planner", fromlist=["Options"]).Options(), source={})
    (step,) = plan.steps
    assert step.kind is StepKind.BACKFILL and step.batch is not None
    assert step.batch.size == 250
    assert '"a" = id %% 10' in step.sql[0] or "a = id %% 10" in step.sql[0]
    assert "AND (a IS NULL)" in step.sql[0]


def test_identity_cache_fixed_for_dsql() -> None:
    column = sa.Column("id", sa.BigInteger, sa.Identity(cache=20), primary_key=True)
    assert fix_identity(column, CURRENT) is True
    assert column.identity is not None and column.identity.cache == 65536
    ok = sa.Column("id", sa.BigInteger, sa.Identity(cache=1), primary_key=True)
    assert fix_identity(ok, CURRENT) is False
    unset = sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True)
    assert fix_identity(unset, CURRENT) is False  # planned as an explicit CACHE 1


def test_plugin_entry_point_registers_auroradsql_lazily() -> None:
    from importlib.metadata import entry_points

    from alembic.ddl.impl import _impls

    (entry,) = [e for e in entry_points(group="alembic.plugins") if e.name == "dsql_migrate"]
    assert entry.value == "dsql_migrate.alembic.plugin"
    assert "auroradsql" in _impls  # registered when Alembic loaded its plugins


def test_known_aurora_dialect_gaps_are_covered_by_the_planner() -> None:
    """Identity() without cache, partial-index WHERE, USING and INCLUDE under op.create_index."""
    from dsql_migrate.planner import Options

    def upgrade() -> None:
        op.create_table("g", sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
                        sa.Column("a", sa.Integer), sa.Column("b", sa.Text))
        op.create_index("ix_g_a", "g", ["a"], postgresql_where=sa.text("a > 0"),
                        postgresql_include=["b"], postgresql_using="btree")

    out = expand(recorded(upgrade), CURRENT, where="r", batch_rows=1000)
    plan = compile_ops(out, Snapshot(), sa.MetaData(), CURRENT, Options(), source={})
    create, index = plan.steps
    assert "IDENTITY (CACHE 1)" in create.sql[0]  # explicit, as DSQL requires
    assert index.kind is StepKind.ASYNC_INDEX
    assert index.sql[0] == ("CREATE INDEX ASYNC ix_g_a ON g (a) INCLUDE (b) WHERE a > 0")


def test_plain_alembic_upgrade_sql_prints_the_plans(tmp_path: Path) -> None:
    """``alembic upgrade head --sql`` with the stock env.py + one line: no database needed."""
    import io

    from alembic import command
    from alembic.config import Config
    from alembic_project import make_project

    out = io.StringIO()
    cfg = Config(str(make_project(tmp_path, "postgresql://nobody@127.0.0.1:1/postgres")),
                 output_buffer=out)
    command.upgrade(cfg, "head", sql=True)
    text = out.getvalue()
    assert "BEGIN;\nCREATE UNIQUE INDEX ASYNC uq_t7_users_name ON t7_users (name);\nCOMMIT;" in text
    assert "-- wait: CALL sys.wait_for_job(" in text
    assert "CREATE TABLE t7_purchases__new" in text  # r3's type change: a recreation
    assert "-- batched: repeat per page" in text
    assert text.count("-- step") > 20
    assert "UPDATE alembic_version SET version_num = 'r4' WHERE version_num = 'r3';" in text


def test_postgresql_ddl_constructs_compile_for_auroradsql() -> None:
    from alembic.ddl.base import RenameTable
    from alembic.ddl.postgresql import PostgresqlColumnType
    from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

    from dsql_migrate.alembic.impl import AuroraDsqlImpl, impl_for

    class Aurora(PGDialect_psycopg):
        name = "auroradsql"

    dialect = Aurora()
    assert impl_for("auroradsql") is AuroraDsqlImpl
    assert AuroraDsqlImpl.transactional_ddl is False
    assert str(RenameTable("a", "b").compile(dialect=dialect)) == "ALTER TABLE a RENAME TO b"
    retype = PostgresqlColumnType("t", "c", sa.BigInteger(), using="c::bigint")
    assert str(retype.compile(dialect=dialect)) == (
        "ALTER TABLE t ALTER COLUMN c TYPE BIGINT USING c::bigint")


def test_a_table_created_by_the_revision_is_created_in_its_final_shape() -> None:
    from dsql_migrate.planner import Options

    def upgrade() -> None:
        op.create_table("n", sa.Column("id", sa.BigInteger, primary_key=True))
        op.add_column("n", sa.Column("a", sa.Integer))
        op.create_unique_constraint("uq_n_a", "n", ["a"])
        op.alter_column("n", "a", type_=sa.BigInteger)
        op.rename_table("n", "m")
        op.create_index("ix_m_a", "m", ["a"])

    out = expand(recorded(upgrade), CURRENT, where="r", batch_rows=1000)
    plan = compile_ops(out, Snapshot(), sa.MetaData(), CURRENT, Options(), source={})
    create, index = plan.steps
    assert create.sql[0].startswith("CREATE TABLE m (")
    assert "a BIGINT" in create.sql[0] and "CONSTRAINT uq_n_a UNIQUE (a)" in create.sql[0]
    assert index.sql[0] == "CREATE INDEX ASYNC ix_m_a ON m (a)"


def test_cli_target_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--url, then $DSQL_MIGRATE_URL, then dsql-migrate.toml, then alembic.ini's URL."""
    from alembic_project import make_project

    from dsql_migrate.alembic.engine import CONNECTOR
    from dsql_migrate.cli._common import AppContext
    from dsql_migrate.cli.migrations import alembic_config

    ini = make_project(tmp_path, "postgresql://ini@127.0.0.1:1/postgres")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DSQL_MIGRATE_URL", raising=False)

    def target(url: str | None) -> object:
        cfg = alembic_config(AppContext(), ini, url=url, local_dir=tmp_path, profile=None)
        connector = cfg.attributes.get(CONNECTOR)
        return None if connector is None else connector.target.url

    assert target(None) is None  # the engine is made from alembic.ini's sqlalchemy.url
    assert target("postgresql://flag@127.0.0.1:1/postgres") == (
        "postgresql://flag@127.0.0.1:1/postgres")
    monkeypatch.setenv("DSQL_MIGRATE_URL", "postgresql://env@127.0.0.1:1/postgres")
    assert target(None) == "postgresql://env@127.0.0.1:1/postgres"


def test_identity_cache_noise_is_not_a_change() -> None:
    from dsql_migrate.alembic.rewriter import is_identity_cache_noise

    def alter(new: sa.Identity, old: sa.Identity) -> ops.AlterColumnOp:
        return ops.AlterColumnOp("t", "id", modify_server_default=new,
                                 existing_server_default=old)

    assert is_identity_cache_noise(alter(sa.Identity(cache=100), sa.Identity(cache=65536)),
                                   CURRENT)
    assert is_identity_cache_noise(alter(sa.Identity(), sa.Identity(cache=1)), CURRENT)
    assert not is_identity_cache_noise(alter(sa.Identity(cache=100), sa.Identity(cache=1)),
                                       CURRENT)
    assert not is_identity_cache_noise(
        alter(sa.Identity(cache=65536, start=5), sa.Identity(cache=65536, start=1)), CURRENT)


def test_upgrade_refuses_an_env_py_without_the_plugin(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from alembic_project import make_project, stock_env
    from click.testing import CliRunner

    from dsql_migrate.cli import main

    ini = make_project(tmp_path, "postgresql://nobody@127.0.0.1:1/postgres")
    (tmp_path / "migrations" / "env.py").write_text(stock_env())
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DSQL_MIGRATE_URL", raising=False)
    result = CliRunner().invoke(main, ["upgrade", "-c", str(ini)])
    assert result.exit_code == 2
    assert "does not use the dsql-migrate plugin" in result.output
    assert "from dsql_migrate.alembic import context" in result.output


def test_a_bulk_insert_is_summarised_in_the_rendered_plan_not_in_the_plan() -> None:
    """``upgrade --dry-run`` and ``plan`` show a bulk insert's first rows and how many more
    there are; the plan (its JSON, its hash, what runs) keeps every row."""
    from dsql_migrate.plan import render
    from dsql_migrate.planner import Options

    table = sa.table("t", sa.column("id", sa.BigInteger), sa.column("label", sa.Text))

    def upgrade() -> None:
        op.bulk_insert(table, [{"id": i, "label": f"row ({i}), 'x'"} for i in range(1500)])

    out = expand(recorded(upgrade), CURRENT, where="r", batch_rows=1000)
    plan = compile_ops(out, Snapshot(), sa.MetaData(), CURRENT, Options(), source={})
    text = render(plan, "text")
    assert "and 997 more rows" in text and "and 497 more rows" in text
    assert "row (3), 'x'" not in text and text.count("row (0)") == 1
    assert sum(s.count("row (") for step in plan.steps for s in step.sql) == 1500
