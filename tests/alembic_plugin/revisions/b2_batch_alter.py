"""the same table changed in batch mode, as Alembic's docs write it

Revision ID: b2
Revises: b1
"""
import sqlalchemy as sa
from alembic import op

revision = "b2"
down_revision = "b1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bt_items") as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(20)))
        batch_op.alter_column("price", type_=sa.BigInteger, existing_type=sa.Integer)
        batch_op.alter_column("name", nullable=False, existing_type=sa.String(50))
        batch_op.alter_column("old_label", new_column_name="label")
        batch_op.drop_column("legacy")
        batch_op.create_index("ix_bt_items_status", ["status"])
        batch_op.create_unique_constraint("uq_bt_items_label", ["label"])
        batch_op.create_check_constraint("ck_bt_items_price", "price >= 0")
    op.backfill("bt_items", set={"status": "'new'"}, where="status IS NULL", batch_size=500)


def downgrade() -> None:
    with op.batch_alter_table("bt_items") as batch_op:
        batch_op.drop_constraint("ck_bt_items_price", type_="check")
        batch_op.drop_constraint("uq_bt_items_label", type_="unique")
        batch_op.drop_index("ix_bt_items_status")
        batch_op.add_column(sa.Column("legacy", sa.Text))
        batch_op.alter_column("label", new_column_name="old_label")
        batch_op.alter_column("name", nullable=True, existing_type=sa.String(50))
        batch_op.alter_column("price", type_=sa.Integer, existing_type=sa.BigInteger)
        batch_op.drop_column("status")
