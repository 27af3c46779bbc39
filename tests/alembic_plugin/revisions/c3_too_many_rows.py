"""an UPDATE through the connection over more rows than a DSQL transaction takes

Revision ID: c3
Revises: c2
"""
import sqlalchemy as sa
from alembic import op

revision = "c3"
down_revision = "c2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    big = op.create_table(
        "t8_big",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("n", sa.Integer),
    )
    op.bulk_insert(big, [{"id": i, "n": 0} for i in range(1, 3101)])
    op.get_bind().execute(sa.text("UPDATE t8_big SET n = n + 1"))


def downgrade() -> None:
    op.drop_table("t8_big")
