"""alter columns, drop a column, rename

Revision ID: r3
Revises: r2
"""
import sqlalchemy as sa
from alembic import op

revision = "r3"
down_revision = "r2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("t7_orders", "amount", type_=sa.BigInteger, existing_type=sa.Integer)
    op.alter_column("t7_orders", "note", nullable=False, existing_type=sa.Text)
    op.alter_column("t7_users", "email", server_default="none@example.com")
    op.drop_column("t7_orders", "legacy")
    op.alter_column("t7_users", "age", new_column_name="years")
    op.rename_table("t7_orders", "t7_purchases")


def downgrade() -> None:
    op.rename_table("t7_purchases", "t7_orders")
    op.alter_column("t7_users", "years", new_column_name="age")
    op.add_column("t7_orders", sa.Column("legacy", sa.Text))
    op.alter_column("t7_users", "email", server_default=None)
    op.alter_column("t7_orders", "note", nullable=True, existing_type=sa.Text)
    op.alter_column("t7_orders", "amount", type_=sa.Integer, existing_type=sa.BigInteger)
