"""An adopted project (stock env.py + the one-line change) under the dsql-migrate CLI: the
target the CLI chose wins over alembic.ini's sqlalchemy.url, and bad URLs get clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from alembic_project import INI as PROJECT_INI
from alembic_project import sa_url, stock_env

from _support import cli

INI = PROJECT_INI.replace("dsql_migrate.profile = {profile}\n", "")

REVISION = '''\
revision = "tg1"
down_revision = None
import sqlalchemy as sa
from alembic import op


def upgrade():
    op.create_table("t7tg_items", sa.Column("id", sa.BigInteger, primary_key=True))


def downgrade():
    op.drop_table("t7tg_items")
'''


def adopted_project(root: Path, ini_url: str, revision: str = REVISION) -> Path:
    """A stock Alembic project with the one-line change, as a user adopts it."""
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True)
    env = stock_env().replace("from alembic import context\n",
                              "from dsql_migrate.alembic import context\n")
    (root / "migrations" / "env.py").write_text(env)
    (versions / "tg1_items.py").write_text(revision)
    (root / "alembic.ini").write_text(INI.format(url=ini_url))
    return root / "alembic.ini"


def regclass(url: str, name: str) -> object:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()
        return row[0] if row else None


def test_url_wins_over_the_ini_with_a_stock_env_py(workdir: Path, dsql_url: str,
                                                   scratch_url: str) -> None:
    adopted_project(workdir, sa_url(scratch_url))
    try:
        up = cli("upgrade", "--url", dsql_url)
        assert up.exit_code == 0, up.output
        assert regclass(dsql_url, "t7tg_items") is not None
        assert regclass(scratch_url, "t7tg_items") is None
        assert regclass(scratch_url, "alembic_version") is None
        assert "tg1 (head)" in cli("current", "--url", dsql_url).output
        # the ini's database is at base: current without --url reads it
        assert "tg1" not in cli("current").output
    finally:
        assert cli("downgrade", "base", "--url", dsql_url).exit_code == 0
    assert regclass(dsql_url, "t7tg_items") is None


def test_env_url_wins_over_the_ini(workdir: Path, dsql_url: str, scratch_url: str,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    adopted_project(workdir, sa_url(scratch_url))
    with psycopg.connect(dsql_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS alembic_version")
    monkeypatch.setenv("DSQL_MIGRATE_URL", dsql_url)
    assert cli("stamp", "tg1").exit_code == 0
    assert "tg1 (head)" in cli("current").output
    with psycopg.connect(dsql_url, autocommit=True) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("tg1",)]
    assert cli("stamp", "base").exit_code == 0


def test_alembic_placeholder_url_is_a_clear_error(workdir: Path) -> None:
    adopted_project(workdir, "driver://user:pass@localhost/dbname")
    result = cli("current", "--url", "postgresql://admin@127.0.0.1:1/postgres")
    assert result.exit_code == 2
    assert "placeholder driver://user:pass@localhost/dbname" in result.output
    assert "engine_from(config)" in result.output
    assert "Traceback" not in result.output


def test_psycopg2_url_without_psycopg2_says_use_psycopg(workdir: Path) -> None:
    adopted_project(workdir, "postgresql+psycopg2://admin@127.0.0.1:1/postgres")
    result = cli("current")
    assert result.exit_code == 2
    assert "psycopg2" in result.output and "postgresql+psycopg://" in result.output
    assert "Traceback" not in result.output


BROKEN = {
    "syntax": ("def upgrade():\n    op.create_table('t7tg_x'\n", "SyntaxError"),
    "unknown_op": ("def upgrade():\n    op.add_colum('t7tg_x', sa.Column('a', sa.Integer))\n",
                   "AttributeError"),
    "import": ("import no_such_module_t7tg\n\ndef upgrade():\n    pass\n",
               "ModuleNotFoundError: No module named 'no_such_module_t7tg'"),
    # issue 13: any exception, not only the usual Python errors
    "runtime": ("def upgrade():\n    raise RuntimeError('data check failed')\n",
                "RuntimeError: data check failed"),
    "exception": ("def upgrade():\n    raise Exception('plain')\n", "Exception: plain"),
    "system_exit": ("def upgrade():\n    raise SystemExit(3)\n", "SystemExit(3)"),
    "library": ("def upgrade():\n    op.create_table('t7tg_x', sa.Column('a', sa.Integer), "
                "sa.Column('a', sa.Integer))\n", "DuplicateColumnError"),
    "module_level": ("raise RuntimeError('at import')\n\ndef upgrade():\n    pass\n",
                     "RuntimeError: at import"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_python_error_in_a_revision_is_file_line_message(case: str, workdir: Path,
                                                           dsql_url: str) -> None:
    body, error = BROKEN[case]
    revision = ('revision = "tg1"\ndown_revision = None\nimport sqlalchemy as sa\n'
                "from alembic import op\n\n" + body + "\n\ndef downgrade():\n    pass\n")
    adopted_project(workdir, sa_url(dsql_url), revision)
    path = workdir / "migrations" / "versions" / "tg1_items.py"
    lines = revision.splitlines()
    line = next(i for i, text in enumerate(lines, 1)
                if ("op." in text and "def" not in text) or "no_such" in text
                or text.lstrip().startswith("raise "))
    commands = [("upgrade", "--url", dsql_url)]
    if case == "syntax":  # loading the revisions fails in every command
        commands += [("history",), ("revision", "-m", "next")]
    for command in commands:
        result = cli(*command)
        assert result.exit_code == 2, result.output
        assert f"{path}:{line}" in result.output and error in result.output, result.output
        assert "hint: fix the code at that line" in result.output
        assert "Traceback" not in result.output
    assert regclass(dsql_url, "t7tg_x") is None


def test_upgrade_sql_from_base_creates_the_version_table(workdir: Path,
                                                         scratch_url: str) -> None:
    adopted_project(workdir, sa_url(scratch_url))
    result = cli("upgrade", "--sql")
    assert result.exit_code == 0, result.output
    script = result.output
    create = script.index("BEGIN;\nCREATE TABLE alembic_version (")
    assert create < script.index("CREATE TABLE t7tg_items") < script.index(
        "INSERT INTO alembic_version")
    assert script[create:].split("COMMIT;", 1)[0].count(";") == 2  # a transaction of its own
    with psycopg.connect(scratch_url, autocommit=True) as conn:  # a fresh database
        conn.execute(script.encode())
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("tg1",)]


def test_add_column_of_a_column_already_there_names_the_revision_and_op(
        workdir: Path, dsql_url: str) -> None:
    revision = ('revision = "tg1"\ndown_revision = None\nimport sqlalchemy as sa\n'
                "from alembic import op\n\n"
                "def upgrade():\n"
                "    op.add_column('t7tg_users', sa.Column('nick', sa.Text))\n\n"
                "def downgrade():\n    op.drop_column('t7tg_users', 'nick')\n")
    adopted_project(workdir, sa_url(dsql_url), revision)
    with psycopg.connect(dsql_url, autocommit=True) as conn:
        # what an abandoned, half-applied run of the revision left
        conn.execute("CREATE TABLE t7tg_users (id BIGINT PRIMARY KEY, nick TEXT)")
    try:
        result = cli("upgrade", "--abandon-previous", "--url", dsql_url)
        assert result.exit_code == 1, result.output
        assert ("tg1_items.py upgrade(): op.add_column('t7tg_users', 'nick'): t7tg_users "
                "already has a column nick") in result.output
        assert "ALTER TABLE t7tg_users DROP COLUMN nick" in result.output
        assert "replace_existing" not in result.output and "Traceback" not in result.output
    finally:
        with psycopg.connect(dsql_url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS t7tg_users")


def test_check_describes_each_difference_on_one_line() -> None:
    from dsql_migrate.alembic.project import describe_diff
    md = sa.MetaData()
    items = sa.Table("items", md, sa.Column("id", sa.Integer), sa.Column("sku", sa.Text))
    index = sa.Index("ix_sku", items.c.sku, unique=True)
    assert describe_diff(("add_table", items)) == "+ table items: in the models only"
    assert describe_diff(("remove_column", "s", "items", items.c.sku)) == (
        "- column s.items.sku: in the database only")
    assert describe_diff(("add_index", index)) == (
        "+ index ix_sku on items (sku): in the models only")
    assert describe_diff([("modify_nullable", None, "items", "sku", {}, True, False)]) == (
        "~ items.sku: nullable True in the database, False in the models")


def test_check_prints_sql_names_and_columns_not_object_reprs() -> None:
    """Issue 13: ``DefaultClause(<sqlalchemy... object at 0x...>)`` and ``constraint
    (unnamed): differs`` were printed."""
    from dsql_migrate.alembic.project import describe_diff
    md = sa.MetaData()
    items = sa.Table("items", md, sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("sku", sa.Text), sa.Column("n", sa.Integer))
    default = sa.DefaultClause(sa.text("now()"))
    line = describe_diff([("modify_default", None, "items", "sku", {}, None, default)])
    assert line == "~ items.sku: default none in the database, now() in the models"
    assert "object at 0x" not in describe_diff(
        [("modify_default", None, "items", "n", {}, sa.DefaultClause("0"),
          sa.DefaultClause(sa.literal(1)))])
    check = sa.CheckConstraint(items.c.n > 0, name="ck_n")
    items.append_constraint(check)
    assert describe_diff(("add_constraint", check)) == (
        "+ check constraint ck_n on items (n) CHECK (items.n > 0): in the models only")
    assert describe_diff(("validate_constraint", None, "items", "ck_n")) == (
        "~ constraint ck_n on items: NOT VALID in the database (the models want it validated)")
    assert describe_diff(("remove_constraint", items.primary_key)) == (
        "- primary key (unnamed) on items (id): in the database only")


SECOND = '''\
revision = "tg2"
down_revision = "tg1"
import sqlalchemy as sa
from alembic import op


def upgrade():
    op.add_column("t7tg_items", sa.Column("a", sa.Integer))
    op.alter_column("t7tg_items", "a", type_=sa.BigInteger)


def downgrade():
    op.create_index("ux_t7tg_items_a", "t7tg_items", ["a"], unique=True)
'''


def test_dry_run_shows_the_hash_the_upgrade_runs(workdir: Path, dsql_url: str) -> None:
    adopted_project(workdir, sa_url(dsql_url))
    url = ("--url", dsql_url)
    try:
        for _ in range(2):  # the second time after a downgrade: a new plan, hash known again
            dry = cli("upgrade", "--dry-run", *url)
            assert dry.exit_code == 0, dry.output
            shown = next(w for w in dry.output.split() if w.startswith("sha256:"))
            up = cli("upgrade", *url)
            assert up.exit_code == 0, up.output
            with psycopg.connect(dsql_url, autocommit=True) as conn:
                hashes = [r[0] for r in conn.execute(
                    "SELECT hash FROM dsql_migrate.plans WHERE label = %s",
                    ("alembic upgrade <base> -> tg1",))]
            assert shown in hashes, (shown, hashes)
            assert cli("downgrade", "base", *url).exit_code == 0
    finally:
        cli("downgrade", "base", *url)


def test_failed_downgrade_says_run_the_downgrade_again(workdir: Path, dsql_url: str) -> None:
    adopted_project(workdir, sa_url(dsql_url))
    (workdir / "migrations" / "versions" / "tg2_a.py").write_text(SECOND)
    url = ("--url", dsql_url)
    try:
        assert cli("upgrade", *url).exit_code == 0
        with psycopg.connect(dsql_url, autocommit=True) as conn:
            conn.execute("INSERT INTO t7tg_items (id, a) VALUES (1, 5), (2, 5)")
        down = cli("downgrade", "tg1", *url)
        assert down.exit_code == 1, down.output
        assert "Run the downgrade again" in down.output
        assert "upgrade again" not in down.output
        with psycopg.connect(dsql_url, autocommit=True) as conn:
            conn.execute("DELETE FROM t7tg_items WHERE id = 2")
        again = cli("downgrade", "tg1", *url)  # resumes: no failed plan left behind
        assert again.exit_code == 0, again.output
        assert cli("downgrade", "base", *url).exit_code == 0
    finally:
        with psycopg.connect(dsql_url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS t7tg_items")
            conn.execute("DELETE FROM alembic_version")


def test_sql_from_a_revision_after_base_says_offline_has_no_live_schema(workdir: Path) -> None:
    adopted_project(workdir, "postgresql+psycopg://nobody@127.0.0.1:1/none")
    (workdir / "migrations" / "versions" / "tg2_a.py").write_text(SECOND)
    assert cli("upgrade", "--sql").exit_code == 0  # from base: tg1 creates what tg2 changes
    result = cli("upgrade", "--sql", "tg1:tg2")
    assert result.exit_code == 2, result.output
    assert "offline mode has no live schema to plan against after base" in result.output
    assert "--dry-run" in result.output and "Traceback" not in result.output


def test_plain_alembic_command_prints_failed_not_a_traceback(workdir: Path,
                                                             dsql_url: str) -> None:
    revision = REVISION.replace(
        'op.create_table("t7tg_items", sa.Column("id", sa.BigInteger, primary_key=True))',
        'op.execute("TRUNCATE t7tg_items")')
    ini = adopted_project(workdir, sa_url(dsql_url), revision)
    result = subprocess.run([sys.executable, "-m", "alembic", "-c", str(ini), "upgrade", "head"],
                            capture_output=True, text=True, timeout=120, check=False,
                            cwd=workdir)
    output = result.stdout + result.stderr
    assert result.returncode != 0  # Alembic's own code for a failed command
    assert "FAILED: DSQL cannot do what this revision asks; nothing of it was run" in output, output
    assert "Traceback" not in output


def test_every_command_takes_the_target_of_the_project(workdir: Path, dsql_url: str) -> None:
    """Issue 13: ``status`` ignored alembic.ini's target (and started an emulator in the
    current directory); ``history --url`` failed. Every command takes -c, --url, --profile,
    --local-dir, and status/unlock use the ini's sqlalchemy.url."""
    project = workdir / "proj"
    ini = adopted_project(project, sa_url(dsql_url))
    up = cli("upgrade", "-c", str(ini))
    assert up.exit_code == 0, up.output
    try:
        status = cli("status", "-c", str(ini))
        assert status.exit_code == 0, status.output
        assert "record upgrade <base> -> tg1 in alembic_version" in status.output, status.output
        assert not (workdir / ".dsql-migrate").exists()  # no second emulator started
        target = ["-c", str(ini), "--url", dsql_url, "--profile", "current"]
        for command in (["history"], ["history", "-i"], ["heads"], ["branches"],
                        ["show", "tg1"], ["current"], ["check"]):
            result = cli(*command, *target)
            assert result.exit_code in (0, 1), (command, result.output)  # check: no models
            assert "No such option" not in result.output, (command, result.output)
        assert "tg1" in cli("heads", *target).output
        assert "(current)" in cli("history", "-i", *target).output
    finally:
        assert cli("downgrade", "base", "-c", str(ini)).exit_code == 0
