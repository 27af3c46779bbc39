"""what aurora-dsql-sqlalchemy gets wrong on its own: an Identity() without cache, partial-index
WHERE and USING (silently dropped), INCLUDE (a crash under op.create_index)

Revision ID: g1
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "g1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    events = op.create_table(
        "dg_events",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("status", sa.String(10)),
        sa.Column("payload", sa.Text),
    )
    op.bulk_insert(events, [{"kind": f"k{i}", "status": ("open", "done", None)[i % 3],
                             "payload": f"p{i}"} for i in range(30)])
    # the options as SQLAlchemy's PostgreSQL dialect spells them ...
    op.create_index("ix_dg_open_pg", "dg_events", ["kind"],
                    postgresql_where=sa.text("status = 'open'"))
    op.create_index("ix_dg_cover_pg", "dg_events", ["kind"], postgresql_include=["payload"])
    op.create_index("ix_dg_hash_pg", "dg_events", ["payload"], postgresql_using="btree")
    # ... and as aurora-dsql-sqlalchemy's documentation spells them
    op.create_index("ix_dg_open_aws", "dg_events", ["status"],
                    auroradsql_where=sa.text("status <> 'done'"))
    op.create_index("ix_dg_cover_aws", "dg_events", ["status"],
                    auroradsql_include=["payload", "kind"])
    op.create_index("ux_dg_kind_status", "dg_events", ["kind", "status"], unique=True,
                    auroradsql_nulls_not_distinct=True)


def downgrade() -> None:
    op.drop_table("dg_events")
