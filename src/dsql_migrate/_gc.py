"""The cyclic garbage collector paused around work that makes many objects at once.

Linting a large script (parse trees, diagnostics) and diffing a large schema (the snapshot,
the reflected tables, Alembic's comparison) make tens of thousands to millions of objects that
reference counting frees anyway; each collection they would set off walks all of them again
(about 20% of a 10,000-statement lint: issue 18). Imports only the standard library: the lint
fast path uses it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cycle_collector_paused() -> Iterator[None]:
    """Within the block the cycle collector is off; after it, as it was before (a caller that
    keeps it off gets it back off)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
