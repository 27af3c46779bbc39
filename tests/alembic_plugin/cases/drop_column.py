"""DROP COLUMN: in place (current); recreation without the column and its index (classic)."""
from alembic import op

EXPECTED = {
    "current": ["ddl"],
    "classic": ["ddl", "ddl", "copy", "verify", "swap", "ddl", "verify", "ddl"],
}


def upgrade() -> None:
    op.drop_column("t", "b")
