"""The one-revision example of the pre-commit section of ``docs/ci.md``: ``a1_add_accounts.py``
creates the table ``account`` and runs one SQL statement with ``op.execute`` (line 15).

One place for it: the pre-commit hook's test writes it with a statement DSQL refuses and with
one it accepts, the click-free path's test lints both, and the start-up benchmark times the
hook on it. Importing this module imports nothing but the standard library.
"""

from __future__ import annotations

from pathlib import Path

NAME = "a1_add_accounts.py"
#: a statement DSQL runs (a bounded delete), and one it refuses (TRUNCATE)
ACCEPTED = "DELETE FROM account WHERE id < 1000"
REFUSED = "TRUNCATE account"

_TEMPLATE = '''"""add accounts

Revision ID: a1
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "a1"
down_revision = None


def upgrade() -> None:
    op.create_table("account", sa.Column("id", sa.BigInteger, primary_key=True))
    op.execute("{sql}")


def downgrade() -> None:
    op.drop_table("account")
'''


def text(sql: str = ACCEPTED) -> str:
    """The revision's source, its ``upgrade()`` running ``sql`` (one line, no ``"`` or ``\\``:
    it is written between double quotes as it is)."""
    if any(c in sql for c in '"\\\n'):
        raise ValueError(f"the example revision's SQL must be one plain line: {sql!r}")
    return _TEMPLATE.format(sql=sql)


def write(directory: Path, sql: str = ACCEPTED, name: str = NAME) -> Path:
    """Write the revision as ``directory/name`` (``directory`` must exist); its path."""
    path = directory / name
    path.write_text(text(sql), encoding="utf-8")
    return path
