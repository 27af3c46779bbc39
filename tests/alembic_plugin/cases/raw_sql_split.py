"""One op.execute string with three statements and a transaction: one step per statement."""
from alembic import op

EXPECTED = {
    "current": ["ddl", "async_index", "dml"],
    "classic": ["ddl", "async_index", "dml"],
}


def upgrade() -> None:
    op.execute("BEGIN; CREATE TABLE u (id BIGINT PRIMARY KEY, b TEXT); COMMIT;"
               "CREATE INDEX ASYNC ix_u_b ON u (b);"
               "INSERT INTO u VALUES (1, 'x')")
