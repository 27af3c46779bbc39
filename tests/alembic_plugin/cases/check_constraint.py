"""A CHECK: pre-check, NOT VALID, async validation (classic: recreation)."""
from alembic import op

EXPECTED = {
    "current": ["verify", "ddl", "async_validate"],
    "classic": ["ddl", "copy", "verify", "swap", "ddl", "ddl", "ddl", "ddl", "async_index",
                "verify", "ddl"],
}


def upgrade() -> None:
    op.create_check_constraint("ck_t_a", "t", "a >= 0")
