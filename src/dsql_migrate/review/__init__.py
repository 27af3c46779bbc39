"""``dsql-migrate review``: a pull request's new Alembic revisions, compiled and explained.

See ``docs/review.md``. :func:`run_review` builds a :class:`Review`; :func:`render` writes it as
markdown (a PR comment, starting with :data:`MARKER`), JSON or SARIF 2.1.0.
"""

from __future__ import annotations

from .core import Request, run_review
from .model import APPROVE_ANNOTATION, MARKER, Finding, Level, Review, RevisionReview
from .render import FORMATS, render

__all__ = ["APPROVE_ANNOTATION", "FORMATS", "MARKER", "Finding", "Level", "Request", "Review",
           "RevisionReview", "render", "run_review"]
