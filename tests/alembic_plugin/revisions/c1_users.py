"""users with data

Revision ID: c1
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "c1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    users = op.create_table(
        "t8_users",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("name", sa.Text),
    )
    op.bulk_insert(users, [{"id": i, "name": f"user{i}"} for i in range(1, 51)])


def downgrade() -> None:
    op.drop_table("t8_users")
