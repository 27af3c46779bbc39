"""A real Alembic project upgraded and downgraded on the emulator, through the plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from alembic_project import make_project, stock_env


def columns(url: str, table: str) -> dict[str, tuple[str, bool, str | None]]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT column_name, data_type, is_nullable = 'YES', column_default "
            "FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s",
            (table,)).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def scalar(url: str, query: str) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    return None if row is None else row[0]


def tables(url: str) -> set[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename LIKE 't7%'").fetchall()}


def test_env_py_is_stock_plus_one_line(tmp_path: Path, dsql_url: str) -> None:
    ini = make_project(tmp_path, dsql_url)
    env = (ini.parent / "migrations" / "env.py").read_text().splitlines()
    stock = stock_env().splitlines()
    assert len(env) == len(stock)
    assert [(a, b) for a, b in zip(stock, env, strict=True) if a != b] == [
        ("from alembic import context", "from dsql_migrate.alembic import context")]


@pytest.mark.parametrize("profile", ["current", "classic"])
def test_upgrade_and_downgrade_common_ops(profile: str, tmp_path: Path,
                                          request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("dsql_url" if profile == "current" else "classic_url")
    cfg = Config(str(make_project(tmp_path, url, profile=profile)))

    if profile == "classic":  # r4 adds a foreign key: classic has none, so it is refused
        with pytest.raises(CommandError, match=r"r4_foreign_key\.py:15 in upgrade.*the "
                           r"classic profile has no foreign keys"):
            command.upgrade(cfg, "head")
        assert scalar(url, "SELECT version_num FROM alembic_version") == "r3"
        command.downgrade(cfg, "base")
        assert tables(url) == set()
        return
    command.upgrade(cfg, "head")
    assert scalar(url, "SELECT version_num FROM alembic_version") == "r4"
    assert tables(url) == {"t7_users", "t7_purchases"}
    purchases = columns(url, "t7_purchases")
    assert purchases["amount"][0] == "bigint"
    assert purchases["note"][1] is False or profile == "current"  # current: a validated CHECK
    assert "legacy" not in purchases
    users = columns(url, "t7_users")
    assert "years" in users and "age" not in users
    assert "none@example.com" in str(users["email"][2])
    assert scalar(url, "SELECT count(*) FROM t7_users WHERE status = 'new'") == 20
    assert scalar(url, "SELECT count(*) FROM t7_users WHERE status = 'active'") == 20
    assert scalar(url, "SELECT sum(amount) FROM t7_purchases") == sum(i * 10 for i in range(1, 61))
    assert scalar(url, "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                       "WHERE c.relname = 'ix_t7_users_email' AND i.indisvalid") == 1
    with psycopg.connect(url, autocommit=True) as conn, pytest.raises(psycopg.Error):
        conn.execute("INSERT INTO t7_users (name) VALUES ('user1')")  # uq_t7_users_name

    command.downgrade(cfg, "r1")
    orders = columns(url, "t7_orders")
    assert orders["amount"][0] == "integer" and "legacy" in orders
    assert set(columns(url, "t7_users")) == {"id", "name", "email"}
    assert scalar(url, "SELECT count(*) FROM t7_orders") == 60

    command.downgrade(cfg, "base")
    assert tables(url) == set()
    assert scalar(url, "SELECT count(*) FROM alembic_version") == 0
