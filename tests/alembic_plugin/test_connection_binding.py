"""Issue 13, airflow 0094, on a minimal revision: a statement the revision sends through the
connection with a bound value whose type only the value can tell (``json_build_object('prefix',
:prefix)``) runs as it does under PostgreSQL's default driver, psycopg2, which binds values
client-side (psycopg 3 binds them on the server, which cannot type such a parameter: "could not
determine data type of parameter $3")."""

from __future__ import annotations

from pathlib import Path

from alembic_project import make_project
from test_harness_findings import HEAD, query, run_cli

FIRST = '''
def upgrade():
    op.create_table("cb_deadline", sa.Column("id", sa.BigInteger, primary_key=True,
                                             autoincrement=False))
    op.execute("INSERT INTO cb_deadline VALUES (1), (2)")


def downgrade():
    op.drop_table("cb_deadline")
'''

SECOND = '''
def upgrade():
    op.add_column("cb_deadline", sa.Column("data", sa.JSON(), nullable=True))
    rows = op.get_bind().execute(sa.text("""
        WITH batch AS (SELECT id FROM cb_deadline WHERE id > :last_id ORDER BY id
                       LIMIT :batch_size)
        UPDATE cb_deadline d SET data = json_build_object('prefix', :prefix, 'n', d.id)
        FROM batch b WHERE d.id = b.id RETURNING d.id"""),
        {"last_id": 0, "batch_size": 10, "prefix": "deadline"}).fetchall()
    assert sorted(r[0] for r in rows) == [1, 2], rows
    count = op.get_bind().execute(sa.text("SELECT count(*) FROM cb_deadline WHERE id > :n"),
                                  {"n": 1}).scalar()
    assert count == 1, count


def downgrade():
    op.drop_column("cb_deadline", "data")
'''


def test_values_are_bound_as_postgresql_s_default_driver_binds_them(
        tmp_path: Path, dsql_url: str) -> None:
    ini = make_project(tmp_path, dsql_url, revisions=())
    versions = tmp_path / "migrations" / "versions"
    (versions / "cb1.py").write_text(HEAD.format(rev="cb1", down=None) + FIRST)
    (versions / "cb2.py").write_text(HEAD.format(rev="cb2", down="cb1") + SECOND)
    try:
        up = run_cli("upgrade", "head", "-c", str(ini))
        assert up.returncode == 0, up.stderr
        assert query(dsql_url, "SELECT id, data::text FROM cb_deadline ORDER BY id") == [
            (1, '{"prefix" : "deadline", "n" : 1}'), (2, '{"prefix" : "deadline", "n" : 2}')]
    finally:
        down = run_cli("downgrade", "base", "-c", str(ini))
        assert down.returncode == 0, down.stderr
