"""a foreign key, raw SQL and a backfill

Revision ID: r4
Revises: r3
"""
from alembic import op

revision = "r4"
down_revision = "r3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_foreign_key("fk_t7_purchases_user", "t7_purchases", "t7_users",
                          ["user_id"], ["id"])
    op.execute("CREATE INDEX ASYNC ix_t7_purchases_user ON t7_purchases (user_id);"
               "COMMENT ON TABLE t7_purchases IS 'orders, renamed'")
    op.backfill("t7_users", set={"status": "'active'"}, where="id <= 20", batch_size=7)


def downgrade() -> None:
    op.execute("DROP INDEX ix_t7_purchases_user")
    op.drop_constraint("fk_t7_purchases_user", "t7_purchases", type_="foreignkey")
