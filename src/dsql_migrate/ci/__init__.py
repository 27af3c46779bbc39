"""CI glue: the sticky pull-request comment (:mod:`.github`) and the offline check of Alembic
revision files for commit hooks (:mod:`.revisions`). See ``docs/ci.md``."""

from __future__ import annotations
