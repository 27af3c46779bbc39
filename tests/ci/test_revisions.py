"""The offline revision check (``dsql-migrate ci lint-revisions``): no database, no env.py."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from dsql_migrate.ci.revisions import check_revision_file
from dsql_migrate.cli import main
from dsql_migrate.profiles import get_profile

HEAD = '''\
"""a revision

Revision ID: {rev}
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = None

'''

CLEAN = HEAD + textwrap.dedent('''\
    def upgrade() -> None:
        op.create_table("account", sa.Column("id", sa.BigInteger, primary_key=True),
                        sa.Column("email", sa.Text, nullable=False))
        op.create_index("ix_account_email", "account", ["email"])
        op.add_column("account", sa.Column("note", sa.Text))
        op.execute("UPDATE account SET note = 'x' WHERE id < 10")


    def downgrade() -> None:
        op.drop_table("account")
    ''')

BAD = HEAD + textwrap.dedent('''\
    def upgrade() -> None:
        op.create_table("t", sa.Column("id", sa.BigInteger, primary_key=True))
        op.execute("CREATE TABLE u (id serial PRIMARY KEY)")
        op.execute("TRUNCATE t")


    def downgrade() -> None:
        op.execute("DROP TABLE u")
        op.execute("TRUNCATE t")
    ''')


def _write(folder: Path, name: str, text: str) -> Path:
    (folder / "versions").mkdir(exist_ok=True)
    path = folder / "versions" / name
    path.write_text(text)
    return path


def test_a_clean_revision_has_no_problems(tmp_path: Path) -> None:
    path = _write(tmp_path, "a1_clean.py", CLEAN.format(rev="a1"))
    result = check_revision_file(path, get_profile("current"))
    assert (result.errors, result.skipped) == ([], None)


def test_problems_name_the_revision_line_and_the_rule(tmp_path: Path) -> None:
    path = _write(tmp_path, "b2_bad.py", BAD.format(rev="b2"))
    result = check_revision_file(path, get_profile("current"))
    text = "\n".join(result.errors)
    assert len(result.errors) == 2, text  # one for upgrade(), one for downgrade()
    assert "b2_bad.py:14 in upgrade(): op.execute #1:1:17: serial_type" in text
    assert "b2_bad.py:15 in upgrade(): op.execute #2:1:1: truncate" in text
    assert "b2_bad.py:20 in downgrade(): op.execute #2:1:1: truncate" in text


def test_command_exit_codes_and_output(tmp_path: Path) -> None:
    clean = _write(tmp_path, "a1_clean.py", CLEAN.format(rev="a1"))
    bad = _write(tmp_path, "b2_bad.py", BAD.format(rev="b2"))
    helper = _write(tmp_path, "helpers.py", "X = 1\n")
    runner = CliRunner()
    ok = runner.invoke(main, ["ci", "lint-revisions", str(clean), str(helper)])
    assert ok.exit_code == 0, ok.output
    assert "no problems found in 1 revision file(s)" in ok.output
    failed = runner.invoke(main, ["ci", "lint-revisions", str(clean), str(bad)])
    assert failed.exit_code == 1
    assert failed.output.startswith(f"error: {bad}: DSQL cannot do what this revision asks")
    assert "2 error(s), 0 warning(s) in 2 revision file(s)" in failed.output


def test_a_revision_whose_imports_fail_is_a_clear_error(tmp_path: Path) -> None:
    text = CLEAN.format(rev="c3").replace("import sqlalchemy as sa",
                                          "import sqlalchemy as sa\nimport myapp.models")
    path = _write(tmp_path, "c3.py", text)
    result = CliRunner().invoke(main, ["ci", "lint-revisions", str(path)])
    assert result.exit_code == 1
    assert "importing it failed: No module named 'myapp'" in result.output
    assert "additional_dependencies" in result.output
    assert "Traceback" not in result.output


def test_a_revision_that_reads_the_database_is_checked_up_to_that_line(tmp_path: Path) -> None:
    text = HEAD.format(rev="d4") + textwrap.dedent('''\
        def upgrade() -> None:
            op.execute("TRUNCATE t")
            rows = op.get_bind().execute(sa.text("SELECT 1")).fetchall()
            op.execute("TRUNCATE u")
        ''')
    path = _write(tmp_path, "d4.py", text)
    result = check_revision_file(path, get_profile("current"))
    assert "d4.py:13 in upgrade(): op.execute #1:1:1: truncate" in "\n".join(result.errors)
    assert "TRUNCATE u" not in "\n".join(result.errors)
    assert len(result.warnings) == 1
    assert "d4.py:14" in result.warnings[0] and "not checked" in result.warnings[0]


def test_the_check_leaves_no_bytecode_beside_the_revisions(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """A commit hook must not change the work tree: running a revision (and a helper module it
    imports from beside it) must not write ``__pycache__`` into versions/, which pre-commit
    reports as "files were modified by this hook" wherever bytecode writing is on (the
    default outside this test suite's environment)."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "_helpers.py").write_text("NOTE = 'x'\n")
    revision = versions / "a1_helper.py"
    revision.write_text(CLEAN.format(rev="a1").replace(
        "import sqlalchemy as sa\n", "import sqlalchemy as sa\nimport _helpers\n", 1))
    result = check_revision_file(revision, get_profile("current"))
    assert result.skipped is None and not result.errors, result
    assert sorted(p.name for p in versions.iterdir()) == ["_helpers.py", "a1_helper.py"]
    assert sys.dont_write_bytecode is False  # put back
