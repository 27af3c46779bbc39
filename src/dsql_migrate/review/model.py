"""What a review found: per revision, its plan (or why there is none) and its findings.

Everything here is plain data; :mod:`.render` writes it as markdown, JSON or SARIF, and
:func:`Review.exit_code` applies the project's exit codes (DESIGN.md §3.4): 1 when something
was refused or failed, else 5 when a destructive step is not approved, else 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ..errors import ExitCode
from ..plan import Plan, Step, StepKind

FORMAT = "dsql-migrate.review/1"
#: the comment in a revision file that approves its destructive steps
APPROVE_ANNOTATION = "# dsql-migrate: approve-destructive"
#: the first line of the markdown review: the GitHub Action finds its comment by it
MARKER = "<!-- dsql-migrate-review -->"
#: the rule of a finding where the revision's own Python code raised (not a DSQL refusal)
CODE_ERROR = "revision-code-error"
#: the time a batch takes, assumed for estimates unless --seconds-per-batch says otherwise
DEFAULT_SECONDS_PER_BATCH = 0.25


class Level(str, Enum):
    """How a finding weighs: SARIF's levels."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True)
class Finding:
    """One thing a reviewer must see, located in a revision file where that is known."""

    rule: str  # a lint rule id, or review's own: refused, destructive, edited-applied, ...
    level: Level
    message: str
    path: str | None = None  # relative to the repository root
    line: int | None = None
    fix: str | None = None  # what to do (a lint suggestion, how to approve, ...)

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "level": self.level.value, "message": self.message,
                "path": self.path, "line": self.line, "fix": self.fix}


@dataclass
class Compilation:
    """A revision compiled against one schema: the base on the local emulator, or the target."""

    target: str  # "local emulator at base" or the target's redacted URL
    plan: Plan | None = None
    refused: str | None = None  # why there is no (complete) plan: the DSQL rule, the line
    not_compiled: str | None = None  # an earlier revision stopped the compilation

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "refused": self.refused,
                "not_compiled": self.not_compiled,
                "plan": None if self.plan is None else self.plan.as_dict()}


@dataclass
class RevisionReview:
    revision: str
    doc: str
    path: str  # relative to the repository root
    status: str  # "new" or "edited" (edited: it exists at the base ref and its file changed)
    approved_in_file: int | None = None  # line of the approval annotation
    upgrade_line: int | None = None
    compilations: list[Compilation] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def plan(self) -> Plan | None:
        """The plan the review shows: the target's when there is one, else the local one."""
        plans = [c.plan for c in self.compilations if c.plan is not None]
        return plans[-1] if plans else None

    @property
    def refused(self) -> bool:
        return any(c.refused for c in self.compilations)

    def destructive_steps(self) -> list[Step]:
        plan = self.plan
        return [s for s in plan.steps if s.destructive] if plan is not None else []

    def approved(self, flag: bool) -> bool:
        return flag or self.approved_in_file is not None

    def as_dict(self, approve_flag: bool) -> dict[str, Any]:
        return {"revision": self.revision, "doc": self.doc, "path": self.path,
                "status": self.status,
                "approved": self.approved(approve_flag) if self.destructive_steps() else None,
                "approved_by": ("--approve-destructive" if approve_flag else
                                f"{self.path}:{self.approved_in_file}"
                                if self.approved_in_file else None),
                "compilations": [c.as_dict() for c in self.compilations],
                "findings": [f.as_dict() for f in self.findings]}


@dataclass(frozen=True)
class Copy:
    """A table recreation's copy (or a backfill): rows, batches, and a time if rows are known."""

    table: str
    kind: StepKind
    rows: int | None
    batches: int
    batch_size: int

    def seconds(self, per_batch: float) -> float | None:
        if self.rows is None:
            return None
        return max(1, math.ceil(self.rows / max(1, self.batch_size))) * per_batch


def copies(plan: Plan) -> list[Copy]:
    return [Copy(table=s.batch.table if s.batch else (s.table or "?"), kind=s.kind,
                 rows=s.estimate.rows, batches=s.estimate.batches,
                 batch_size=s.batch.size if s.batch else 0)
            for s in plan.steps if s.kind.is_batched]


def recreated_tables(plan: Plan) -> list[str]:
    """Tables a plan rebuilds (its swap steps: a copy, then the new table takes the name)."""
    return [s.table for s in plan.steps if s.kind is StepKind.SWAP and s.table]


@dataclass
class Review:
    base: str  # how the base was chosen
    base_commit: str
    base_heads: tuple[str, ...]
    profile: str
    revisions: list[RevisionReview] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # not tied to one revision
    approve_flag: bool = False
    seconds_per_batch: float = DEFAULT_SECONDS_PER_BATCH
    targets: list[str] = field(default_factory=list)
    #: the project's alembic.ini, relative to the repository root (SARIF's location for
    #: findings about the whole change)
    ini_path: str = "alembic.ini"
    #: the upgrade hash of the pending revisions (``upgrade --expect-hash``), the target it
    #: was computed against, and why there is none
    upgrade_hash: str | None = None
    hash_target: str = ""
    hash_missing: str = "no new revisions"

    def all_findings(self) -> Iterator[Finding]:
        yield from self.findings
        for r in self.revisions:
            yield from r.findings

    def unapproved(self) -> list[RevisionReview]:
        return [r for r in self.revisions
                if r.destructive_steps() and not r.approved(self.approve_flag)]

    def failed(self) -> bool:
        return any(r.refused for r in self.revisions) or any(
            f.level is Level.ERROR and f.rule != "destructive" for f in self.all_findings())

    def exit_code(self) -> ExitCode:
        if self.failed():
            return ExitCode.FAILED
        if self.unapproved():
            return ExitCode.REFUSED
        return ExitCode.OK

    def verdict(self) -> str:
        code = self.exit_code()
        if code is ExitCode.FAILED:
            errors = {f.rule for f in self.all_findings()
                      if f.level is Level.ERROR and f.rule != "destructive"}
            if errors == {CODE_ERROR}:  # Python raised, not a DSQL rule
                return "failed: a revision's code raised an error"
            return "refused: DSQL cannot run part of this change as written"
        if code is ExitCode.REFUSED:
            names = ", ".join(r.revision for r in self.unapproved())
            return f"destructive steps need approval ({names})"
        if not self.revisions:
            return "no new or edited revisions"
        return "ready: every step is DSQL-safe"


__all__ = ["APPROVE_ANNOTATION", "CODE_ERROR", "DEFAULT_SECONDS_PER_BATCH", "FORMAT", "MARKER",
           "Compilation",
           "Copy", "Finding", "Level", "Review", "RevisionReview", "copies",
           "recreated_tables"]
