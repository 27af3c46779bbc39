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
