"""A new column, its batched backfill, then an index on it, in the revision's order."""
import sqlalchemy as sa
from alembic import op

EXPECTED = {
    "current": ["ddl", "backfill", "async_index"],
    "classic": ["ddl", "backfill", "async_index"],
}


def upgrade() -> None:
    op.add_column("t", sa.Column("c", sa.Integer))
    op.backfill("t", set={"c": "a * 2"}, batch_size=100)
    op.create_index("ix_t_c", "t", ["c"])
