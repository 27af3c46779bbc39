"""Per-history setup outside Alembic, run on both sides before the first revision.

Some projects never run their history on an empty database: they build a base schema with
``MetaData.create_all()`` first. Such a base is built here, once per side, through the *raw*
PostgreSQL connection on both sides (it is not what the harness tests; the revisions are).
A history names its setup in :mod:`realworld.histories`; a setup gets the SQLAlchemy URL of
the side's database, with the history's modules importable.
"""

from __future__ import annotations

from collections.abc import Callable

Setup = Callable[[str], str]
"""Takes a SQLAlchemy URL, builds the base, returns one line saying what it built."""

SETUPS: dict[str, Setup] = {}


def setup(name: str) -> Callable[[Setup], Setup]:
    def register(function: Setup) -> Setup:
        SETUPS[name] = function
        return function
    return register


# the tables dagster's first revisions (2019) upgrade rather than create
DAGSTER_BASE_TABLES = ("event_logs", "runs", "run_tags", "snapshots")


@setup("dagster")
def dagster_base(url: str) -> str:
    """dagster builds a fresh database with ``create_all()`` and stamps it; its history (every
    op guarded by ``has_table``/``has_column``) upgrades databases made by older releases, whose
    first revisions expect ``event_logs``, ``runs`` and ``run_tags`` (and ``runs`` has a foreign key
    to ``snapshots``). The base is those four
    tables as dagster's models define them today (``create_all`` of just them); everything else
    the history creates itself. ``dagster instance migrate`` runs the history inside
    ``upgrading_instance(instance)`` (revision 006 wipes that instance's scheduler): the
    harness's instance has no scheduler."""
    import types

    import sqlalchemy as sa
    from dagster._core.storage.event_log.schema import (  # type: ignore[import-not-found]
        SqlEventLogStorageMetadata,
    )
    from dagster._core.storage.migration import utils  # type: ignore[import-not-found]
    from dagster._core.storage.runs.schema import (  # type: ignore[import-not-found]
        RunStorageSqlMetadata,
    )

    utils._UPGRADING_INSTANCE = types.SimpleNamespace(scheduler=None)
    tables = [t for md in (SqlEventLogStorageMetadata, RunStorageSqlMetadata)
              for t in md.sorted_tables if t.name in DAGSTER_BASE_TABLES]
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            for table in tables:
                table.create(conn)
    finally:
        engine.dispose()
    return ("create_all() of " + ", ".join(t.name for t in tables)
            + "; dagster's upgrading instance set (no scheduler)")
