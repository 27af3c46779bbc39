"""Which statements DSQL rejects (DSQL.md §1, §3), and what the proxy sends instead.

:func:`rewrite` takes the text of a simple-protocol Query or of a Parse message and returns
``None`` when it can go to PostgreSQL unchanged (the common case, decided by a keyword fast path
without parsing), or the text to send instead: rejected statements become a call of
``sys.dsql_error(sqlstate, message)``, which fails at execution exactly where the statement would
have, so transactions, pipelines and Sync behave as with any server error; ``CREATE INDEX ASYNC``
and ``ALTER TABLE ASYNC ... VALIDATE CONSTRAINT`` become a call that submits a job and returns its
``job_id``.

Statements are parsed with pglast's JSON output (a few microseconds), classified once into the
DSQL forms they use (:func:`dsql_migrate.sql.classify.classify`) and judged by the profile's
column of the shared table (:mod:`dsql_migrate.forms`), the same table the linter reads.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from pglast import parser

from ..forms import rejected_forms
from ..profiles import Profile
from ..sql.aws_iam import MalformedIamStatement, parse_iam
from ..sql.classify import classify
from ..sql.quoting import quote_ident

Node = dict[str, Any]


#: an index a statement names: (schema or None when unqualified, name)
IndexName: TypeAlias = "tuple[str | None, str]"


@dataclass(frozen=True)
class Reject:
    sqlstate: str
    message: str


@dataclass
class Analysis:
    """What one statement does, as far as the proxy cares."""

    reject: Reject | None = None
    replacement: str | None = None
    dropped_indexes: list[IndexName] = field(default_factory=list)


@dataclass(frozen=True)
class Rewrite:
    """The outcome for a whole Query/Parse text."""

    sql: str | None  # None: send the original unchanged
    dropped_indexes: tuple[IndexName, ...] = ()


# -- fast path ------------------------------------------------------------------------------

_FAST_FIRST = {"select", "insert", "update", "delete", "values", "show", "table", "with"}
_TXN_WORDS = {
    "begin", "commit", "end", "rollback", "abort", "start transaction", "begin transaction",
    "begin read write", "begin read only", "commit transaction", "rollback transaction",
    "begin work", "commit work", "rollback work",
}
#: substrings that send even a SELECT/INSERT to the full check
_NEEDLES = ("advisory", "into", "wait_for_job", ";", "--", "/*", "share")
_NEEDLES_NO_INTO = ("advisory", "wait_for_job", ";", "--", "/*")
_FIRST_WORD = re.compile(r"\s*([A-Za-z]+)")


def needs_check(sql: str) -> bool:
    """False when ``sql`` certainly needs no rule (cheap: no parsing)."""
    match = _FIRST_WORD.match(sql)
    if match is None:
        return True
    first = match.group(1).lower()
    if first in _FAST_FIRST:
        lowered = sql.lower()
        body = lowered.rstrip().rstrip(";") if lowered.rstrip().endswith(";") else lowered
        needles = _NEEDLES if first in ("select", "with", "table", "values") else _NEEDLES_NO_INTO
        return any(n in body for n in needles)
    if first in ("begin", "commit", "end", "rollback", "abort", "start"):
        return " ".join(sql.lower().split()).rstrip(";").strip() not in _TXN_WORDS
    return True


def normalized_txn_word(sql: str) -> str:
    return " ".join(sql.lower().split()).rstrip(";").strip()


# -- ASYNC ----------------------------------------------------------------------------------

_ASYNC = re.compile(
    r"\b(CREATE\s+(?:UNIQUE\s+)?INDEX|ALTER\s+TABLE)\s+(ASYNC)\b", re.IGNORECASE
)


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quote_ident(name: str) -> str:
    # keywords too: a table named "order" or "user" (common in MySQL schemas) must stay quoted
    return quote_ident(name)


def _relation_name(rel: Node) -> str:
    parts = [rel.get("schemaname"), rel["relname"]]
    return ".".join(_quote_ident(p) for p in parts if p)


def _error_call(reject: Reject) -> str:
    return f"SELECT sys.dsql_error({_quote_literal(reject.sqlstate)}, " \
           f"{_quote_literal(reject.message)})"


# -- the entry point ------------------------------------------------------------------------


def rewrite(sql: str, profile: Profile) -> Rewrite:
    """What to send to PostgreSQL instead of ``sql`` (see the module docstring)."""
    if not needs_check(sql):
        return Rewrite(None)
    iam = _rewrite_iam(sql)
    if iam is not None:
        return iam
    async_spans: list[tuple[int, int]] = []  # character offsets of ASYNC keywords

    def blank(match: re.Match[str]) -> str:
        async_spans.append((match.start(2), match.end(2)))
        return match.group(0)[: match.start(2) - match.start()] + " " * 5

    stripped = _ASYNC.sub(blank, sql)
    try:
        parsed = json.loads(parser.parse_sql_json(stripped))
    except Exception:  # a syntax error: PostgreSQL reports it as it would
        return Rewrite(None)
    raw = stripped.encode()
    async_bytes = [len(stripped[:start].encode()) for start, _ in async_spans]
    pieces: list[bytes] = []
    cursor = 0
    changed = False
    dropped: list[IndexName] = []
    for entry in parsed.get("stmts", []):
        start = entry.get("stmt_location", 0)
        length = entry.get("stmt_len", 0) or len(raw) - start
        stmt = entry["stmt"]
        asynced = next((b for b in async_bytes if start <= b < start + length), None)
        text = raw[start:start + length].decode()
        result = analyse(stmt, profile, text, None if asynced is None else asynced - start)
        dropped.extend(result.dropped_indexes)
        new_text: str | None = None
        if result.reject is not None:
            new_text = _error_call(result.reject)
        elif result.replacement is not None:
            new_text = result.replacement
        if new_text is not None:
            pieces.append(raw[cursor:start])
            pieces.append(new_text.encode())
            cursor = start + length
            changed = True
    if not changed:
        if async_spans:  # ASYNC where DSQL does not take it: let PostgreSQL say why
            return Rewrite(None, tuple(dropped))
        return Rewrite(None, tuple(dropped))
    pieces.append(raw[cursor:])
    return Rewrite(b"".join(pieces).decode(), tuple(dropped))


def _rewrite_iam(sql: str) -> Rewrite | None:
    """``AWS IAM GRANT role TO 'arn'`` / ``AWS IAM REVOKE role FROM 'arn'`` → a call that
    records the mapping in ``sys.iam_pg_role_mappings`` (admin only, one DDL, as on DSQL);
    None for any other statement."""
    try:
        found = parse_iam(sql)
    except MalformedIamStatement as exc:
        return Rewrite(_error_call(Reject("42601", f"syntax error: {exc}")))
    if found is None:
        return None
    return Rewrite(f"CALL sys._aws_iam({'true' if found.grant else 'false'}, "
                   f"{_quote_literal(found.role)}, {_quote_literal(found.arn)})")


def analyse(stmt: Node, profile: Profile, text: str, async_at: int | None) -> Analysis:
    """Check one parsed statement; ``async_at`` is where ASYNC stood in ``text``, if anywhere.

    The verdict is the shared table's (:mod:`dsql_migrate.forms`): the first form the statement
    uses that the profile rejects answers with DSQL's error, as the linter reports it.
    """
    (kind, node), = stmt.items()
    reject = first_rejection(kind, node, profile, text, async_at is not None)
    if reject is not None:
        return Analysis(reject=reject)
    if async_at is not None:
        return _analyse_async(kind, node, text, async_at)
    analysis = Analysis()
    if kind == "DropStmt" and node.get("removeType") == "OBJECT_INDEX":
        analysis.dropped_indexes = [_index_name(_names(obj)) for obj in node.get("objects", [])]
    return analysis


def first_rejection(kind: str, node: Node, profile: Profile, text: str,
                    is_async: bool) -> Reject | None:
    """DSQL's error for the first form of the statement that ``profile`` rejects, if any."""
    rejected = rejected_forms(profile)
    for found in classify(kind, node, profile.limits, is_async=is_async, text=text):
        form_rule = rejected.get(found.form)
        if form_rule is not None:
            return Reject(form_rule.sqlstate, form_rule.error(found.construct))
    return None


def _index_name(names: list[str]) -> IndexName:
    return (names[-2] if len(names) >= 2 else None), names[-1]


def _names(obj: Node) -> list[str]:
    items = obj.get("List", {}).get("items", [])
    return [item["String"]["sval"] for item in items if "String" in item]


def _analyse_async(kind: str, node: Node, text: str, at: int) -> Analysis:
    """The job a DSQL-legal ASYNC statement submits (the shared table accepted it)."""
    if kind == "IndexStmt":
        name = node.get("idxname")
        keyword = "CONCURRENTLY"
        if name is None:  # DSQL names it as PostgreSQL would: <table>_<columns>_idx
            name = _default_index_name(node)
            keyword += " " + _quote_ident(name)
        statement = text[:at] + keyword + text[at + 5:]
        call = (
            "SELECT job_id FROM sys._submit_job('INDEX_BUILD', "
            f"{_quote_literal(name)}, {_quote_literal(statement)}, "
            f"{_quote_literal(_relation_name(node['relation']))}, 1, "
            f"{'true' if node.get('if_not_exists') else 'false'})"
        )
        return Analysis(replacement=call)
    if kind == "AlterTableStmt":
        name = node["cmds"][0]["AlterTableCmd"]["name"]
        table = _relation_name(node["relation"])
        statement = f"ALTER TABLE {table} VALIDATE CONSTRAINT {_quote_ident(name)}"
        call = (
            "SELECT job_id FROM sys._submit_job('CONSTRAINT_VALIDATION', "
            f"{_existing_constraint(table, node['relation']['relname'], name)}, "
            f"{_quote_literal(statement)}, "
            f"{_quote_literal(table)}, 0)"
        )
        return Analysis(replacement=call)
    return Analysis(reject=Reject("42601", "syntax error at or near \"ASYNC\""))


def _default_index_name(node: Node) -> str:
    """The name DSQL (like PostgreSQL) gives an index created without one, e.g.
    ``table1_col1_col2_idx`` (AWS docs, CREATE INDEX ASYNC); an expression key counts as
    ``expr``. Trimmed to 63 bytes, columns first."""
    table = node["relation"]["relname"]
    columns = "_".join(p["IndexElem"].get("name") or "expr"
                       for p in node.get("indexParams", []) if "IndexElem" in p)
    while len(f"{table}_{columns}_idx".encode()) > 63 and len(columns) > 1:
        columns = columns[:-1]
    while len(f"{table}_{columns}_idx".encode()) > 63:
        table = table[:-1]
    return f"{table}_{columns}_idx"


def _existing_constraint(table: str, relname: str, name: str) -> str:
    """SQL for the constraint's name that fails at submit when the constraint cannot be
    validated, as DSQL does, instead of a job that fails later (PostgreSQL's errors)."""
    missing = f'constraint "{name}" of relation "{relname}" does not exist'
    wrong = f'constraint "{name}" of relation "{relname}" is not a foreign key or check constraint'
    return (
        f"(SELECT CASE WHEN c.contype IN ('c', 'f') THEN c.conname::text "
        f"WHEN c.conname IS NULL THEN sys.dsql_error('42704', {_quote_literal(missing)})::text "
        f"ELSE sys.dsql_error('42809', {_quote_literal(wrong)})::text END "
        f"FROM (SELECT NULL) AS one LEFT JOIN pg_catalog.pg_constraint c "
        f"ON c.conrelid = {_quote_literal(table)}::regclass "
        f"AND c.conname = {_quote_literal(name)})"
    )


