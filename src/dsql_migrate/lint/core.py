"""The linter's model: rules, findings, diagnostics, and the registry rules join by decorator.

A rule is a function decorated with :func:`rule` (one statement at a time, dispatched on the
pglast node type so that a statement only meets the rules that can apply to it) or
:func:`script_rule` (the whole script, for rules about transaction blocks or counts). The
function's docstring is the rule's documentation: first line = summary, then the problem, the
fix and an example; ``docs/lint-rules.md`` is generated from it.

Whether a statement is rejected is not the rules' to decide: it is the shared table's
(:mod:`dsql_migrate.forms`), which the local emulator reads too. A rule named in that table as a
form's ``lint_rule`` is *form-driven*: it runs only on statements that use one of its forms
rejected by the profile, and when its check finds nothing more precise to say, the engine reports
the table's words (see :mod:`dsql_migrate.lint.engine`). A rule that no form names (transaction
blocks, counts, identifier lengths, warnings) decides by itself.

A rule yields :class:`Finding` values. A finding says what ``--fix`` does about it
(:class:`FixStatus`); the rewrite itself is the rule's *fixer*, attached with
``@my_rule.fixer`` and applied once per statement (see :mod:`dsql_migrate.lint.fixer`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple

from ..forms import FORM_RULES, Form, rejected_forms
from ..profiles import Capability, Limits, Profile
from ..sql import ParsedStatement
from ..sql._record import Record

if TYPE_CHECKING:
    from .fixer import FixTarget


class Severity(str, Enum):
    ERROR = "error"  # DSQL rejects the statement
    WARNING = "warning"  # accepted, but likely to fail or misbehave at run time


class FixStatus(str, Enum):
    FIXED = "fixed"  # safe rewrite, same behaviour
    FIXED_WITH_WARNING = "fixed_with_warning"  # rewritten; behaviour changes as the detail says
    UNFIXABLE = "unfixable"  # a human must rewrite it; the detail says how


# NamedTuples and plain classes, not dataclasses: start-up (see sql/_record.py)
class Finding(NamedTuple):
    """What a rule reports about one statement.

    ``location`` is a pglast location (byte offset) inside the statement, or None for the
    statement's start. ``status``/``detail`` say what ``--fix`` does (or cannot do); a status of
    None is an *advisory*: the statement is legal in DSQL, there is nothing to fix (so it is
    never counted as unfixable), the suggestion is advice.
    """

    message: str
    suggestion: str | None = None
    location: int | None = None
    status: FixStatus | None = FixStatus.UNFIXABLE
    detail: str | None = None


class FixResult(NamedTuple):
    status: FixStatus
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "detail": self.detail}


class Diagnostic(Record):
    """One reported problem, located in a file."""

    __slots__ = ("column", "fix_result", "line", "message", "path", "rule", "severity",
                 "statement_index", "statement_preview", "suggestion")
    _fields = ("rule", "severity", "line", "column", "message", "suggestion", "statement_index",
               "statement_preview", "fix_result", "path")

    def __init__(self, rule: str, severity: Severity, line: int, column: int, message: str,
                 suggestion: str | None, statement_index: int, statement_preview: str,
                 fix_result: FixResult | None = None, path: str = "<stdin>") -> None:
        self.rule = rule
        self.severity = severity
        self.line = line
        self.column = column
        self.message = message
        self.suggestion = suggestion
        self.statement_index = statement_index
        self.statement_preview = statement_preview
        self.fix_result = fix_result
        self.path = path

    @property
    def fixable(self) -> bool:
        return self.fix_result is not None and self.fix_result.status is not FixStatus.UNFIXABLE


#: the forms of the shared table each rule reports, by rule id
_FORMS_BY_RULE: dict[str, tuple[Form, ...]] = {}
for _form, _rule in FORM_RULES.items():
    _FORMS_BY_RULE[_rule.lint_rule] = (*_FORMS_BY_RULE.get(_rule.lint_rule, ()), _form)

StatementCheck = Callable[[ParsedStatement, "LintContext"], Iterable[Finding]]
ScriptCheck = Callable[["LintContext"], Iterable[tuple[ParsedStatement, Finding]]]
Fixer = Callable[["FixTarget", "LintContext"], None]


class Rule(Record):
    """A registered rule. ``nodes`` = pglast node types it inspects (None: every statement).

    ``prefilter`` is a necessary condition on the lower-cased statement text (False: the rule
    cannot fire); ``unless`` switches the rule off in profiles that allow that capability,
    ``only_if`` in profiles that do not; ``forms`` are the forms of the shared table this rule
    reports (empty: the rule decides by itself), found from the table.
    """

    __slots__ = ("check", "default_enabled", "doc", "family", "fix", "forms", "id", "nodes",
                 "only_if", "prefilter", "script_check", "severity", "unless")
    _fields = ("id", "severity", "family", "doc", "nodes", "default_enabled", "check",
               "script_check", "fix", "prefilter", "unless", "only_if", "forms")

    def __init__(self, id: str, severity: Severity, family: str, doc: str,
                 nodes: tuple[str, ...] | None, default_enabled: bool = True,
                 check: StatementCheck | None = None, script_check: ScriptCheck | None = None,
                 fix: Fixer | None = None, prefilter: Callable[[str], bool] | None = None,
                 unless: Capability | None = None, only_if: Capability | None = None) -> None:
        self.id = id
        self.severity = severity
        self.family = family
        self.doc = doc
        self.nodes = nodes
        self.default_enabled = default_enabled
        self.check = check
        self.script_check = script_check
        self.fix = fix
        self.prefilter = prefilter
        self.unless = unless
        self.only_if = only_if
        self.forms: tuple[Form, ...] = _FORMS_BY_RULE.get(id, ())

    def active_in(self, profile: Profile) -> bool:
        if self.forms:  # the table says where: wherever one of its forms is rejected
            rejected = rejected_forms(profile)
            if not any(f in rejected for f in self.forms):
                return False
        if self.unless is not None and profile.allows(self.unless):
            return False
        return self.only_if is None or profile.allows(self.only_if)

    @property
    def summary(self) -> str:
        return self.doc.strip().splitlines()[0] if self.doc.strip() else self.id

    def fixer(self, fn: Fixer) -> Fixer:
        """Decorator: attach the rewrite that ``--fix`` applies to statements this rule flags."""
        self.fix = fn
        return fn


class Registry:
    """All known rules by id, and the per-node-type dispatch table."""

    def __init__(self) -> None:
        self.rules: dict[str, Rule] = {}

    def add(self, new: Rule) -> Rule:
        if new.id in self.rules:
            raise ValueError(f"duplicate lint rule id {new.id!r}")
        self.rules[new.id] = new
        return new

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self.rules

    def __iter__(self) -> Iterator[Rule]:
        return iter(sorted(self.rules.values(), key=lambda r: (r.family, r.id)))


REGISTRY = Registry()


def _family(fn: Callable[..., Any]) -> str:
    return fn.__module__.rsplit(".", 1)[-1]


def any_of(*words: str) -> Callable[[str], bool]:
    """A prefilter: the lower-cased statement text contains one of ``words``."""

    if len(words) == 1:
        (word,) = words

        def test_one(lower: str) -> bool:
            return word in lower

        return test_one

    def test(lower: str) -> bool:
        for w in words:  # noqa: SIM110  (a loop beats any() + generator here)
            if w in lower:
                return True
        return False

    return test


def rule(
    rule_id: str,
    *,
    nodes: tuple[str, ...] | None,
    severity: Severity = Severity.ERROR,
    default_enabled: bool = True,
    prefilter: Callable[[str], bool] | None = None,
    unless: Capability | None = None,
    only_if: Capability | None = None,
) -> Callable[[StatementCheck], Rule]:
    """Register a per-statement rule; the decorated function's docstring documents it.

    ``prefilter`` is a cheap necessary condition on the lower-cased text (see :func:`any_of`):
    when it is False the rule is skipped, and the statement's tree may never be decoded.
    ``unless``/``only_if`` switch the rule off by profile capability.
    """

    def register(fn: StatementCheck) -> Rule:
        return REGISTRY.add(
            Rule(rule_id, severity, _family(fn), fn.__doc__ or "", nodes, default_enabled,
                 check=fn, prefilter=prefilter, unless=unless, only_if=only_if)
        )

    return register


def table_rule(rule_id: str, doc: str, module: str) -> Rule:
    """Register a rule whose findings are the shared table's words alone (its check finds
    nothing more precise): the form it reports needs no more than its docstring."""

    def check(p: ParsedStatement, ctx: LintContext) -> Iterable[Finding]:
        return ()

    check.__doc__ = doc
    check.__module__ = module
    return rule(rule_id, nodes=())(check)


def script_rule(
    rule_id: str, *, severity: Severity = Severity.ERROR, default_enabled: bool = True
) -> Callable[[ScriptCheck], Rule]:
    """Register a rule that looks at the whole script (transaction blocks, counts)."""

    def register(fn: ScriptCheck) -> Rule:
        return REGISTRY.add(
            Rule(rule_id, severity, _family(fn), fn.__doc__ or "", None, default_enabled,
                 script_check=fn)
        )

    return register


class LintContext(Record):
    """What rules may look at besides the statement: the profile, options, the whole script,
    and (``fix_targets``) the statements being rewritten by ``--fix``, by statement index."""

    __slots__ = ("_indices", "fix_targets", "options", "profile", "statements")
    _fields = ("profile", "statements", "options", "fix_targets")

    def __init__(self, profile: Profile, statements: list[ParsedStatement] | None = None,
                 options: dict[str, Any] | None = None,
                 fix_targets: dict[int, FixTarget] | None = None) -> None:
        self.profile = profile
        self.statements: list[ParsedStatement] = [] if statements is None else statements
        self.options: dict[str, Any] = {} if options is None else options
        self.fix_targets: dict[int, FixTarget] = {} if fix_targets is None else fix_targets
        self._indices: dict[tuple[str, ...], list[int]] = {}

    def indices_of(self, node_types: tuple[str, ...]) -> list[int]:
        """The indices (ascending) of the statements of these node types, computed once per
        script: rules that look back or between two statements scan these instead of every
        statement (a pg_dump has thousands of INSERTs between a CREATE and its ALTERs)."""
        found = self._indices.get(node_types)
        if found is None:
            found = self._indices[node_types] = [
                i for i, q in enumerate(self.statements) if q.node_type in node_types]
        return found

    def fix_target(self, p: ParsedStatement) -> FixTarget:
        """The rewrite in progress for ``p`` (a fixer may also edit another statement, e.g.
        fold an ALTER TABLE's constraint into the earlier CREATE TABLE)."""
        from .fixer import FixTarget

        target = self.fix_targets.get(p.statement.index)
        if target is None:
            target = self.fix_targets[p.statement.index] = FixTarget(p)
        return target

    @property
    def limits(self) -> Limits:
        return self.profile.limits


__all__ = [
    "REGISTRY",
    "Diagnostic",
    "Finding",
    "FixResult",
    "FixStatus",
    "LintContext",
    "Registry",
    "Rule",
    "Severity",
    "any_of",
    "rule",
    "script_rule",
    "table_rule",
]
