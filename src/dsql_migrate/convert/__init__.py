"""``dsql-migrate convert``: bring a pg_dump / psql or a mysqldump / MySQL DDL script to DSQL.

Shape: the MySQL front end (:mod:`.mysql`) translates MySQL into PostgreSQL statements plus report
entries for what MySQL-only behaviour changed or was removed; the PostgreSQL converter
(:mod:`.postgresql`) then applies DSQL's rules for a profile. DSQL's rules therefore live in one
place whatever the source dialect. :mod:`.report` holds the report types both share.
"""

from __future__ import annotations

from .report import Action, Change, Conversion

__all__ = ["Action", "Change", "Conversion"]
