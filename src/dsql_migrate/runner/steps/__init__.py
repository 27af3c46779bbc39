"""One module per step kind, each with its execute, resume rule and postcondition probe
(:mod:`.base` says what each is), found by :func:`implementation` (step kind → implementation).

=====================  =====================================
kind                   module
=====================  =====================================
``ddl``                :mod:`.ddl` (a backup drop is one)
``swap``               :mod:`.swap`
``async_index``        :mod:`.async_job`
``async_validate``     :mod:`.async_job`
``backfill``           :mod:`.backfill` (over :mod:`.lanes`)
``copy``               :mod:`.copy` (over :mod:`.lanes`)
``verify``             :mod:`.verify`
``dml``                :mod:`.dml`
=====================  =====================================
"""

from __future__ import annotations

# importing a kind's module registers it
from . import async_job, backfill, copy, ddl, dml, swap, verify
from .base import StepContext, StepKindImpl, implementation, implementation_for, registered

__all__ = [
    "StepContext",
    "StepKindImpl",
    "async_job",
    "backfill",
    "copy",
    "ddl",
    "dml",
    "implementation",
    "implementation_for",
    "registered",
    "swap",
    "verify",
]
