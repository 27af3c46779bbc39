"""The Alembic plugin: Alembic revisions run on Aurora DSQL through the planner and the runner.

Enable it with one line in ``env.py``: replace ``from alembic import context`` with
``from dsql_migrate.alembic import context`` (see ``docs/alembic.md``). That module registers
the ``auroradsql`` impl (:mod:`.impl`) and ``op.backfill`` (:mod:`.ops`); the
``alembic.plugins`` entry point (:mod:`.plugin`) registers the impl whenever Alembic starts.

This package imports nothing at import time: Alembic loads the entry point while it is itself
being imported.
"""

from __future__ import annotations
