"""A SQL script → a Plan, and where a previous run of it stopped (``dsql-migrate sql -f``).

:func:`compile_script` lints the script for the profile (DSQL-illegal statements are refused
before anything runs, with ``file:line:column`` and the rule), then turns every statement into one
step of the existing kinds (DESIGN.md §1), so the runner executes it as it executes any plan:
each step recorded in the state tables (a kill resumes, nothing applied twice), async jobs
waited for, OCC conflicts retried, under the lease lock.

- DDL: one ``ddl`` step per statement (its own transaction); ``CREATE INDEX ASYNC`` is an
  ``async_index`` step and ``ALTER TABLE ASYNC ... VALIDATE CONSTRAINT`` an ``async_validate``
  step, done when the job has completed and the object is usable.
- DML: one ``dml`` step per statement; a multi-row ``INSERT ... VALUES`` over the profile's
  rows or bytes per transaction is cut into several ``dml`` steps (each a DSQL-sized
  transaction that commits with its step mark, so a kill never applies a batch twice).
- A ``COPY ... FROM STDIN`` data block (the text format, as pg_dump writes it) runs as
  ``INSERT ... VALUES`` statements of literals, cut the same way (PostgreSQL coerces each
  literal to its column's type as COPY would); other COPY forms are refused.
- An explicit ``BEGIN ... COMMIT`` block of DML statements stays one transaction (one ``dml``
  step), as its author asked; a block cannot be split, so one over the limits is refused.

Every step's ``details`` holds ``file``, ``line`` and ``statement`` (its 1-based number in the
script; a block's is its ``BEGIN``'s, and ``lines`` has the line of each statement in it), which
the CLI uses for ``file:line`` messages and ``--from-statement``.

:func:`resume_plan` decides what to run given what the state tables say a previous run of the
same script committed: the plan's ``source`` records the script's name, the hash of the
whole script's plan and the offset of its first step, so running the same command again (even
after fixing the failed statement) continues after the last committed statement.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pglast.parser import ParseError, scan
from psycopg import sql as pgsql
from psycopg.rows import dict_row

from .errors import DsqlMigrateError, ExitCode
from .lint import LintSettings, Severity, lint_script
from .plan import Plan, Step, StepKind
from .profiles import STATE_ROWS_PER_BATCH, Profile
from .runner.session import Conn, Session
from .runner.state import ABANDONED, DONE, PlanRow, StateStore
from .sql import (
    ParsedStatement,
    StatementKind,
    parse_script,
    quote_ident,
    quote_literal,
    quote_qualified,
    transaction_kind,
)

SOURCE_KIND = "sql-script"
#: share of the per-transaction byte limit an INSERT batch's text may use (rows are stored with
#: overhead the text does not show: headers, indexes)
BYTE_BUDGET_SHARE = 0.5
#: session settings a dump sets that change nothing a script's statements do on DSQL; each
#: step runs in its own transaction, possibly on a new connection, so they are skipped (noted)
HARMLESS_SETTINGS = frozenset({
    "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout",
    "client_encoding", "standard_conforming_strings", "check_function_bodies", "xmloption",
    "client_min_messages", "row_security", "default_tablespace", "default_table_access_method",
    "default_with_oids", "transaction_timeout",
})


class ScriptRefused(DsqlMigrateError):
    """The script holds statements that cannot run faithfully; nothing was run."""

    exit_code = ExitCode.FAILED


@dataclass(frozen=True)
class Compiled:
    plan: Plan
    notes: tuple[str, ...] = ()


@dataclass
class _Builder:
    name: str
    profile: Profile
    script: str
    steps: list[Step] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    #: lines the linter already reported a parse error on
    unparsed: set[int] = dataclasses.field(default_factory=set)

    def where(self, p: ParsedStatement) -> str:
        return f"{self.name}:{p.line}"

    def add(self, kind: StepKind, p: ParsedStatement, number: int, sql: Sequence[str], *,
            destructive: bool = False, part: tuple[int, int] | None = None,
            rows: int | None = None, what: str | None = None,
            lines: list[int] | None = None) -> None:
        details: dict[str, Any] = {"file": self.name, "line": p.line, "statement": number}
        if lines is not None:  # a BEGIN ... COMMIT block: the line of each of its statements
            details["lines"] = lines
        summary = f"{self.where(p)}: {what or _preview(p.text)}"
        if part is not None:
            details["part"], details["parts"] = part
            summary += f" (rows part {part[0]} of {part[1]}, {rows} rows)"
        self.steps.append(Step(id=len(self.steps) + 1, kind=kind, summary=summary,
                               sql=tuple(sql), destructive=destructive, details=details))


def compile_script(text: str, profile: Profile, *, name: str, lint: bool = True,
                   key: str | None = None) -> Compiled:
    """The plan that runs ``text`` statement by statement; refuses (:class:`ScriptRefused`)
    what cannot run faithfully, before anything runs. ``key`` identifies the script across
    runs (default ``name``; the CLI gives a file's absolute path)."""
    b = _Builder(name, profile, text)
    if lint:
        result = lint_script(text, LintSettings.build(profile), path=name)
        statements = result.statements
        for d in result.diagnostics:
            line = f"{name}:{d.line}:{d.column}: {d.rule}: {d.message}"
            if d.rule == "parse_error":
                b.unparsed.add(d.line)
            if d.severity is Severity.ERROR:
                b.problems.append(line + (f" ({d.suggestion})" if d.suggestion else ""))
            else:
                b.notes.append(line)
    else:
        statements = parse_script(text)
    block: list[tuple[int, ParsedStatement]] | None = None
    begin: ParsedStatement | None = None
    for number, p in enumerate(statements, start=1):
        tx = transaction_kind(p)
        if tx in ("TRANS_STMT_BEGIN", "TRANS_STMT_START") and block is None:
            block, begin = [], p
        elif tx == "TRANS_STMT_COMMIT" and block is not None and begin is not None:
            _block(b, begin, block)
            block = begin = None
        elif tx == "TRANS_STMT_ROLLBACK" and block is not None:
            b.notes.append(f"{b.where(p)}: the transaction block is rolled back: "
                           f"its {len(block)} statement(s) are not run")
            block = begin = None
        elif block is not None:
            block.append((number, p))
        else:
            _statement(b, number, p)
    if block is not None and begin is not None:
        b.problems.append(f"{b.where(begin)}: the transaction block is never committed "
                          "(add COMMIT, or remove BEGIN)")
    if b.problems:
        raise ScriptRefused(
            f"{name}: {len(b.problems)} statement(s) cannot run on DSQL; nothing was run:\n  "
            + "\n  ".join(b.problems),
            hint="fix them (`dsql-migrate lint --fix` shows DSQL-safe forms); --no-lint runs "
            "the script anyway and stops at the first statement the database rejects")
    plan = Plan(profile=profile.name, steps=tuple(b.steps),
                source={"kind": SOURCE_KIND, "file": name, "offset": 0})
    plan = dataclasses.replace(plan, source={**plan.source, "script": plan.hash,
                                             "key": key or name})
    return Compiled(plan, tuple(b.notes))


def _statement(b: _Builder, number: int, p: ParsedStatement) -> None:
    where = b.where(p)
    if p.error is not None or p.kind is StatementKind.UNKNOWN:
        if p.line in b.unparsed:
            return  # the linter said so already
        hint = (" (a psql meta-command: run it in psql, or remove it)"
                if p.text.lstrip().startswith("\\") else "")
        message = p.error.message if p.error is not None else "does not parse"
        b.problems.append(f"{where}: {message}{hint}")
        return
    if p.kind is StatementKind.TRANSACTION:
        b.problems.append(f"{where}: {_preview(p.text)}: only BEGIN ... COMMIT/ROLLBACK blocks "
                          "are supported (savepoints and stray COMMITs are not)")
        return
    if p.kind is StatementKind.OTHER:
        _other(b, p)
        return
    if p.node_type == "CopyStmt":
        _copy(b, number, p)
        return
    if p.kind is StatementKind.DDL:
        _ddl(b, number, p)
        return
    batches = _insert_batches(p, b.profile)
    if batches is not None and len(batches) > 1:
        total = sum(rows for rows, _ in batches)
        b.notes.append(f"{where}: the INSERT's {total} rows are split into {len(batches)} "
                       "transactions (DSQL limits); each commits on its own")
        for index, (rows, sql) in enumerate(batches, start=1):
            b.add(StepKind.DML, p, number, [sql], part=(index, len(batches)), rows=rows)
        return
    b.add(StepKind.DML, p, number, [_sql(p)], destructive=p.node_type in _DESTRUCTIVE_DML)


_DESTRUCTIVE_DML = frozenset({"DeleteStmt", "TruncateStmt"})


def _ddl(b: _Builder, number: int, p: ParsedStatement) -> None:
    if p.is_async and p.node_type == "IndexStmt":
        if not (p.node or {}).get("idxname"):
            b.problems.append(f"{b.where(p)}: CREATE INDEX ASYNC without a name: name the "
                              "index, so the run can wait for it and find it on resume")
            return
        b.add(StepKind.ASYNC_INDEX, p, number, [_sql(p)])
    elif p.is_async:
        b.add(StepKind.ASYNC_VALIDATE, p, number, [_sql(p)])
    else:
        b.add(StepKind.DDL, p, number, [_sql(p)],
              destructive=str(p.node_type).startswith("Drop"))


def _other(b: _Builder, p: ParsedStatement) -> None:
    node = p.node or {}
    if p.node_type == "VariableSetStmt" and str(node.get("name", "")).lower() in \
            HARMLESS_SETTINGS:
        b.notes.append(f"{b.where(p)}: skipped {_preview(p.text)} (a session setting: each "
                       "statement runs in its own transaction, and this one changes nothing "
                       "the script does)")
        return
    b.problems.append(f"{b.where(p)}: {_preview(p.text)}: session statements do not carry "
                      "across the script's transactions (each runs on its own, possibly on a "
                      "new connection); write what it sets into the statements instead")


def _copy(b: _Builder, number: int, p: ParsedStatement) -> None:
    node = p.node or {}
    if not (node.get("is_from") and not node.get("filename") and not node.get("query")):
        b.problems.append(f"{b.where(p)}: {_preview(p.text)}: COPY to or from a server file "
                          "or a program is not available on DSQL")
        return
    if node.get("options") or node.get("whereClause"):
        b.problems.append(f"{b.where(p)}: COPY ... FROM STDIN with options (CSV, DELIMITER, "
                          "NULL, WHERE, ...) is not run by `sql -f`: only the default text "
                          "format (pg_dump's); load such data with `dsql-migrate load` (coming)")
        return
    rows = _copy_rows(b, p)
    if rows is None:
        return
    relation = node.get("relation") or {}
    target = quote_qualified(relation.get("schemaname"), str(relation.get("relname")))
    columns = [str(c["String"]["sval"]) for c in node.get("attlist") or []]
    head = f"INSERT INTO {target}" + (
        f" ({', '.join(quote_ident(c) for c in columns)})" if columns else "") + " VALUES"
    if not rows:
        b.notes.append(f"{b.where(p)}: the COPY block has no rows: nothing to run")
        return
    batches = _batches(head, rows, "", b.profile)
    b.notes.append(f"{b.where(p)}: the COPY block's {len(rows)} rows run as INSERT statements "
                   f"in {len(batches)} transaction(s) (DSQL limits); each commits on its own")
    for index, (count, sql) in enumerate(batches, start=1):
        b.add(StepKind.DML, p, number, [sql], rows=count,
              part=(index, len(batches)) if len(batches) > 1 else None)


def _copy_rows(b: _Builder, p: ParsedStatement) -> list[str] | None:
    """The data rows after ``COPY ... FROM STDIN;`` up to ``\\.``, as ``(literal, ...)``
    VALUES rows (the text format: tab-separated, ``\\N`` for NULL, backslash escapes)."""
    start = b.script.find("\n", p.statement.end)
    end = _COPY_END.search(b.script, start + 1) if start >= 0 else None
    if end is None:
        b.problems.append(f"{b.where(p)}: the COPY data block has no end line (\\.)")
        return None
    first_line = p.line + b.script.count("\n", p.statement.start, start) + 1
    rows: list[str] = []
    width: int | None = None
    data = b.script[start + 1:end.start()]
    lines = data.split("\n")[:-1] if data else []  # the data ends with its newline
    for offset, line in enumerate(lines):
        fields = [_copy_field(f) for f in line.removesuffix("\r").split("\t")]
        if width is not None and len(fields) != width:
            b.problems.append(f"{b.name}:{first_line + offset}: a COPY data row has "
                              f"{len(fields)} fields, the rows before it {width}")
            return None
        width = len(fields)
        rows.append("(" + ", ".join("NULL" if f is None else quote_literal(f)
                                    for f in fields) + ")")
    return rows


_COPY_END = re.compile(r"^\\\.[ \t]*\r?$", re.MULTILINE)
_COPY_ESCAPE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))", re.DOTALL)
_COPY_CHARS = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _copy_field(field: str) -> str | None:
    """One field of COPY's text format as its value (PostgreSQL's ``CopyReadAttributesText``);
    octal and hex escapes give bytes, decoded as UTF-8 with the rest."""
    if field == "\\N":
        return None
    if "\\" not in field:
        return field
    out = bytearray()
    pos = 0
    for m in _COPY_ESCAPE.finditer(field):
        out += field[pos:m.start()].encode()
        octal, hexa, char = m.groups()
        if octal is not None:
            out.append(int(octal, 8) & 0xFF)
        elif hexa is not None:
            out.append(int(hexa, 16))
        else:
            out += _COPY_CHARS.get(char, char).encode()
        pos = m.end()
    out += field[pos:].encode()
    return out.decode("utf-8", errors="strict")


def _block(b: _Builder, begin: ParsedStatement,
           body: list[tuple[int, ParsedStatement]]) -> None:
    if not body:
        return
    parsed = [p for _, p in body]
    kinds = {p.kind for p in parsed}
    if kinds <= {StatementKind.DML}:
        over = [p for p in parsed if (batches := _insert_batches(p, b.profile)) is not None
                and len(batches) > 1]
        if over:
            b.problems.append(f"{b.where(over[0])}: the INSERT is over DSQL's limits "
                              f"({_limits(b.profile)}) inside a BEGIN ... COMMIT block, which "
                              "cannot be split: remove the block to let it be split")
            return
        b.add(StepKind.DML, begin, body[0][0] - 1, [_sql(p) for p in parsed],
              destructive=any(p.node_type in _DESTRUCTIVE_DML for p in parsed),
              what=f"BEGIN ... COMMIT: {len(parsed)} statement(s) in one transaction",
              lines=[p.line for p in parsed])
    elif len(body) == 1:
        _statement(b, *body[0])
    elif not any(p.kind is StatementKind.UNKNOWN for p in parsed):
        b.problems.append(f"{b.where(begin)}: a transaction block with DDL holds "
                          f"{len(body)} statements: DSQL allows one DDL statement per "
                          "transaction and never DDL with DML (remove BEGIN/COMMIT)")
    for _, p in body:
        if p.kind is StatementKind.UNKNOWN:
            _statement(b, 0, p)


def _sql(p: ParsedStatement) -> str:
    return p.text.strip().rstrip(";").rstrip()


def _limits(profile: Profile) -> str:
    limits = profile.limits
    return (f"{limits.rows_per_transaction:,} rows / "
            f"{limits.bytes_per_transaction // (1024 * 1024)} MiB per transaction")


def _preview(sql: str, width: int = 60) -> str:
    one = " ".join(sql.split())
    return one if len(one) <= width else one[:width - 3] + "..."


# -- multi-row INSERT ... VALUES -------------------------------------------------------------


def _insert_batches(p: ParsedStatement, profile: Profile) -> list[tuple[int, str]] | None:
    """``(rows, sql)`` batches of a multi-row ``INSERT ... VALUES`` within the profile's rows
    and bytes per transaction, or None when the statement is not one (or cannot be cut)."""
    if p.node_type != "InsertStmt":
        return None
    select = ((p.node or {}).get("selectStmt") or {}).get("SelectStmt") or {}
    values = select.get("valuesLists")
    if not values or (p.node or {}).get("withClause") or len(values) < 2:
        return None
    cut = _values_rows(_sql(p))
    if cut is None or len(cut[1]) != len(values):
        return None
    head, rows, tail = cut
    return _batches(head, rows, tail, profile)


def _batches(head: str, rows: list[str], tail: str, profile: Profile) -> list[tuple[int, str]]:
    """``head`` + rows + ``tail`` statements, each within the rows and bytes per transaction."""
    # the runner marks the step done in the batch's own transaction: leave room for its rows
    max_rows = profile.limits.rows_per_transaction - STATE_ROWS_PER_BATCH
    max_bytes = int(profile.limits.bytes_per_transaction * BYTE_BUDGET_SHARE)
    batches: list[tuple[int, str]] = []
    current: list[str] = []
    size = 0
    for row in rows:
        if current and (len(current) >= max_rows or size + len(row.encode()) + 1 > max_bytes):
            batches.append((len(current), _join(head, current, tail)))
            current, size = [], 0
        current.append(row)
        size += len(row.encode()) + 1
    batches.append((len(current), _join(head, current, tail)))
    return batches


def _join(head: str, rows: list[str], tail: str) -> str:
    return head + " " + ",\n".join(rows) + (" " + tail if tail else "")


def _values_rows(sql: str) -> tuple[str, list[str], str] | None:
    """The statement cut around its top-level ``VALUES`` rows: (text up to and including
    ``VALUES``, each row's ``(...)``, the rest such as ``ON CONFLICT``)."""
    data = sql
    try:
        tokens = scan(sql)
    except ParseError:  # not cuttable then
        return None
    depth = 0
    head_end: int | None = None
    rows: list[str] = []
    row_start = 0
    tail_start = len(data)
    for token in tokens:
        if head_end is None:
            if token.name == "ASCII_40":
                depth += 1
            elif token.name == "ASCII_41":
                depth -= 1
            elif token.name == "VALUES" and depth == 0:
                head_end = token.end + 1
            continue
        if token.name == "ASCII_40":
            if depth == 0:
                row_start = token.start
            depth += 1
        elif token.name == "ASCII_41":
            depth -= 1
            if depth == 0:
                rows.append(data[row_start:token.end + 1])
        elif depth == 0 and token.name != "ASCII_44":
            tail_start = token.start
            break
    if head_end is None or not rows:
        return None
    return data[:head_end], rows, data[tail_start:].strip()


# -- where a previous run stopped ------------------------------------------------------------


@dataclass(frozen=True)
class Resume:
    """What to run: ``plan`` (None: everything was committed already) and why; ``replaces``:
    the last run of the same script is unfinished, and this run takes its place (the runner
    marks it abandoned; any other unfinished plan still stops the run)."""

    plan: Plan | None
    replaces: bool = False
    message: str | None = None


@dataclass(frozen=True)
class _Previous:
    plan: Plan
    finished: bool
    committed: int  # its leading steps that are done


def from_statement(full: Plan, number: int, factory: Callable[[], Conn], *,
                   schema: str) -> Resume:
    """The steps of statement ``number`` and after (``--from-statement``)."""
    offset = next((i for i, s in enumerate(full.steps)
                   if int(s.details["statement"]) >= number), len(full.steps))
    previous = _previous_run(full, factory, schema=schema)
    return Resume(_tail(full, offset), replaces=previous is not None and not previous.finished)


def _tail(full: Plan, offset: int) -> Plan:
    steps = tuple(dataclasses.replace(s, id=i) for i, s in
                  enumerate(full.steps[offset:], start=1))
    return dataclasses.replace(full, steps=steps, source={
        **full.source, "offset": offset, "before": _digest(full.steps[:offset])})


def _digest(steps: Sequence[Step]) -> str:
    """What the steps run, as one hash: a run that starts at ``offset`` records the digest of
    the steps it takes as done, so a later edit of one of them is noticed."""
    text = json.dumps([[kind, list(sql)] for kind, sql in _shape(steps)])
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _shape(steps: Sequence[Step]) -> list[tuple[str, tuple[str, ...]]]:
    return [(s.kind.value, s.sql) for s in steps]


def label(plan: Plan) -> str:
    """The runner's label of a script's plans: how a later run finds them."""
    return f"sql -f {plan.source.get('key')}"


def _previous_run(full: Plan, factory: Callable[[], Conn], *, schema: str) -> _Previous | None:
    """The last plan recorded in the state tables for the same script (same key)."""
    store = StateStore(schema)
    session = Session(factory)
    try:
        conn = session.conn
        if not {"plans", "steps"} <= store.existing_tables(conn):
            return None
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(pgsql.SQL("SELECT * FROM {} WHERE label = %s ORDER BY updated_at "
                                        "DESC LIMIT 1").format(store.table("plans")),
                              (label(full),)).fetchone()
        if row is None:
            return None
        latest = PlanRow(**row)
        plan = Plan.from_json(latest.plan, where=f"the stored plan {latest.hash}")
        if plan.source.get("kind") != SOURCE_KIND or \
                plan.source.get("key") != full.source.get("key"):
            return None
        done = {r.step for r in store.get_steps(conn, latest.hash) if r.status == DONE}
    finally:
        session.close()
    committed = 0
    while committed + 1 in done:
        committed += 1
    return _Previous(plan, latest.status in (DONE, ABANDONED), committed)


def resume_plan(full: Plan, factory: Callable[[], Conn], *, schema: str) -> Resume:
    """Where to start ``full`` given the last plan recorded for the same script name."""
    previous = _previous_run(full, factory, schema=schema)
    if previous is None:
        return Resume(full)
    old, committed = previous.plan, previous.committed
    offset = int(old.source.get("offset", 0))
    if not previous.finished and _shape(old.steps) == _shape(full.steps[offset:]):
        return Resume(old)  # the same run: the runner resumes it where it stopped
    before = full.steps[:offset]
    if offset and old.source.get("before") != _digest(before):
        raise ScriptRefused(
            f"{full.source.get('file')}: a statement before statement "
            f"{old.steps[0].details.get('statement') if old.steps else '?'} was committed by a "
            "previous run and has changed since (or the script was cut); refusing to guess "
            "where to continue",
            hint="pass --from-statement N to run from statement N (the statements before it "
            "are taken as done)")
    if _shape(old.steps[:committed]) != _shape(full.steps[offset:offset + committed]):
        changed = next(s for s, t in zip(old.steps[:committed],
                                         full.steps[offset:offset + committed], strict=False)
                       if _shape([s]) != _shape([t]))
        raise ScriptRefused(
            f"{full.source.get('file')}: statement {changed.details.get('statement')} (line "
            f"{changed.details.get('line')} then) was committed by a previous run and has "
            "changed since; refusing to guess where to continue",
            hint="pass --from-statement N to run from statement N (the statements before it "
            "are taken as done)")
    start = offset + committed
    replaces = not previous.finished
    if start >= len(full.steps):
        return Resume(None, replaces, "every statement of the script was committed already: "
                      "nothing to do")
    message = None
    if start:
        first = full.steps[start]
        message = (f"resuming at statement {first.details['statement']} (line "
                   f"{first.details['line']}): the statements before it were committed by "
                   "a previous run")
    return Resume(_tail(full, start), replaces, message)


__all__ = ["Compiled", "Resume", "ScriptRefused", "compile_script", "from_statement", "label",
           "resume_plan"]
