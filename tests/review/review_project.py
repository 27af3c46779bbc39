"""Temporary git repositories holding a scaffolded dsql-migrate Alembic project."""

from __future__ import annotations

import subprocess
from pathlib import Path

from click.testing import CliRunner, Result

from dsql_migrate.cli import main
from dsql_migrate.cli.migrations import scaffold

HEADER = '''"""{doc}

Revision ID: {rev}
Revises: {down}
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = {down_repr}
branch_labels = None
depends_on = None


def upgrade() -> None:
{body}

def downgrade() -> None:
    pass
'''

ITEMS = '''    op.create_table(
        "items",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("name", sa.Text),
        sa.Column("qty", sa.Integer),
    )
'''


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def write_revision(root: Path, rev: str, down: str | None, body: str, doc: str = "") -> Path:
    path = root / "migrations" / "versions" / f"{rev}_{(doc or 'r' + rev).replace(' ', '_')}.py"
    path.write_text(HEADER.format(doc=doc or f"revision {rev}", rev=rev, down=down or "",
                                  down_repr=repr(down), body=body), encoding="utf-8")
    return path


def make_repo(root: Path, *, branch: str = "main") -> Path:
    """``root``: a git repository whose ``branch`` holds a project at revision 0001 (table
    ``items``), checked out on a new branch ``change``. Returns the revision file."""
    git(root, "init", "-q", "-b", branch)
    git(root, "config", "user.email", "review@example.com")
    git(root, "config", "user.name", "review")
    scaffold(root, "migrations")
    (root / ".gitignore").write_text(".dsql-migrate/\n__pycache__/\n")
    first = write_revision(root, "0001", None, ITEMS, "items")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    git(root, "checkout", "-q", "-b", "change")
    return first


def review(*args: str) -> Result:
    return CliRunner().invoke(main, ["review", *args])
