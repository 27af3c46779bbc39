"""DROP COLUMN: in place (current); recreation without the column and its index (classic)."""
from alembic import op

EXPECTED = {
    "current": ["ddl"],
    "classic": ["ddl", "copy", "verify", "swap", "ddl", "ddl", "ddl", "verify", "ddl"],
}


def upgrade() -> None:
    op.drop_column("t", "b")
