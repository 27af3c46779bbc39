"""Output formats (text, JSON, SARIF 2.1.0, GitHub annotations) and the exit code.

JSON schema (``schema_version`` 1)::

    {
      "schema_version": 1,
      "tool": {"name": "dsql-migrate", "version": "..."},
      "profile": "current",
      "mode": "lint" | "fix",
      "files": [
        {"file": "migrations/001.sql", "output_file": null, "fixed_sql": null | "...",
         "diagnostics": [
           {"rule": "index_async", "severity": "error" | "warning", "line": 3, "column": 1,
            "message": "...", "suggestion": "..." | null,
            "fix_result": {"status": "fixed" | "fixed_with_warning" | "unfixable",
                           "detail": "..." | null},
            "statement_preview": "CREATE INDEX ix ON t (a)"}]}],
      "summary": {"files": 1, "diagnostics": 1, "errors": 1, "warnings": 0, "fixed": 0,
                  "fixed_with_warning": 1, "unfixable": 0},
      "exit_code": 1
    }

In lint mode ``fix_result`` says what ``--fix`` *would* do; in fix mode what it did.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .. import __version__
from ..errors import ExitCode
from .core import REGISTRY, Diagnostic, FixStatus, Severity
from .engine import LintResult

SCHEMA_VERSION = 1
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def exit_code(results: Sequence[LintResult], *, fixing: bool) -> ExitCode:
    """0 clean · 1 errors (lint) or unfixable errors left (fix) · 3 all fixed, with warnings."""
    diags = [d for r in results for d in r.diagnostics]
    if not fixing:
        return ExitCode.FAILED if any(d.severity is Severity.ERROR for d in diags) else (
            ExitCode.OK)
    if any(d.severity is Severity.ERROR and not d.fixable for d in diags):
        return ExitCode.FAILED
    if any(
        d.severity is Severity.WARNING
        or (d.fix_result is not None and d.fix_result.status is FixStatus.FIXED_WITH_WARNING)
        for d in diags
    ):
        return ExitCode.FIXED_WITH_WARNINGS
    return ExitCode.OK


def summary(results: Sequence[LintResult]) -> dict[str, int]:
    counts = {"files": len(results), "diagnostics": 0, "errors": 0, "warnings": 0, "fixed": 0,
              "fixed_with_warning": 0, "unfixable": 0}
    # one pass over the diagnostics (a worst-case script has one or more per statement)
    for r in results:
        for d in r.diagnostics:
            counts["diagnostics"] += 1
            if d.severity is Severity.ERROR:
                counts["errors"] += 1
            elif d.severity is Severity.WARNING:
                counts["warnings"] += 1
            if d.fix_result is not None:
                counts[d.fix_result.status.value] += 1
    return counts


def format_text(results: Sequence[LintResult], *, fixing: bool) -> str:
    """``file:line:col: severity rule: message`` lines, each followed by what to do."""
    lines: list[str] = []
    for r in results:
        for d in r.diagnostics:
            lines.append(f"{d.path}:{d.line}:{d.column}: {d.severity.value} {d.rule}: {d.message}")
            if d.fix_result is not None and fixing and d.fix_result.status is not (
                FixStatus.UNFIXABLE
            ):
                lines.append(f"    {d.fix_result.status.value}: {d.fix_result.detail}")
            elif d.suggestion:
                lines.append(f"    suggestion: {d.suggestion}")
    s = summary(results)
    if s["diagnostics"]:
        tail = f"{s['errors']} error(s), {s['warnings']} warning(s) in {s['files']} file(s)"
        if fixing:
            tail += (f"; fixed {s['fixed']}, fixed with warning {s['fixed_with_warning']}, "
                     f"unfixable {s['unfixable']}")
        lines.append(tail)
    else:
        lines.append(f"no problems found in {s['files']} file(s)")
    return "\n".join(lines) + "\n"


def _diag_json(d: Diagnostic) -> dict[str, Any]:
    return {
        "rule": d.rule,
        "severity": d.severity.value,
        "line": d.line,
        "column": d.column,
        "message": d.message,
        "suggestion": d.suggestion,
        "fix_result": d.fix_result.as_dict() if d.fix_result else None,
        "statement_preview": d.statement_preview,
    }


#: JSON text of a string, exactly as ``json.dumps(..., ensure_ascii=False)`` writes it (C)
_string = json.encoder.encode_basestring


def _maybe(value: str | None) -> str:
    return "null" if value is None else str(_string(value))


def _diag_text(d: Diagnostic) -> str:
    """``json.dumps(_diag_json(d), ensure_ascii=False)``, written directly: a worst-case report
    has more than one diagnostic per statement, and building a dict for each and walking it
    again costs more than linting them (issue 18)."""
    fix = d.fix_result
    fixed = "null" if fix is None else (
        f'{{"status": {_string(fix.status.value)}, "detail": {_maybe(fix.detail)}}}')
    return (f'{{"rule": {_string(d.rule)}, "severity": {_string(d.severity.value)}, '
            f'"line": {int(d.line)!r}, "column": {int(d.column)!r}, '
            f'"message": {_string(d.message)}, "suggestion": {_maybe(d.suggestion)}, '
            f'"fix_result": {fixed}, "statement_preview": {_string(d.statement_preview)}}}')


def format_json(
    results: Sequence[LintResult], *, fixing: bool, profile: str,
    outputs: dict[str, str] | None = None,
) -> str:
    """The report as JSON (the schema above), compact: the same text as ``json.dumps`` of
    :func:`_json_doc` (tests/lint/test_report_json.py), written faster."""
    outputs = outputs or {}
    head = json.dumps(_json_doc(results, fixing=fixing, profile=profile, outputs=outputs,
                                files=False), ensure_ascii=False)
    files = ", ".join(
        f'{{"file": {_string(r.path)}, "output_file": {_maybe(outputs.get(r.path))}, '
        f'"fixed_sql": {_maybe(r.fixed_sql if fixing else None)}, '
        f'"diagnostics": [{", ".join(_diag_text(d) for d in r.diagnostics)}]}}'
        for r in results)
    tail = json.dumps({"summary": summary(results),
                       "exit_code": int(exit_code(results, fixing=fixing))})
    return f'{head[:-1]}, "files": [{files}], {tail[1:]}\n'


def _json_doc(
    results: Sequence[LintResult], *, fixing: bool, profile: str,
    outputs: dict[str, str] | None = None, files: bool = True,
) -> dict[str, Any]:
    """The report as a dict (what :func:`format_json` writes; ``files=False``: the head)."""
    outputs = outputs or {}
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "dsql-migrate", "version": __version__},
        "profile": profile,
        "mode": "fix" if fixing else "lint",
    }
    if not files:
        return doc
    doc["files"] = [
        {
            "file": r.path,
            "output_file": outputs.get(r.path),
            "fixed_sql": r.fixed_sql if fixing else None,
            "diagnostics": [_diag_json(d) for d in r.diagnostics],
        }
        for r in results
    ]
    doc["summary"] = summary(results)
    doc["exit_code"] = int(exit_code(results, fixing=fixing))
    return doc


def _sarif_uri(path: str) -> str:
    return "stdin" if path == "<stdin>" else path.replace("\\", "/").removeprefix("./")


def format_sarif(results: Sequence[LintResult], *, fixing: bool) -> str:
    """SARIF 2.1.0, as GitHub code scanning accepts it (relative URIs, rule metadata)."""
    rules = list(REGISTRY)
    index = {r.id: i for i, r in enumerate(rules)}
    driver_rules = [
        {
            "id": r.id,
            "name": r.id,
            "shortDescription": {"text": r.summary},
            "fullDescription": {"text": " ".join(r.doc.split())},
            "help": {"text": " ".join(r.doc.split()),
                     "markdown": f"{r.summary}\n\nSee docs/lint-rules.md#{r.id}"},
            "defaultConfiguration": {"level": r.severity.value, "enabled": r.default_enabled},
            "properties": {"family": r.family},
        }
        for r in rules
    ]
    sarif_results = []
    for res in results:
        for d in res.diagnostics:
            text = d.message + (f" Suggestion: {d.suggestion}." if d.suggestion else "")
            sarif_results.append({
                "ruleId": d.rule,
                "ruleIndex": index[d.rule],
                "level": d.severity.value,
                "message": {"text": text},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": _sarif_uri(d.path),
                                             "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": d.line, "startColumn": d.column},
                    }
                }],
                "properties": {
                    "fix_status": d.fix_result.status.value if d.fix_result else None,
                },
            })
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "dsql-migrate",
                "version": __version__,
                "rules": driver_rules,
            }},
            "columnKind": "unicodeCodePoints",
            "results": sarif_results,
        }],
    }
    return json.dumps(doc, ensure_ascii=False) + "\n"


def _gh_escape(value: str, *, prop: bool) -> str:
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        value = value.replace(":", "%3A").replace(",", "%2C")
    return value


def format_github(results: Sequence[LintResult], *, fixing: bool) -> str:
    """GitHub Actions workflow commands: one ``::error``/``::warning`` annotation per problem."""
    lines = []
    for r in results:
        for d in r.diagnostics:
            level = "error" if d.severity is Severity.ERROR else "warning"
            if fixing and d.fixable:
                level = "notice" if d.fix_result and d.fix_result.status is FixStatus.FIXED else (
                    "warning")
            props = (f"file={_gh_escape(r.path, prop=True)},line={d.line},col={d.column},"
                     f"title={_gh_escape(d.rule, prop=True)}")
            message = d.message + (f" — {d.suggestion}" if d.suggestion else "")
            lines.append(f"::{level} {props}::{_gh_escape(message, prop=False)}")
    return "\n".join(lines) + ("\n" if lines else "")


__all__ = [
    "SCHEMA_VERSION",
    "exit_code",
    "format_github",
    "format_json",
    "format_sarif",
    "format_text",
    "summary",
]
