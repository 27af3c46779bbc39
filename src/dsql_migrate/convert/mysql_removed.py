"""MySQL statements with no place in a DSQL script: each is removed with a reason and a follow-up.

Recognised by their first words, before parsing: sqlglot does not parse routine bodies, and a
trigger or a ``LOCK TABLES`` needs no parse to be named. One registry entry per kind.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_DEFINER = r"(?:DEFINER\s*=\s*\S+\s+)?(?:SQL\s+SECURITY\s+\w+\s+)?"

NOTHING_TO_DO = "nothing to do"


@dataclass(frozen=True)
class Removal:
    pattern: re.Pattern[str]
    reason: Callable[[re.Match[str]], str]
    follow_up: Callable[[re.Match[str]], str]
    rule: str | None = None


def _fixed(text: str) -> Callable[[re.Match[str]], str]:
    return lambda match: text


def _ident(text: str) -> str:
    return text.strip("`\"'")


REMOVALS: list[Removal] = [
    Removal(
        re.compile(
            rf"CREATE\s+{_DEFINER}TRIGGER\s+(?:IF\s+NOT\s+EXISTS\s+)?(\S+)\s+(BEFORE|AFTER)\s+"
            r"(INSERT|UPDATE|DELETE)\s+ON\s+(\S+)",
            re.IGNORECASE,
        ),
        lambda m: f"trigger {_ident(m[1])} ({m[2].upper()} {m[3].upper()} ON "
        f"{_ident(m[4])}) removed: DSQL has no triggers",
        lambda m: f"do in the application, on every {m[3].upper()} of {_ident(m[4])}, what the "
        "trigger did (its body is in the source script)",
        "DSQL.md §1 (no CREATE TRIGGER)",
    ),
    Removal(
        re.compile(
            rf"CREATE\s+{_DEFINER}(?:AGGREGATE\s+)?(PROCEDURE|FUNCTION)\s+"
            r"(?:IF\s+NOT\s+EXISTS\s+)?([^\s(]+)",
            re.IGNORECASE,
        ),
        lambda m: f"stored {m[1].lower()} {_ident(m[2])} removed: DSQL runs no stored "
        "procedures and only LANGUAGE sql functions, and MySQL routines are not translated",
        lambda m: f"move {_ident(m[2])}'s logic into the application (or rewrite a pure "
        "function by hand as CREATE FUNCTION ... LANGUAGE sql)",
        "DSQL.md §1 (no CREATE PROCEDURE; functions only in SQL)",
    ),
    Removal(
        re.compile(rf"CREATE\s+{_DEFINER}EVENT\s+(?:IF\s+NOT\s+EXISTS\s+)?(\S+)", re.IGNORECASE),
        lambda m: f"event {_ident(m[1])} removed: DSQL has no event scheduler",
        lambda m: f"run {_ident(m[1])}'s statements on a schedule outside the database "
        "(Amazon EventBridge Scheduler, cron)",
        "DSQL.md §1",
    ),
    Removal(
        re.compile(r"(DROP|ALTER)\s+(TRIGGER|PROCEDURE|FUNCTION|EVENT)\b", re.IGNORECASE),
        lambda m: f"{m[1].upper()} {m[2].upper()} removed: the object does not exist on DSQL "
        "(its CREATE is removed too)",
        _fixed(NOTHING_TO_DO),
    ),
    Removal(
        re.compile(r"(CREATE\s+(FULLTEXT|SPATIAL)\s+INDEX\s+(\S+)\s+ON\s+(\S+))", re.IGNORECASE),
        lambda m: f"{m[2].upper()} index {_ident(m[3])} on {_ident(m[4])} removed: DSQL has "
        f"no {m[2].lower()} indexes",
        lambda m: "search with ILIKE/regular expressions, or keep the text in a search service "
        "fed from the application"
        if m[2].upper() == "FULLTEXT"
        else "store coordinates in numeric columns with a B-tree index",
        "DSQL.md §6",
    ),
    Removal(
        re.compile(r"(LOCK\s+TABLES?|UNLOCK\s+TABLES?)\b", re.IGNORECASE),
        lambda m: f"{m[1].upper()} removed: DSQL has no table locks (optimistic concurrency)",
        _fixed(
            "nothing to do for loading a dump; code that locks tables must instead retry "
            "transactions that fail with SQLSTATE 40001"
        ),
        "DSQL.md §1 (no LOCK TABLE)",
    ),
    Removal(
        re.compile(r"ALTER\s+TABLE\s+\S+\s+(DISABLE|ENABLE)\s+KEYS\b", re.IGNORECASE),
        lambda m: f"{m[1].upper()} KEYS removed: a MyISAM load-speed switch with no "
        "PostgreSQL counterpart",
        _fixed(NOTHING_TO_DO),
    ),
    Removal(
        re.compile(r"(CREATE|DROP)\s+(DATABASE|SCHEMA)\b|USE\s+(\S+)", re.IGNORECASE),
        lambda m: "database statement removed: DSQL has one database (postgres); the tables "
        "are created in the target's current schema",
        _fixed(
            "to keep the tables apart, create a schema and put it first in search_path "
            "before running the converted script"
        ),
        "DSQL.md §1 (no CREATE DATABASE)",
    ),
    Removal(
        re.compile(
            r"(GRANT|REVOKE|(?:CREATE|DROP|ALTER|RENAME)\s+(?:USER|ROLE)|SET\s+PASSWORD|FLUSH)\b",
            re.IGNORECASE,
        ),
        lambda m: f"{m[1].upper()} removed: MySQL accounts do not carry over",
        _fixed("create roles and grants on DSQL for the application's IAM identities"),
    ),
    Removal(
        re.compile(r"(START\s+TRANSACTION|BEGIN|COMMIT|ROLLBACK)\b", re.IGNORECASE),
        lambda m: f"{m[1].upper()} removed: `sql -f` runs each statement in its own "
        "transaction, as DSQL requires for DDL",
        _fixed(NOTHING_TO_DO),
        "DSQL.md §2",
    ),
    Removal(
        re.compile(r"LOAD\s+DATA\b", re.IGNORECASE),
        _fixed("LOAD DATA removed: it reads a file on the MySQL server"),
        _fixed("load the file with `dsql-migrate load TABLE FILE`"),
    ),
    Removal(
        re.compile(r"CALL\s+(\S+)", re.IGNORECASE),
        lambda m: f"CALL {_ident(m[1])} removed: stored procedures are not translated",
        _fixed("run the procedure's statements from the application"),
    ),
    Removal(
        re.compile(r"(ANALYZE|OPTIMIZE|CHECK|REPAIR)\s+(?:NO_WRITE_TO_BINLOG\s+|LOCAL\s+)?TABLE",
                   re.IGNORECASE),
        lambda m: f"{m[1].upper()} TABLE removed: MySQL table maintenance",
        _fixed(NOTHING_TO_DO),
    ),
]


def find_removal(text: str) -> tuple[Removal, re.Match[str]] | None:
    for removal in REMOVALS:
        match = removal.pattern.match(text)
        if match is not None:
            return removal, match
    return None
