"""``AWS IAM GRANT role TO 'arn'`` and ``AWS IAM REVOKE role FROM 'arn'``: DSQL's statements
that map a database role to an IAM identity (DSQL.md §5). Not PostgreSQL syntax (pglast cannot
parse them), so read here by a pattern; used by the planner's role support and by the local
emulator's proxy."""

from __future__ import annotations

import re
from dataclasses import dataclass

IAM_STATEMENT = re.compile(
    r"""^\s*AWS\s+IAM\s+(?P<verb>GRANT|REVOKE)\s+
        (?P<role>"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)\s+
        (?P<prep>TO|FROM)\s+'(?P<arn>(?:[^']|'')*)'\s*;?\s*$""",
    re.IGNORECASE | re.VERBOSE | re.DOTALL)
IAM_PREFIX = re.compile(r"^\s*AWS\s+IAM\b", re.IGNORECASE)


class MalformedIamStatement(ValueError):
    """Starts with ``AWS IAM`` but is not one of the two statements."""


@dataclass(frozen=True)
class IamStatement:
    grant: bool  # False: REVOKE
    role: str  # as PostgreSQL folds it (unquoted: lower case)
    arn: str


def parse_iam(text: str) -> IamStatement | None:
    """The statement ``text`` is, or None when it does not start with ``AWS IAM``; raises
    :class:`MalformedIamStatement` when it does but is not well formed."""
    match = IAM_STATEMENT.match(text)
    if match is None:
        if IAM_PREFIX.match(text):
            raise MalformedIamStatement(
                "malformed statement: write AWS IAM GRANT role TO 'arn' or "
                "AWS IAM REVOKE role FROM 'arn'")
        return None
    grant = match["verb"].upper() == "GRANT"
    if (match["prep"].upper() == "TO") != grant:
        raise MalformedIamStatement(
            f"AWS IAM {match['verb'].upper()} takes {'TO' if grant else 'FROM'}, "
            f"not {match['prep'].upper()}")
    role = match["role"]
    role = role[1:-1].replace('""', '"') if role.startswith('"') else role.lower()
    return IamStatement(grant, role, match["arn"].replace("''", "'"))


__all__ = ["IAM_PREFIX", "IAM_STATEMENT", "IamStatement", "MalformedIamStatement", "parse_iam"]
