"""Issue 13, on minimal revisions: what DSQL cannot do anywhere in a revision is refused
before any of it runs, also when it comes after a connection use (airflow 0049: a plpgsql
function after an INSERT/DELETE through the connection; prefect 8905262ec07f: CREATE TYPE
after a read that made the ops before it run). And driver SQL with no values goes to the
server as written (prefect c8d5f2a71b3e: ``format('%I.%I', ...)`` through exec_driver_sql)."""

from __future__ import annotations

from pathlib import Path

from alembic_project import make_project
from test_harness_findings import HEAD, query, run_cli

BASE = '''
def upgrade():
    op.create_table("rh_items", sa.Column("id", sa.BigInteger, primary_key=True,
                                          autoincrement=False))
    op.execute("INSERT INTO rh_items VALUES (1), (2)")


def downgrade():
    op.drop_table("rh_items")
'''

#: the read, the write and the DDL all come through the connection, the refused SQL last
LATE_REFUSAL = '''
def upgrade():
    op.add_column("rh_items", sa.Column("note", sa.Text(), nullable=True))
    conn = op.get_bind()
    conn.execute(sa.text("SELECT count(*) FROM rh_items")).scalar()
    conn.execute(sa.text("DELETE FROM rh_items WHERE id = 2"))
    op.execute("""CREATE FUNCTION rh_f() RETURNS integer LANGUAGE plpgsql
                  AS $$ BEGIN RETURN 1; END $$""")


def downgrade():
    pass
'''

#: a read of the column the revision adds: the rehearsal stops there, what came before is
#: checked, and the revision then runs (nothing refusable in it)
READS_ITS_OWN = '''
def upgrade():
    op.add_column("rh_items", sa.Column("note", sa.Text(), nullable=True))
    conn = op.get_bind()
    conn.execute(sa.text("UPDATE rh_items SET note = 'n' || id"))
    notes = conn.execute(sa.text("SELECT note FROM rh_items ORDER BY id")).scalars().all()
    assert notes == ["n1", "n2"], notes
    found = conn.exec_driver_sql(
        "SELECT format('%I.%I', 'public', 'rh_items') WHERE '%' = '%'").scalar()
    assert found == "public.rh_items", found


def downgrade():
    op.drop_column("rh_items", "note")
'''


def _project(tmp_path: Path, url: str, second: str) -> Path:
    ini = make_project(tmp_path, url, revisions=())
    versions = tmp_path / "migrations" / "versions"
    (versions / "rh1.py").write_text(HEAD.format(rev="rh1", down=None) + BASE)
    (versions / "rh2.py").write_text(HEAD.format(rev="rh2", down="rh1") + second)
    return ini


def test_a_refusal_after_a_connection_use_comes_before_anything_runs(
        tmp_path: Path, dsql_url: str) -> None:
    ini = _project(tmp_path, dsql_url, LATE_REFUSAL)
    try:
        assert run_cli("upgrade", "rh1", "-c", str(ini)).returncode == 0
        up = run_cli("upgrade", "head", "-c", str(ini))
        assert up.returncode != 0
        assert "rh2.py:" in up.stderr and "nothing of it was run" in up.stderr, up.stderr
        assert "plpgsql" in up.stderr.lower() or "function" in up.stderr.lower(), up.stderr
        # nothing of rh2 ran: no column, no row deleted, still at rh1
        assert query(dsql_url, "SELECT column_name FROM information_schema.columns "
                               "WHERE table_name = 'rh_items' ORDER BY 1") == [("id",)]
        assert query(dsql_url, "SELECT id FROM rh_items ORDER BY id") == [(1,), (2,)]
        assert query(dsql_url, "SELECT version_num FROM alembic_version") == [("rh1",)]
    finally:
        assert run_cli("downgrade", "base", "-c", str(ini)).returncode == 0


def test_a_revision_that_reads_what_it_made_still_runs_and_driver_sql_is_sent_as_written(
        tmp_path: Path, dsql_url: str) -> None:
    ini = _project(tmp_path, dsql_url, READS_ITS_OWN)
    try:
        up = run_cli("upgrade", "head", "-c", str(ini))
        assert up.returncode == 0, up.stderr
        assert query(dsql_url, "SELECT id, note FROM rh_items ORDER BY id") == [
            (1, "n1"), (2, "n2")]
    finally:
        assert run_cli("downgrade", "base", "-c", str(ini)).returncode == 0
