"""Fixtures of the Alembic plugin tests; the project builder lives in alembic_project.py."""

from __future__ import annotations

import sys
from pathlib import Path

# test modules import the project builder as 'alembic_project'
sys.path.insert(0, str(Path(__file__).parent))
