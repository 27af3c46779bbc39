"""a table with data, for the batch revision

Revision ID: b1
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "b1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    items = op.create_table(
        "bt_items",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(50)),
        sa.Column("price", sa.Integer),
        sa.Column("old_label", sa.String(20)),
        sa.Column("legacy", sa.Text),
    )
    op.bulk_insert(items, [{"id": i, "name": f"item{i}", "price": i * 100,
                            "old_label": f"L{i}", "legacy": "x"} for i in range(1, 1201)])


def downgrade() -> None:
    op.drop_table("bt_items")
