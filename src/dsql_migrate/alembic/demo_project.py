"""The example project ``dsql-migrate demo`` scaffolds: four Alembic revisions that each need
something DSQL does differently from PostgreSQL.

1. two tables with a few thousand rows (inserted 1,000 rows per transaction: DSQL's row limit);
2. ``ADD COLUMN`` and a batched, resumable backfill (``op.backfill``);
3. a unique index (built with ``CREATE UNIQUE INDEX ASYNC`` and waited for);
4. a column type change, done by recreating the table (copy in keyset batches, verify, swap).
"""

from __future__ import annotations

from pathlib import Path

CUSTOMERS = 3000
ORDERS = 4000

_HEADER = '''"""{doc}

Revision ID: {rev}
Revises: {down}
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = {down_repr}
branch_labels = None
depends_on = None
'''

REVISIONS: dict[str, tuple[str, str]] = {
    "0001_customers_and_orders.py": ("create customers and orders, with data", f'''

def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.BigInteger, sa.Identity(cache=65536), primary_key=True),
        sa.Column("email", sa.String(200), nullable=False),
        sa.Column("name", sa.Text),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("customer_id", sa.BigInteger, nullable=False),
        sa.Column("total_cents", sa.Integer),
    )
    # raw SQL goes through dsql-migrate's SQL layer: split, checked, one transaction each
    for start in range(0, {CUSTOMERS}, 1000):
        op.execute(
            "INSERT INTO customers (email, name) "
            "SELECT 'customer' || g || '@example.com', 'Customer ' || g "
            f"FROM generate_series({{start + 1}}, {{start + 1000}}) AS g")
    for start in range(0, {ORDERS}, 1000):
        op.execute(
            "INSERT INTO orders (id, customer_id, total_cents) "
            "SELECT g, 1 + g % {CUSTOMERS}, (g * 37) % 10000 "
            f"FROM generate_series({{start + 1}}, {{start + 1000}}) AS g")


def downgrade() -> None:
    op.drop_table("orders")
    op.drop_table("customers")
'''),
    "0002_customer_tier.py": ("add customers.tier and backfill it in batches", '''

def upgrade() -> None:
    op.add_column("customers", sa.Column("tier", sa.String(20)))
    op.backfill("customers",
                set={"tier": "CASE WHEN id % 10 = 0 THEN 'gold' ELSE 'standard' END"},
                where="tier IS NULL", batch_size=500)


def downgrade() -> None:
    op.drop_column("customers", "tier")
'''),
    "0003_unique_email.py": ("a unique index on customers.email", '''

def upgrade() -> None:
    op.create_index("ux_customers_email", "customers", ["email"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_customers_email", table_name="customers")
'''),
    "0004_orders_total_bigint.py": ("orders.total_cents INTEGER -> BIGINT (table recreation)", '''

def upgrade() -> None:
    op.alter_column("orders", "total_cents", type_=sa.BigInteger(), existing_type=sa.Integer())


def downgrade() -> None:
    op.alter_column("orders", "total_cents", type_=sa.Integer(), existing_type=sa.BigInteger())
'''),
}


def write_revisions(versions: Path) -> list[Path]:
    """Write the demo revisions into ``versions`` (a chain 0001 → 0004)."""
    written: list[Path] = []
    down: str | None = None
    for filename, (doc, body) in REVISIONS.items():
        rev = filename[:4]
        header = _HEADER.format(doc=doc, rev=rev, down=down or "", down_repr=repr(down))
        path = versions / filename
        path.write_text(header + body, encoding="utf-8")
        written.append(path)
        down = rev
    return written


__all__ = ["CUSTOMERS", "ORDERS", "REVISIONS", "write_revisions"]
