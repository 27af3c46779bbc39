"""The explicit forms autogenerate writes: a unique index built ASYNC then made the constraint,
a CHECK added NOT VALID then validated by an async job, an index ASYNC (classic: the unique
constraint and the CHECK recreate the table, which builds the indexes)."""
from alembic import op

import dsql_migrate.alembic.ops  # noqa: F401 - the DSQL ops

EXPECTED = {
    "current": ["verify", "async_index", "ddl", "verify", "ddl", "async_validate",
                "async_index"],
    "classic": ["verify", "ddl", "copy", "verify", "swap", "ddl", "ddl", "ddl", "ddl",
                "async_index", "async_index", "verify", "ddl"],
}


def upgrade() -> None:
    op.create_index_async("uq_t_a", "t", ["a"], unique=True)
    op.create_unique_constraint_using_index("uq_t_a", "t")
    op.create_check_constraint("ck_t_a", "t", "a >= 0", postgresql_not_valid=True)
    op.validate_constraint_async("ck_t_a", "t")
    op.create_index_async("ix_t_ab", "t", ["a", "b"])
