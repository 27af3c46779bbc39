"""Bulk loading of CSV and TSV files into a table in DSQL-legal, resumable batches
(``dsql-migrate load``): :mod:`.source` cuts records, :mod:`.state` records batches,
:mod:`.loader` runs the workers."""

from __future__ import annotations

from .loader import LoadFailed, LoadProgress, LoadRefused, LoadRequest, LoadResult, run_load
from .source import FORMATS, SourceError, format_for

__all__ = ["FORMATS", "LoadFailed", "LoadProgress", "LoadRefused", "LoadRequest", "LoadResult",
           "SourceError", "format_for", "run_load"]
