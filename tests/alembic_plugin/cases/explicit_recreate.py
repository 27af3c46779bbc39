"""op.recreate_table: the table is recreated with the changes inside the block, in both
profiles, even the ones DSQL could make in place (the drop of column b, current profile)."""
import sqlalchemy as sa
from alembic import op

import dsql_migrate.alembic.ops  # noqa: F401 - op.recreate_table

EXPECTED = {
    "current": ["ddl", "copy", "verify", "swap", "ddl", "ddl", "ddl", "verify", "ddl"],
    "classic": ["ddl", "copy", "verify", "swap", "ddl", "ddl", "ddl", "verify", "ddl"],
}


def upgrade() -> None:
    with op.recreate_table("t", reason="change type of a") as batch_op:
        batch_op.alter_column("a", type_=sa.BigInteger, existing_type=sa.Integer)
        batch_op.drop_index("ix_t_b")
        batch_op.drop_column("b")
