"""The differential real-world harness: public projects' Alembic histories, applied revision by
revision with stock Alembic on PostgreSQL and through the dsql-migrate plugin on the local
emulator, compared after every revision. Run it with ``python -m realworld`` (see
``docs/realworld.md``)."""
