"""ADD COLUMN with a server default: bare column, default, backfill (classic: recreation)."""
import sqlalchemy as sa
from alembic import op

EXPECTED = {
    "current": ["ddl", "ddl", "backfill"],
    "classic": ["ddl", "copy", "verify", "swap", "ddl", "ddl", "ddl", "ddl", "async_index",
                "verify", "ddl"],
}


def upgrade() -> None:
    op.add_column("t", sa.Column("status", sa.String(10), server_default="new"))
