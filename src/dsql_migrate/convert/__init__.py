"""``dsql-migrate convert``: bring a pg_dump / psql or a mysqldump / MySQL DDL script to DSQL.

Shape: the MySQL front end (:mod:`.mysql`) translates MySQL into PostgreSQL statements plus report
entries for what MySQL-only behaviour changed or was removed; the PostgreSQL converter
(:mod:`.postgresql`) then applies DSQL's rules for a profile. DSQL's rules therefore live in one
place whatever the source dialect. :mod:`.report` holds the report types both share.

- :func:`convert_postgresql` ``(text, source, profile)``: a whole pg_dump / psql script.
- :func:`convert_statements` ``(statements, source, profile, changes)``: PostgreSQL statements
  another front end produced, each as ``(source line, sql)``, with its report entries.
"""

from __future__ import annotations

from .items import SourceError
from .postgresql import convert_postgresql, convert_statements
from .report import Action, Change, Conversion

__all__ = ["Action", "Change", "Conversion", "SourceError", "convert_postgresql",
           "convert_statements"]
