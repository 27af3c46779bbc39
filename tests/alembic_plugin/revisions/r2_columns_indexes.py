"""columns, indexes, constraints

Revision ID: r2
Revises: r1
"""
import sqlalchemy as sa
from alembic import op

revision = "r2"
down_revision = "r1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("t7_users", sa.Column("age", sa.Integer))
    op.add_column("t7_users", sa.Column("status", sa.String(20), server_default="new"))
    op.create_index("ix_t7_users_email", "t7_users", ["email"])
    op.create_unique_constraint("uq_t7_users_name", "t7_users", ["name"])
    op.create_check_constraint("ck_t7_orders_amount", "t7_orders", "amount >= 0")


def downgrade() -> None:
    op.drop_constraint("ck_t7_orders_amount", "t7_orders", type_="check")
    op.drop_constraint("uq_t7_users_name", "t7_users", type_="unique")
    op.drop_index("ix_t7_users_email", table_name="t7_users")
    op.drop_column("t7_users", "status")
    op.drop_column("t7_users", "age")
