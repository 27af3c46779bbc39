"""Running the rules over a script, suppressions, and ``--fix``."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from ..errors import ConfigError
from ..forms import Form, FormRule, rejected_forms, rejected_set
from ..profiles import Limits, Profile
from ..sql import Block, ParsedStatement, StatementKind, parse_script, transaction_blocks
from ..sql._record import Record
from ..sql.classify import Found, classify, may_use_forms, needs_tree
from ..sql.splitter import copy_data_length
from . import rules as _rules  # noqa: F401  (registers every rule)
from .core import (
    REGISTRY,
    Diagnostic,
    Finding,
    FixResult,
    FixStatus,
    LintContext,
    Rule,
    Severity,
    StatementCheck,
)


def _debug(message: str, *args: object) -> None:
    """Log at debug level, with the exception being handled: logging is imported only then
    (a clean lint does not import it: issue 18, start-up)."""
    import logging

    logging.getLogger(__name__).debug(message, *args, exc_info=True)

_SUPPRESS = re.compile(r"--\s*dsql-migrate:\s*ignore\b[ \t]*([^\n]*)", re.IGNORECASE)
_MYSQL_HINTS = re.compile(
    r"`|\bAUTO_INCREMENT\b|\bENGINE\s*=|\bUNSIGNED\b|\bTINYINT\b|\bMEDIUMINT\b|\bDATETIME\b|"
    r"\bLONGTEXT\b|\bMEDIUMTEXT\b|\bDEFAULT\s+CHARSET\b|\bCHARACTER\s+SET\b|\bON\s+UPDATE\s+"
    r"CURRENT_TIMESTAMP\b|\bKEY\s+`",
    re.IGNORECASE,
)
_SPLIT_RULES = ("multi_ddl_transaction", "mixed_ddl_dml_transaction")


# NamedTuples and plain classes, not dataclasses: start-up (see sql/_record.py)
class LintSettings(NamedTuple):
    """What to check: the profile, which rules, and rule options (e.g. ``tenant_column``)."""

    profile: Profile
    enabled: frozenset[str]
    options: Mapping[str, Any] = MappingProxyType({})

    @classmethod
    def build(
        cls,
        profile: Profile,
        section: Mapping[str, Any] | None = None,
        *,
        enable: Iterable[str] = (),
        disable: Iterable[str] = (),
    ) -> LintSettings:
        """Settings from the ``[lint]`` config table plus command-line enable/disable lists.

        ``[lint]`` keys: ``enable`` and ``disable`` (lists of rule ids), ``tenant_column``.
        """
        section = dict(section or {})
        unknown_keys = sorted(set(section) - {"enable", "disable", "tenant_column", "profile"})
        if unknown_keys:
            raise ConfigError(f"unknown key(s) in [lint]: {', '.join(unknown_keys)}",
                              hint="known keys: enable, disable, tenant_column")
        enabled = {r.id for r in REGISTRY if r.default_enabled}
        for source, ids, add in (
            ("[lint] enable", section.get("enable", []), True),
            ("[lint] disable", section.get("disable", []), False),
            ("--enable", list(enable), True),
            ("--disable", list(disable), False),
        ):
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise ConfigError(f"{source} must be a list of rule ids")
            bad = sorted(i for i in ids if i not in REGISTRY)
            if bad:
                raise ConfigError(f"{source}: unknown rule id(s): {', '.join(bad)}",
                                  hint="`dsql-migrate lint --list-rules` shows them all")
            enabled = enabled | set(ids) if add else enabled - set(ids)
        options = {k: v for k, v in section.items() if k == "tenant_column"}
        return cls(profile, frozenset(enabled), options)


class LintResult(Record):
    """Diagnostics for one script and, after :func:`fix_script`, the rewritten SQL."""

    __slots__ = ("diagnostics", "fixed_sql", "path", "statements")
    _fields = ("path", "diagnostics", "statements", "fixed_sql")

    def __init__(self, path: str, diagnostics: list[Diagnostic],
                 statements: list[ParsedStatement], fixed_sql: str | None = None) -> None:
        self.path = path
        self.diagnostics = diagnostics
        self.statements = statements
        self.fixed_sql = fixed_sql

    @property
    def errors(self) -> int:
        return sum(d.severity is Severity.ERROR for d in self.diagnostics)

    @property
    def warnings(self) -> int:
        return sum(d.severity is Severity.WARNING for d in self.diagnostics)


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= 80 else flat[:79] + "…"


def _suppressions(
    p: ParsedStatement, path: str
) -> tuple[set[str], list[Diagnostic]]:
    ignored: set[str] = set()
    problems: list[Diagnostic] = []
    leading = p.statement.leading
    if "dsql-migrate" not in leading:
        return ignored, problems
    for m in _SUPPRESS.finditer(leading):
        ids = [i.strip() for i in m.group(1).split(",") if i.strip()]
        # a position for the comment itself, counted back from the statement start
        before = leading[m.start():]
        line = p.statement.line - before.count("\n")
        column = m.start() - leading.rfind("\n", 0, m.start())
        if not ids:
            ids = ["<nothing>"]
        for rule_id in ids:
            if rule_id in REGISTRY:
                ignored.add(rule_id)
            else:
                problems.append(Diagnostic(
                    "invalid_suppression", Severity.ERROR, line, column,
                    f"suppression names unknown rule {rule_id!r}",
                    "use exact rule ids: dsql-migrate lint --list-rules", p.statement.index,
                    _preview(p.text), FixResult(FixStatus.UNFIXABLE,
                                                "correct or remove the comment"), path))
    return ignored, problems


def _parse_error(p: ParsedStatement, path: str) -> Diagnostic:
    assert p.error is not None
    line, column = p.statement.position_of(p.error.offset)
    suggestion = "fix the syntax"
    message = f"cannot parse: {p.error.message}"
    if _MYSQL_HINTS.search(p.text):
        message += " (this looks like MySQL)"
        suggestion = ("convert the MySQL DDL to PostgreSQL syntax first (types, quoting, "
                      "AUTO_INCREMENT → identity), then lint the result")
    return Diagnostic("parse_error", Severity.ERROR, line, column, message, suggestion,
                      p.statement.index, _preview(p.text),
                      FixResult(FixStatus.UNFIXABLE, suggestion), path)


_Checks = list[tuple[Rule, StatementCheck]]


class _Dispatch:
    """Enabled rules that are active in the profile, indexed by the node types they inspect."""

    def __init__(self, enabled: frozenset[str], profile: Profile) -> None:
        self.by_node: dict[str, list[Rule]] = {}
        self.every: list[Rule] = []
        self.script: list[Rule] = []
        for r in REGISTRY:
            if r.id not in enabled or not r.active_in(profile):
                continue
            if r.script_check is not None:
                self.script.append(r)
            elif r.nodes is None:
                self.every.append(r)
            else:
                for node in r.nodes:
                    self.by_node.setdefault(node, []).append(r)
        self._combined: dict[str, tuple[_Checks, _Checks]] = {}

    def for_node(self, node_type: str) -> tuple[_Checks, _Checks]:
        """The rules for a node type that have a check: (form-driven, the others), each in
        registry order. Form-driven rules run only where the table flags one of their forms,
        so most statements skip them as a whole (the diagnostics are sorted at the end, so
        running the two groups one after the other changes nothing reported)."""
        rules = self._combined.get(node_type)
        if rules is None:
            every = [(r, r.check) for r in self.by_node.get(node_type, []) + self.every
                     if r.check is not None]
            rules = self._combined[node_type] = ([(r, c) for r, c in every if r.forms],
                                                 [(r, c) for r, c in every if not r.forms])
        return rules


@functools.lru_cache(maxsize=32)
def _dispatch(enabled: frozenset[str], profile: Profile) -> _Dispatch:
    return _Dispatch(enabled, profile)


def _diagnostic(r: Rule, p: ParsedStatement, f: Finding, path: str) -> Diagnostic:
    line, column = p.position(f.location)
    if f.status is None:  # advisory: a legal statement, nothing to fix
        return Diagnostic(r.id, r.severity, line, column, f.message, f.suggestion,
                          p.statement.index, _preview(p.text), None, path)
    status = f.status if (r.fix is not None or f.status is FixStatus.UNFIXABLE) else (
        FixStatus.UNFIXABLE)
    return Diagnostic(r.id, r.severity, line, column, f.message, f.suggestion,
                      p.statement.index, _preview(p.text), FixResult(status, f.detail), path)


class _Verdicts(NamedTuple):
    """The profile's column of the shared table, looked up once per script."""

    profile: Profile
    limits: Limits
    rejected: dict[Form, FormRule]
    forms: frozenset[Form]

    @classmethod
    def of(cls, profile: Profile) -> _Verdicts:
        return cls(profile, profile.limits, dict(rejected_forms(profile)), rejected_set(profile))


def _rejected_forms(
    p: ParsedStatement, verdicts: _Verdicts
) -> dict[str, list[tuple[Found, FormRule]]]:
    """The forms of ``p`` that the profile rejects, by the lint rule that reports them:
    classified once, from the same table and classifier the local emulator uses."""
    node_type = p.node_type
    if node_type is None:
        return {}
    lower = p.lower
    if not may_use_forms(node_type, lower):
        return {}
    raw, is_async, limits = p.json, p.is_async, verdicts.limits
    if raw is not None and not needs_tree(node_type, raw, lower, verdicts.forms, limits,
                                          is_async=is_async):
        return {}
    rejected = verdicts.rejected
    flagged: dict[str, list[tuple[Found, FormRule]]] = {}
    for found in classify(node_type, p.node or {}, limits, is_async=is_async, text=p.text,
                          lower=lower):
        form_rule = rejected.get(found.form)
        if form_rule is not None:
            flagged.setdefault(form_rule.lint_rule, []).append((found, form_rule))
    return flagged


def _table_findings(
    p: ParsedStatement,
    flagged: dict[str, list[tuple[Found, FormRule]]],
    settings: LintSettings,
    ignored: set[str],
    path: str,
) -> Iterator[Diagnostic]:
    """The table's own words for rejected forms no rule's check described."""
    for rule_id, occurrences in flagged.items():
        r = REGISTRY.rules.get(rule_id)
        if r is None or rule_id not in settings.enabled or rule_id in ignored:
            continue
        for found, form_rule in occurrences:
            where = ("in DSQL" if form_rule.allowed_by is None
                     else f"in the {settings.profile.name} profile")
            message = f"{form_rule.error(found.construct)} {where} ({form_rule.sqlstate})"
            finding = Finding(message, form_rule.fix, location=found.location,
                              detail=form_rule.fix)
            yield _diagnostic(r, p, finding, path)


#: the fewest statements worth a second process (below, forking costs more than it saves)
PARALLEL_MIN_STATEMENTS = 2000


class _Pass:
    """The per-statement pass of :func:`lint_statements` over a range of statements: every
    rule that looks at one statement (with the whole script in ``ctx`` to look around)."""

    def __init__(self, statements: list[ParsedStatement], settings: LintSettings, path: str,
                 ctx: LintContext) -> None:
        self.statements, self.settings, self.path, self.ctx = statements, settings, path, ctx
        self.dispatch = _dispatch(settings.enabled, settings.profile)
        self.verdicts = _Verdicts.of(settings.profile)

    def run(self, start: int, stop: int) -> tuple[list[Diagnostic], dict[int, set[str]]]:
        """Diagnostics of statements ``start:stop`` in the order found, and the rule ids their
        suppression comments name, by statement index."""
        settings, path, ctx, dispatch = self.settings, self.path, self.ctx, self.dispatch
        verdicts = self.verdicts
        out: list[Diagnostic] = []
        ignored_by_stmt: dict[int, set[str]] = {}
        for p in self.statements[start:stop]:
            ignored, problems = _suppressions(p, path)
            if ignored:
                ignored_by_stmt[p.statement.index] = ignored
            out.extend(problems)
            if p.node_type is None:
                if "parse_error" in settings.enabled and "parse_error" not in ignored:
                    out.append(_parse_error(p, path))
                continue
            flagged = _rejected_forms(p, verdicts)
            by_forms, by_self = dispatch.for_node(p.node_type)
            found_by_forms = False
            if flagged:  # the shared table decides whether these fire, not the rule
                for r, check in by_forms:
                    if r.id not in flagged or (ignored and r.id in ignored):
                        continue
                    for finding in check(p, ctx):
                        found_by_forms = True
                        out.append(_diagnostic(r, p, finding, path))
            lower = p.lower
            for r, check in by_self:
                if (ignored and r.id in ignored) or (r.prefilter is not None
                                                      and not r.prefilter(lower)):
                    continue
                for finding in check(p, ctx):
                    out.append(_diagnostic(r, p, finding, path))
            if flagged and not found_by_forms:
                out.extend(_table_findings(p, flagged, settings, ignored, path))
        return out, ignored_by_stmt


def lint_statements(
    statements: list[ParsedStatement], settings: LintSettings, path: str = "<stdin>"
) -> list[Diagnostic]:
    """Diagnostics for already parsed statements, sorted by position."""
    ctx = LintContext(settings.profile, statements, dict(settings.options))
    run = _Pass(statements, settings, path, ctx)
    out, ignored_by_stmt = run.run(0, len(statements))
    return _finish(run, out, ignored_by_stmt)


def _finish(run: _Pass, out: list[Diagnostic], ignored_by_stmt: dict[int, set[str]]
            ) -> list[Diagnostic]:
    """Add the whole-script rules' diagnostics to the per-statement ones, and sort them."""
    for r in run.dispatch.script:
        assert r.script_check is not None
        for p, finding in r.script_check(run.ctx):
            if r.id not in ignored_by_stmt.get(p.statement.index, ()):
                out.append(_diagnostic(r, p, finding, run.path))
    out.sort(key=lambda d: (d.line, d.column, d.rule))
    return out


def lint_script(script: str, settings: LintSettings, path: str = "<stdin>", *,
                workers: int = 1) -> LintResult:
    """Lint a whole script. Never raises on bad SQL: problems become diagnostics.

    ``workers=2`` lints a large script (at least :data:`PARALLEL_MIN_STATEMENTS` semicolons)
    in two processes where ``os.fork`` exists (:mod:`dsql_migrate.lint._parallel`): the same
    diagnostics in the same order. Only for a single-threaded caller (the command line):
    forking a process that runs threads is unsafe.
    """
    if workers > 1 and hasattr(os, "fork") and script.count(";") >= PARALLEL_MIN_STATEMENTS:
        from ._parallel import lint_in_two

        return lint_in_two(script, settings, path)
    statements = parse_script(script)
    return LintResult(path, lint_statements(statements, settings, path), statements)


# --- fixing -----------------------------------------------------------------------------------


def _assemble(script: str, statements: list[ParsedStatement],
              rendered: dict[int, list[str]], carried: frozenset[int] = frozenset()) -> str:
    """Rebuild the script, replacing statements by index and keeping everything else.

    ``carried``: statements whose leading text (comments, a COPY's data rows) a rendering
    already holds, so it is not written again where the statement was."""
    parts: list[str] = []
    for p in statements:
        st = p.statement
        new = rendered.get(st.index)
        if new == [] and (st.index in carried or not st.leading.strip()):
            continue
        parts.append(st.leading)
        if new is None:
            parts.append(st.text + (";" if st.terminated else ""))
        elif new:
            parts.append(";\n".join(new) + ";")
    last_end = statements[-1].statement.end if statements else 0
    tail = script[last_end:]
    if statements and statements[-1].statement.terminated:
        tail = tail[tail.find(";") + 1 :] if ";" in tail else tail
    parts.append(tail)
    return "".join(parts)


def _split_block(block: Block) -> list[str]:
    """One block as several: each DDL alone, the rest in ``BEGIN ... COMMIT`` groups between.

    Every statement takes the text before it along (its comments), and a ``COPY ... FROM
    STDIN`` keeps its data rows right after its ``;`` (they sit in the next statement's
    leading text), so a ``COMMIT`` the split adds never lands between a COPY and its rows.
    Returned as one piece, without its last ``;``, which the caller adds."""
    assert block.end is not None
    begin_text = block.begin.text
    following = [*block.body[1:], block.end]
    out: list[str] = []
    group: list[str] = []
    prefix = block.body[0].statement.leading.lstrip("\n") if block.body else ""

    def flush() -> None:
        if group:
            out.extend([begin_text + ";", *group, "COMMIT;"])
            group.clear()

    for s, nxt in zip(block.body, following, strict=True):
        lead = nxt.statement.leading
        data = copy_data_length(s.statement, lead)
        piece = prefix + s.text + ";" + lead[:data].rstrip("\n")
        if s.kind is StatementKind.TRANSACTION and (s.node or {}).get("kind") in (
            "TRANS_STMT_BEGIN", "TRANS_STMT_START"
        ):  # a BEGIN inside a block does nothing: dropped, its comments go to the next one
            prefix += lead.lstrip("\n")
            continue
        prefix = lead[data:].lstrip("\n")
        if s.kind is StatementKind.DDL:
            flush()
            out.append(piece)
        else:
            group.append(piece)
    flush()
    if prefix.strip():  # comments before the block's COMMIT
        out.append(prefix.rstrip("\n"))
    text = "\n".join(p for p in out if p)
    return [text[:-1] if text.endswith(";") else text]


def _split_blocks(script: str) -> str:
    statements = parse_script(script)
    rendered: dict[int, list[str]] = {}
    carried: set[int] = set()
    for block in transaction_blocks(statements):
        if not block.committed or block.end is None:
            continue
        if len(block.ddl) > 1 or (block.ddl and block.dml):
            rendered[block.begin.statement.index] = _split_block(block)
            for s in (*block.body, block.end):
                rendered[s.statement.index] = []
                carried.add(s.statement.index)
    if not rendered:
        return script
    return _assemble(script, statements, rendered, frozenset(carried))


def _mark_unfixed(diagnostics: list[Diagnostic], index: int, exc: Exception | None) -> None:
    why = (f"the automatic fix failed ({type(exc).__name__}); rewrite by hand" if exc else
           "the fix needs several statements, but this one is inside a transaction block that "
           "is not committed: end the block with COMMIT or rewrite by hand")
    for d in diagnostics:
        if d.statement_index == index and d.fixable:
            d.fix_result = FixResult(FixStatus.UNFIXABLE, why)


def fix_script(script: str, settings: LintSettings, path: str = "<stdin>") -> LintResult:
    """Lint, then apply every available fix; ``fixed_sql`` holds the rewritten script.

    The diagnostics are those of the original script, each with the status of its fix.
    Statements nobody fixed keep their text and comments byte for byte.
    """
    result = lint_script(script, settings, path)
    ctx = LintContext(settings.profile, result.statements, dict(settings.options))
    targets = ctx.fix_targets
    applied: set[tuple[int, str]] = set()
    for d in result.diagnostics:
        r = REGISTRY.rules.get(d.rule)
        if r is None or r.fix is None or not d.fixable:
            continue
        key = (d.statement_index, d.rule)
        if key in applied:
            continue
        applied.add(key)
        target = ctx.fix_target(result.statements[d.statement_index])
        try:
            r.fix(target, ctx)
        except Exception as exc:  # a fixer bug must not crash the run: report it unfixed
            _debug("fix %s failed on statement %d", d.rule, d.statement_index)
            targets.pop(d.statement_index, None)
            _mark_unfixed(result.diagnostics, d.statement_index, exc)
    rendered: dict[int, list[str]] = {}
    for i, target in list(targets.items()):
        if not target.changed:
            continue
        try:
            rendered[i] = target.render()
        except Exception as exc:  # pglast cannot print the edited tree: keep the original
            _debug("rendering fixed statement %d failed", i)
            _mark_unfixed(result.diagnostics, i, exc)
    # A fix that turns one statement into several cannot stay inside a block that is never
    # committed (DSQL allows one DDL per transaction, and such a block cannot be split safely).
    stuck = {s.statement.index for b in transaction_blocks(result.statements)
             if not b.committed for s in b.body}
    for i in [i for i, out in rendered.items() if len(out) > 1 and i in stuck]:
        del rendered[i]
        _mark_unfixed(result.diagnostics, i, None)
    fixed = _assemble(script, result.statements, rendered) if rendered else script
    if any(r in settings.enabled for r in _SPLIT_RULES):
        fixed = _split_blocks(fixed)
    result.fixed_sql = fixed
    return result


__all__ = ["LintResult", "LintSettings", "fix_script", "lint_script", "lint_statements"]
