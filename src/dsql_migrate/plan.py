"""Plans and steps: what the planner produces, what the runner executes, what a reviewer reads.

A :class:`Plan` is an ordered tuple of :class:`Step` objects plus a content hash (DESIGN.md §3.2).
Every step has one *kind*, and each kind has one transaction shape:

``ddl``
    one DDL statement in its own transaction.
``async_index`` / ``async_validate``
    one statement that starts an asynchronous job (``CREATE INDEX ASYNC``,
    ``ALTER TABLE ASYNC ... VALIDATE CONSTRAINT``); the step is done when the job has completed
    *and* the object is usable (``details["check"]`` is the query that says so).
``backfill`` / ``copy``
    a batched DML loop over a keyset cursor (:class:`Batch`): each batch is one transaction that
    touches at most ``batch.size`` rows, bounded by the key range ``(after, upto]``.
``verify``
    read-only checks (data pre-checks, or row counts and checksums per key range); the step fails
    when a check finds a problem, and nothing is changed.
``swap``
    the rename that puts a recreated table in place; it runs only after its verify step passed
    (``details["verified_by"]``), and re-runs that verification first.
``dml``
    one bounded DML statement.

``details`` (hashed, executed) carries what a runner needs beyond the statements:

- ``check``: a query returning one boolean, true when an async step's object is usable
  (``indisvalid`` of the index, ``convalidated`` of the constraint);
- ``expect: "no rows"``: a pre-check passes when its statements return no row; the rows it
  returns are the offending ones, to report;
- ``totals``: two ``count(*)`` queries (old and new table) that must agree after a copy;
- ``writes``: ``"pause"`` (a difference fails the step) or ``"resync"``; with resync, ``repair``
  holds the statements that re-copy one key range (one transaction, same parameters as the
  batch) and ``tail`` deletes target rows past the last source key (``after_<n>`` = last key);
- ``verified_by``: the id of the verify step a swap re-runs before renaming.

Batched statements use the psycopg parameters ``%(after_1)s, %(after_2)s, ...`` (the cursor,
``NULL`` before the first page) and ``%(upto_1)s, ...`` (the last key of the page), one per
key column in ``batch.key`` order. The page-bound query also takes ``%(end_1)s, ...``: the last
key of the lane being walked (``NULL``: to the end of the table); the runner splits a large
step into lanes, disjoint key ranges walked at once, when the query has them.

``premise`` and ``promise`` (DESIGN.md §3.2a) map every table the plan touches (``schema.table``)
to its fingerprint (:mod:`dsql_migrate.fingerprint`; ``null``: the table does not exist) before
and after the plan; the runner checks them (:mod:`dsql_migrate.runner.guard`).

The hash covers only what is executed (kinds, SQL, batch shapes, details, whether the
destructive steps were approved when the plan was made, the premise and the promise), never
estimates, summaries, warnings or the JSON layout, so a plan reviewed in a pull request can be
pinned.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .errors import DsqlMigrateError, ExitCode

FORMAT = "dsql-migrate.plan/1"


class PlanError(DsqlMigrateError):
    """A plan file that cannot be loaded, or whose hash does not match its content."""

    exit_code = ExitCode.USAGE


class PlanHashMismatch(PlanError):
    exit_code = ExitCode.REFUSED


class StepKind(str, Enum):
    DDL = "ddl"
    ASYNC_INDEX = "async_index"
    ASYNC_VALIDATE = "async_validate"
    BACKFILL = "backfill"
    COPY = "copy"
    VERIFY = "verify"
    SWAP = "swap"
    DML = "dml"

    @property
    def is_batched(self) -> bool:
        return self in (StepKind.BACKFILL, StepKind.COPY)

    @property
    def is_async(self) -> bool:
        return self in (StepKind.ASYNC_INDEX, StepKind.ASYNC_VALIDATE)


#: kinds whose statements are DDL (one per step); the others hold DML or queries only
DDL_KINDS = frozenset({StepKind.DDL, StepKind.ASYNC_INDEX, StepKind.ASYNC_VALIDATE,
                       StepKind.SWAP})


@dataclass(frozen=True)
class Batch:
    """The keyset cursor of a batched step.

    ``bounds`` returns the key of the last row of the next page after the cursor and up to the
    lane's end (no row: the loop is done). Every statement of the step is then run once per
    page, in one transaction, with the parameters ``after_<i>`` (``NULL`` on the first page)
    and ``upto_<i>``, ``i`` counting the key columns from 1.
    """

    table: str
    key: tuple[str, ...]
    key_types: tuple[str, ...]
    size: int
    bounds: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "key": list(self.key),
            "key_types": list(self.key_types),
            "size": self.size,
            "bounds": self.bounds,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Batch:
        return cls(
            table=str(data["table"]),
            key=tuple(str(k) for k in data["key"]),
            key_types=tuple(str(k) for k in data["key_types"]),
            size=int(data["size"]),
            bounds=str(data["bounds"]),
        )


@dataclass(frozen=True)
class Estimate:
    """What a step is expected to cost; informational, not hashed."""

    rows: int | None = None
    batches: int = 0
    transactions: int = 1
    async_jobs: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "batches": self.batches,
            "transactions": self.transactions,
            "async_jobs": self.async_jobs,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Estimate:
        rows = data.get("rows")
        return cls(
            rows=None if rows is None else int(rows),
            batches=int(data.get("batches", 0)),
            transactions=int(data.get("transactions", 1)),
            async_jobs=int(data.get("async_jobs", 0)),
        )


@dataclass(frozen=True)
class Step:
    id: int
    kind: StepKind
    summary: str
    sql: tuple[str, ...]
    table: str | None = None
    destructive: bool = False
    reversible: bool = True
    batch: Batch | None = None
    #: kind-specific, executed data (hashed): check queries, verified_by, write handling, ...
    details: Mapping[str, Any] = field(default_factory=dict)
    estimate: Estimate = field(default_factory=Estimate)
    #: explanations for reviewers (not hashed)
    notes: tuple[str, ...] = ()

    def executed(self) -> dict[str, Any]:
        """The part of the step that the hash covers."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "sql": list(self.sql),
            "table": self.table,
            "destructive": self.destructive,
            "batch": None if self.batch is None else self.batch.as_dict(),
            "details": _plain(self.details),
        }

    def as_dict(self) -> dict[str, Any]:
        data = self.executed()
        data.update(
            summary=self.summary,
            reversible=self.reversible,
            estimate=self.estimate.as_dict(),
            notes=list(self.notes),
        )
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Step:
        batch = data.get("batch")
        return cls(
            id=int(data["id"]),
            kind=StepKind(data["kind"]),
            summary=str(data.get("summary", "")),
            sql=tuple(str(s) for s in data["sql"]),
            table=data.get("table"),
            destructive=bool(data.get("destructive", False)),
            reversible=bool(data.get("reversible", True)),
            batch=None if batch is None else Batch.from_dict(batch),
            details=dict(data.get("details") or {}),
            estimate=Estimate.from_dict(data.get("estimate") or {}),
            notes=tuple(str(n) for n in data.get("notes") or ()),
        )


@dataclass(frozen=True)
class Plan:
    profile: str
    steps: tuple[Step, ...]
    source: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    #: the destructive steps were approved when the plan was made (``plan --allow-destructive``):
    #: part of the hash, so the approval is reviewed and pinned with the steps
    approved_destructive: bool = False
    #: table -> fingerprint (None: absent) of every table the plan touches, as the planner saw
    #: it; checked before the first and before every destructive step (DESIGN.md §3.2a)
    premise: Mapping[str, Any] | None = None
    #: table -> fingerprint the same tables have when the plan has run; checked at the end
    promise: Mapping[str, Any] | None = None

    @property
    def hash(self) -> str:
        steps = [step.executed() for step in self.steps]
        hashed: Any = steps
        if self.approved_destructive or self.premise is not None or self.promise is not None:
            hashed = {"steps": steps}
            if self.approved_destructive:
                hashed["approved_destructive"] = True
            if self.premise is not None:  # what the plan assumes and promises is reviewed too
                hashed["premise"] = self.premise
            if self.promise is not None:
                hashed["promise"] = self.promise
        payload = canonical_json(hashed)
        return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()

    def approved(self) -> Plan:
        """The same plan with its destructive steps approved (a different hash)."""
        return dataclasses.replace(self, approved_destructive=True)

    @property
    def is_empty(self) -> bool:
        return not self.steps

    def summary(self) -> dict[str, Any]:
        kinds: dict[str, int] = {}
        for step in self.steps:
            kinds[step.kind.value] = kinds.get(step.kind.value, 0) + 1
        return {
            "steps": len(self.steps),
            "destructive": sum(1 for s in self.steps if s.destructive),
            "transactions": sum(s.estimate.transactions for s in self.steps),
            "batches": sum(s.estimate.batches for s in self.steps),
            "async_jobs": sum(s.estimate.async_jobs for s in self.steps),
            "kinds": dict(sorted(kinds.items())),
            "tables": sorted({s.table for s in self.steps if s.table}),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "profile": self.profile,
            "hash": self.hash,
            "source": _plain(self.source),
            "steps": [step.as_dict() for step in self.steps],
            "warnings": list(self.warnings),
            "summary": self.summary(),
            "approved_destructive": self.approved_destructive,
            "premise": None if self.premise is None else _plain(self.premise),
            "promise": None if self.promise is None else _plain(self.promise),
        }

    def to_json(self) -> str:
        """The canonical file form: sorted keys, two-space indent, trailing newline."""
        return json.dumps(self.as_dict(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, verify: bool = True,
                  where: str = "plan") -> Plan:
        if data.get("format") != FORMAT:
            raise PlanError(
                f"{where}: not a dsql-migrate plan (format {data.get('format')!r})",
                hint=f"expected format {FORMAT!r}; create one with 'dsql-migrate plan -o FILE'",
            )
        try:
            plan = cls(
                profile=str(data["profile"]),
                steps=tuple(Step.from_dict(s) for s in data["steps"]),
                source=dict(data.get("source") or {}),
                warnings=tuple(str(w) for w in data.get("warnings") or ()),
                approved_destructive=data.get("approved_destructive", False) is True,
                premise=_tables(data.get("premise"), "premise"),
                promise=_tables(data.get("promise"), "promise"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PlanError(f"{where}: malformed plan: {exc!r}") from None
        if verify and data.get("hash") != plan.hash:
            raise PlanHashMismatch(
                f"{where}: the hash {data.get('hash')!r} does not match the plan's steps "
                f"({plan.hash})",
                hint="the plan was edited after it was made; make it again with "
                "'dsql-migrate plan'",
            )
        return plan

    @classmethod
    def from_json(cls, text: str, *, verify: bool = True, where: str = "plan") -> Plan:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PlanError(
                f"{where}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"
            ) from None
        if not isinstance(data, dict):
            raise PlanError(f"{where}: a plan is a JSON object")
        return cls.from_dict(data, verify=verify, where=where)


def _tables(value: Any, what: str) -> dict[str, Any] | None:
    """A plan's premise or promise as read from its file: table -> fingerprint or None."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(
            v is None or isinstance(v, Mapping) for v in value.values()):
        raise TypeError(f"{what} must map each table to its fingerprint or null")
    return {str(k): _plain(v) for k, v in value.items()}


def canonical_json(value: Any) -> str:
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _plain(value: Any) -> Any:
    """``value`` with mappings and sequences turned into dicts and lists (for JSON)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# -- renderers -----------------------------------------------------------------------------------

FORMATS = ("text", "markdown", "json")


def render(plan: Plan, fmt: str, *, width: int = 100, color: bool = False) -> str:
    if fmt == "json":
        return plan.to_json()
    if fmt == "markdown":
        return render_markdown(plan)
    if fmt == "text":
        return render_text(plan, width=width, color=color)
    raise PlanError(f"unknown plan format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")


def summary_line(plan: Plan) -> str:
    if plan.is_empty:
        return "No changes: the live schema matches the target."
    s = plan.summary()
    tables = len(s["tables"])
    parts = [
        f"{s['steps']} step{'s' if s['steps'] != 1 else ''} on {tables} "
        f"table{'s' if tables != 1 else ''}",
        f"{s['destructive']} destructive"
        + (" (approved)" if plan.approved_destructive and s["destructive"] else ""),
        f"~{s['transactions']} transactions",
        f"{s['batches']} batches",
        f"{s['async_jobs']} async jobs",
    ]
    return f"{', '.join(parts)} (profile {plan.profile})."


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(plan: Plan) -> str:
    """A pull-request comment: summary, steps table, SQL in collapsible blocks, warnings."""
    out = io.StringIO()
    out.write("### dsql-migrate plan\n\n")
    out.write(f"**{summary_line(plan)}**\n\n")
    out.write(f"Plan hash: `{plan.hash}`\n\n")
    if plan.is_empty:
        return out.getvalue()
    out.write("| # | kind | table | summary | batches | destructive |\n")
    out.write("|---:|---|---|---|---:|:---:|\n")
    for step in plan.steps:
        mark = "⚠️ **yes**" if step.destructive else ""
        out.write(
            f"| {step.id} | `{step.kind.value}` | {_md_cell(step.table or '')} | "
            f"{_md_cell(step.summary)} | {step.estimate.batches or ''} | {mark} |\n"
        )
    out.write("\n")
    if plan.warnings:
        out.write("#### Warnings\n\n")
        for warning in plan.warnings:
            out.write(f"- ⚠️ {warning}\n")
        out.write("\n")
    out.write("#### SQL\n\n")
    for step in plan.steps:
        flag = " (destructive)" if step.destructive else ""
        out.write(f"<details><summary>Step {step.id}: {html.escape(step.summary)}{flag}"
                  "</summary>\n\n")
        for note in step.notes:
            out.write(f"> {note}\n\n")
        out.write("```sql\n")
        out.write(_step_sql_text(step))
        out.write("```\n\n</details>\n\n")
    return out.getvalue()


def _step_sql_text(step: Step) -> str:
    lines: list[str] = []
    if step.batch is not None:
        lines.append(f"-- keyset batches of <= {step.batch.size} rows on "
                     f"{step.batch.table} ({', '.join(step.batch.key)})")
        lines.append("-- next page bound:")
        lines.append(step.batch.bounds + ";")
        lines.append("-- per batch, one transaction:")
    lines.extend(summarised_rows(statement.rstrip(";")) + ";" for statement in step.sql)
    for key, value in sorted(step.details.items()):
        if isinstance(value, str) and value.lstrip().upper().startswith(("SELECT", "WITH")):
            lines.append(f"-- {key}:")
            lines.append(value + ";")
        elif isinstance(value, (list, tuple)) and value and all(
                isinstance(v, str) for v in value):
            lines.append(f"-- {key}:")
            lines.extend(v + ";" for v in value)
    return "\n".join(lines) + "\n"


#: rows of a multi-row VALUES list a rendering shows (the plan file keeps them all)
SHOWN_VALUES_ROWS = 3
_VALUES = re.compile(r"\bVALUES\s*\(", re.IGNORECASE)


def summarised_rows(statement: str, shown: int = SHOWN_VALUES_ROWS) -> str:
    """``INSERT ... VALUES (..), (..), ...`` with only its first ``shown`` rows and a comment
    saying how many more there are: a reviewer reads a bulk insert's shape, not its data. Any
    other statement is returned as it is."""
    found = _VALUES.search(statement)
    if found is None:
        return statement
    rows: list[tuple[int, int]] = []  # (start, end) of each top-level parenthesised row
    depth, quote, start = 0, "", found.end() - 1
    i = start
    while i < len(statement):
        char = statement[i]
        if quote:
            if char == quote:
                if statement.startswith(quote * 2, i):
                    i += 1  # an escaped quote
                else:
                    quote = ""
        elif char in "'\"":
            quote = char
        elif char == "(":
            if depth == 0:
                start = i
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                rows.append((start, i + 1))
        elif depth == 0 and char not in ", \t\r\n":
            break  # past the VALUES list (ON CONFLICT, RETURNING, ...)
        i += 1
    if len(rows) <= shown + 1:
        return statement
    hidden = len(rows) - shown
    return (statement[:rows[shown - 1][1]]
            + f"\n  -- ... and {hidden} more rows (all of them are in the plan's JSON)\n"
            + statement[rows[-1][1]:]).rstrip()


def render_text(plan: Plan, *, width: int = 100, color: bool = False) -> str:
    """A terminal rendering with rich."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=color, color_system=None
                      if not color else "auto", highlight=False, soft_wrap=True)
    console.print(f"[bold]{escape(summary_line(plan))}[/bold]")
    console.print(f"hash {plan.hash}")
    for warning in plan.warnings:  # in the header: a reviewer reads them before the steps
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    if not plan.is_empty:
        table = Table(show_lines=False, header_style="bold")
        for column in ("#", "kind", "table", "summary", "batches", "!"):
            table.add_column(column, overflow="fold")
        for step in plan.steps:
            table.add_row(str(step.id), step.kind.value, escape(step.table or ""),
                          escape(step.summary),
                          str(step.estimate.batches or ""),
                          "[red]destructive[/red]" if step.destructive else "")
        console.print(table)
        for step in plan.steps:
            console.print(f"[bold]-- step {step.id} ({step.kind.value})[/bold]: "
                          f"{escape(step.summary)}", markup=True)
            for note in step.notes:
                console.print(f"   note: {note}", markup=False)
            console.print(_step_sql_text(step), markup=False, end="")
    return buffer.getvalue()


_PARAM = re.compile(r"%\((after|upto|end)_\d+\)s")


def executable_sql(step: Step) -> list[str]:
    """Every statement ``step`` may run (its SQL, batch bound, checks, repairs), with the
    cursor parameters replaced by ``NULL`` and ``%%`` unescaped: plain SQL for a linter."""
    statements = list(step.sql)
    if step.batch is not None:
        statements.append(step.batch.bounds)
    for key in ("check", "tail"):
        value = step.details.get(key)
        if isinstance(value, str):
            statements.append(value)
    for key in ("totals", "repair"):
        value = step.details.get(key)
        if isinstance(value, (list, tuple)):
            statements.extend(str(v) for v in value)
    if step.batch is None:
        return statements
    return [_PARAM.sub("NULL", s).replace("%%", "%") for s in statements]


def steps_sql(steps: Sequence[Step]) -> list[str]:
    """Every statement of ``steps``, in order (batch bounds and checks not included)."""
    return [statement for step in steps for statement in step.sql]
