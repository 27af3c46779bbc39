"""The *upgrade hash*: one hash over the plans of the revisions an ``upgrade`` will run, so that
a deploy runs what a review showed (``upgrade --expect-hash``, ``review``).

Each pending revision contributes its label (``alembic upgrade <from> -> <to>``: the revision
and where it starts) and a digest of its plan:

- the steps it executes (kinds, SQL, batch shapes, details: what :attr:`Plan.hash` covers),
  without what is particular to one run: the ``alembic_version`` step (its SQL follows from the
  label) and the run number a plan in the runner's state tables carries (``run``,
  ``alembic_part``);
- the live fingerprint (DESIGN.md §3.2a) of every table the revision is the first of the
  pending ones to touch, as the target had it before anything ran (``None``: no such table).

Why not the plans' own premises: a dry run compiles the revisions after the first against the
schema the earlier ones *predict*, which lacks what only PostgreSQL knows (a primary key's
index, say); at run time each revision is compiled against the live schema. The tables an
earlier pending revision touched are the upgrade's own doing; the others must be as they were
when the hash was taken. A table the upgrade does not touch is not part of the hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .catalog import Snapshot
from .fingerprint import table_fingerprint
from .plan import Plan, canonical_json

#: step details that differ between runs of the same revision (not what the step does)
RUN_SPECIFIC = frozenset({"run", "alembic_part"})
#: the detail that marks the step recording the revision in ``alembic_version``
VERSION_STEP = "alembic_version"
#: what a digest records for a table the plan no longer touches (never a fingerprint)
NOT_TOUCHED = "$not touched"


@dataclass(frozen=True)
class Pin:
    """One pending revision as the upgrade hash covers it."""

    label: str
    digest: str
    #: the tables this revision is the first pending one to touch
    tables: tuple[str, ...]


def _touched(plan: Plan) -> set[str]:
    return set(plan.premise or {}) | set(plan.promise or {})


def digest(plan: Plan, tables: Sequence[str], fingerprints: Mapping[str, Any]) -> str:
    """A revision's digest: its executed steps, and ``tables`` as ``fingerprints`` has them."""
    steps = tuple(
        replace(s, details={k: v for k, v in s.details.items() if k not in RUN_SPECIFIC})
        for s in plan.steps if not s.details.get(VERSION_STEP))
    premise = {t: fingerprints.get(t, NOT_TOUCHED) for t in tables}
    return replace(plan, steps=steps, premise=premise, promise=None).hash


def pins(revisions: Sequence[tuple[str, Plan]], live: Snapshot) -> list[Pin]:
    """The pins of ``(label, plan)`` of each pending revision in the order they run, compiled
    by a dry run that started from ``live``."""
    seen: set[str] = set()
    out: list[Pin] = []
    for label, plan in revisions:
        first = tuple(sorted(set(plan.premise or {}) - seen))
        seen |= _touched(plan)
        before = {t: _fingerprint(live, t) for t in first}
        out.append(Pin(label, digest(plan, first, before), first))
    return out


def _fingerprint(live: Snapshot, key: str) -> Any:
    table = live.tables.get(key)
    return None if table is None else table_fingerprint(table)


def run_digest(pin: Pin, plan: Plan) -> str:
    """The digest of ``plan``, compiled at run time against the live schema, for ``pin``."""
    return digest(plan, pin.tables, dict(plan.premise or {}))


def upgrade_hash(pinned: Sequence[Pin]) -> str:
    """One hash over the pins of the pending revisions, in order."""
    payload = canonical_json([[p.label, p.digest] for p in pinned])
    return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()


def completed_hashes(done: Sequence[tuple[str, Plan]]) -> dict[str, int]:
    """The upgrade hashes that pinned the upgrades ending with the newest of ``done``.

    ``done``: the revision plans of the latest upgrades, oldest first, as the runner stored
    them when they ran (compiled at run time, each with its premise). A pinned upgrade checked
    every revision's run-time plan against its pin (:func:`run_digest`), so the same pins come
    out of the stored plans again; which revisions the pinned upgrade ran is not stored, so
    every tail of ``done`` is a candidate. Maps each hash to how many revisions it covers.
    A stored plan that does not reproduce its pin exactly gives a hash nobody pinned: the
    deploy is then refused, never taken for done."""
    out: dict[str, int] = {}
    for start in range(len(done)):
        seen: set[str] = set()
        pinned: list[Pin] = []
        for label, plan in done[start:]:
            first = tuple(sorted(set(plan.premise or {}) - seen))
            seen |= _touched(plan)
            pinned.append(Pin(label, digest(plan, first, dict(plan.premise or {})), first))
        out.setdefault(upgrade_hash(pinned), len(pinned))
    return out


__all__ = ["Pin", "completed_hashes", "digest", "pins", "run_digest", "upgrade_hash"]
