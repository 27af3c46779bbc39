"""A type change: the table is recreated (copy, verify, swap), its index rebuilt ASYNC."""
import sqlalchemy as sa
from alembic import op

EXPECTED = {
    "current": ["ddl", "copy", "verify", "swap", "ddl", "ddl", "ddl", "ddl", "async_index",
                "verify", "ddl"],
    "classic": ["ddl", "copy", "verify", "swap", "ddl", "ddl", "ddl", "ddl", "async_index",
                "verify", "ddl"],
}


def upgrade() -> None:
    op.alter_column("t", "a", type_=sa.BigInteger, existing_type=sa.Integer)
