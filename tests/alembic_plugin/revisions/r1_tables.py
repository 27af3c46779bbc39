"""tables with data

Revision ID: r1
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "r1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    users = op.create_table(
        "t7_users",
        sa.Column("id", sa.BigInteger, sa.Identity(cache=65536), primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("email", sa.String(100)),
    )
    orders = op.create_table(
        "t7_orders",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("user_id", sa.BigInteger),
        sa.Column("amount", sa.Integer),
        sa.Column("note", sa.Text),
        sa.Column("legacy", sa.Text),
    )
    op.bulk_insert(users, [{"name": f"user{i}", "email": f"u{i}@example.com"}
                           for i in range(1, 41)])
    op.bulk_insert(orders, [{"id": i, "user_id": 1 + i % 40, "amount": i * 10,
                             "note": f"order {i}", "legacy": "x"} for i in range(1, 61)])


def downgrade() -> None:
    op.drop_table("t7_orders")
    op.drop_table("t7_users")
