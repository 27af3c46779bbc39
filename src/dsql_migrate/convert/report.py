"""What ``dsql-migrate convert`` did to every statement of a source script.

Both front ends (PostgreSQL via pglast, MySQL via sqlglot) report in these terms, so the report
(SQL comments, JSON, markdown) is written in one place whatever the source dialect was.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


class Action(str, enum.Enum):
    """What happened to one source statement (or one part of it)."""

    KEPT = "kept"  #: already DSQL-legal, passed through unchanged
    CONVERTED = "converted"  #: rewritten; behaviour is the same
    CHANGED = "changed"  #: rewritten and behaviour changes: the user must read the note
    REMOVED = "removed"  #: left out; ``reason`` says why and ``follow_up`` what to do instead
    SPLIT = "split"  #: a data statement cut into DSQL-sized transactions
    #: kept as written although DSQL will reject it: no faithful conversion exists, a person
    #: must rewrite it (``convert`` then exits 1)
    FLAGGED = "flagged"


#: actions the user must read before running the output (exit 3 when any, and no FLAGGED)
NEEDS_REVIEW = frozenset({Action.CHANGED, Action.REMOVED})


@dataclass(frozen=True)
class Change:
    """One entry of the conversion report.

    ``line`` is the 1-based line of the source statement in ``source`` (a file name or ``-``).
    ``rule`` names the DSQL rule behind the change (a lint rule id or a DSQL.md section), so a
    reader can look it up. ``follow_up`` is the application-side work a removal leaves (e.g. "set
    updated_at in the application: DSQL has no triggers").
    """

    action: Action
    source: str
    line: int
    statement: str  #: the source statement's first line, shortened, for the report
    message: str
    rule: str | None = None
    follow_up: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "source": self.source,
            "line": self.line,
            "statement": self.statement,
            "message": self.message,
            "rule": self.rule,
            "follow_up": self.follow_up,
        }


@dataclass
class Conversion:
    """The converted script (statements in order, no trailing ``;``) and the report.

    ``data`` maps the index of a ``COPY ... FROM STDIN`` statement to its data block (the rows
    and the closing ``\\.`` line, each ending in a newline). ``notes`` maps a statement index
    to comment lines written above it (what changed there); ``trailer`` holds comment lines for
    statements removed at the end. ``kept`` counts source statements passed through unchanged
    (they have no entry in ``changes``).
    """

    statements: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    data: dict[int, str] = field(default_factory=dict)
    notes: dict[int, list[str]] = field(default_factory=dict)
    trailer: list[str] = field(default_factory=list)
    kept: int = 0
    lines: list[int] = field(default_factory=list)  #: source line of each statement

    def summary(self) -> dict[str, int]:
        """How many report entries of each action, plus the statements kept unchanged."""
        counts = Counter(c.action.value for c in self.changes)
        counts[Action.KEPT.value] += self.kept
        return {a.value: counts.get(a.value, 0) for a in Action}

    @property
    def flagged(self) -> list[Change]:
        return [c for c in self.changes if c.action is Action.FLAGGED]

    @property
    def needs_review(self) -> bool:
        return any(c.action in NEEDS_REVIEW for c in self.changes)
