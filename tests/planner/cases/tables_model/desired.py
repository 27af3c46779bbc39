from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("name", sa.Text, info={"renamed_from": "full_name"}),
    info={"renamed_from": "clients"},
)

invoices = sa.Table(
    "invoices",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(cache=65536), primary_key=True),
    sa.Column("customer_id", sa.BigInteger, sa.ForeignKey("customers.id"), nullable=False),
    sa.Column("total", sa.Numeric(12, 2), nullable=False, server_default="0"),
    sa.Column("state", sa.String(20), nullable=False, server_default="open"),
    sa.CheckConstraint("total >= 0", name="invoices_total_check"),
    sa.UniqueConstraint("customer_id", "id", name="invoices_customer_uq"),
)
sa.Index("ix_invoices_state", invoices.c.state)
