"""op.batch_alter_table: the batch's ops planned as if written one by one: NOT NULL recreates
the table (the new column is part of its definition), both indexes are built ASYNC after it."""
import sqlalchemy as sa
from alembic import op

EXPECTED = {
    "current": ["verify", "ddl", "copy", "verify", "swap", "ddl", "ddl", "ddl", "ddl",
                "async_index", "async_index", "verify", "ddl"],
    "classic": ["verify", "ddl", "copy", "verify", "swap", "ddl", "ddl", "ddl", "ddl",
                "async_index", "async_index", "verify", "ddl"],
}


def upgrade() -> None:
    with op.batch_alter_table("t") as batch_op:
        batch_op.add_column(sa.Column("c", sa.String(20)))
        batch_op.alter_column("a", nullable=False, existing_type=sa.Integer)
        batch_op.create_index("ix_t_c", ["c"])
