"""The ``alembic.plugins`` entry point (Alembic >= 1.18): loaded whenever Alembic starts.

Alembic loads plugins in the middle of its own import, before its PostgreSQL impl exists, so
:func:`setup` registers the ``auroradsql`` impl lazily: a factory under the dialect's name that
imports :mod:`.impl` (which then registers the real class) the first time a migration context
needs it. That is all a plugin can do: running revisions as Plans needs the env.py change
(:mod:`dsql_migrate.alembic.context`).
"""

from __future__ import annotations

import sys
from typing import Any

DIALECT = "auroradsql"


def _lazy_impl(*args: Any, **kw: Any) -> Any:
    from .impl import AuroraDsqlImpl

    return AuroraDsqlImpl(*args, **kw)


def setup(plugin: Any) -> None:
    """Called by Alembic with its ``Plugin`` object."""
    impl_module = sys.modules.get("alembic.ddl.impl")
    impls = getattr(impl_module, "_impls", None)
    if isinstance(impls, dict):
        impls.setdefault(DIALECT, _lazy_impl)


__all__ = ["setup"]
