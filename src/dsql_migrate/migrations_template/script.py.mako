"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

Runs on Aurora DSQL through dsql-migrate: every op below becomes DSQL-safe steps (one DDL per
transaction, CREATE INDEX ASYNC awaited, type changes by table recreation), resumable where it
stopped; `dsql-migrate upgrade --dry-run` shows them. Besides Alembic's ops:
op.recreate_table(t) (a with-block), op.create_index_async, op.validate_constraint_async,
op.create_unique_constraint_using_index and op.backfill(t, set={...}, where=...).
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}

revision: str = ${repr(up_revision)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
