"""A unique constraint: pre-check, unique index ASYNC, ADD CONSTRAINT USING INDEX (classic:
recreation with the constraint inline)."""
from alembic import op

EXPECTED = {
    "current": ["verify", "async_index", "ddl"],
    "classic": ["verify", "ddl", "copy", "verify", "swap", "ddl", "ddl", "ddl", "ddl",
                "async_index", "verify", "ddl"],
}


def upgrade() -> None:
    op.create_unique_constraint("uq_t_a", "t", ["a"])
