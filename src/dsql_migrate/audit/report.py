"""The audits' reports: Markdown for people and pull requests, JSON for tools and agents."""

from __future__ import annotations

import json
from typing import Any

from .references import ENFORCED, MISSING, NOT_VALID, ReferencesReport, RelationshipResult
from .tenancy import TenancyReport

FORMATS = ("markdown", "json")


def render(report: ReferencesReport | TenancyReport, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report.as_dict(), indent=2, sort_keys=True) + "\n"
    if isinstance(report, ReferencesReport):
        return references_markdown(report)
    return tenancy_markdown(report)


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _enforcement(result: RelationshipResult, profile: str) -> str:
    if result.enforcement == ENFORCED:
        return f"yes: foreign key {result.constraint} (validated), not read"
    if result.enforcement == NOT_VALID:
        return f"new writes only: foreign key {result.constraint} is NOT VALID"
    assert result.enforcement == MISSING
    if profile == "classic":
        return "no: the classic profile has no foreign keys"
    return "no: no foreign key"


def references_markdown(report: ReferencesReport) -> str:
    audited = [r for r in report.results if r.audited]
    verdict = (f"**{report.orphans} orphaned row(s)**" if not report.ok
               else "no orphaned rows")
    lines = ["# Reference audit", "",
             f"Profile `{report.profile}` · {len(report.results)} relationship(s), "
             f"{len(audited)} not enforced by the database and read in pages of at most "
             f"{report.batch_rows} rows · {verdict}", ""]
    lines += [f"> {note}" for note in report.notes]
    if report.results:
        lines += ["| relationship | declared by | enforced by the database | rows read (pages) "
                  "| orphans |", "|---|---|---|---|---|"]
        for r in report.results:
            read = f"{r.rows_scanned} ({r.pages})" if r.audited else "-"
            orphans = str(r.orphans) if r.audited else "-"
            lines.append(f"| {_cell(r.relationship.label)} | {_cell(r.relationship.source)} | "
                         f"{_cell(_enforcement(r, report.profile))} | {read} | {orphans} |")
        lines.append("")
    for r in report.results:
        if not r.orphans:
            continue
        lines += [f"## {r.relationship.label}: {r.orphans} orphaned row(s)", "",
                  f"Rows whose ({', '.join(r.relationship.columns)}) is set but names no row of "
                  f"{r.relationship.parent}; the first {len(r.samples)}:", ""]
        header = [*r.key, *(c for c in r.relationship.columns if c not in r.key)]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for sample in r.samples:
            values = {**sample["reference"], **sample["key"]}
            lines.append("| " + " | ".join(_cell(values[c]) for c in header) + " |")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def tenancy_markdown(report: TenancyReport) -> str:
    verdict = (f"**{len(report.findings)} finding(s)**" if report.findings
               else "every table has it and every key leads with it")
    lines = [f"# Tenancy audit: `{report.column}`", "",
             f"{len(report.tables)} table(s) audited · {verdict}", ""]
    if report.skipped:
        lines += [f"Skipped (excluded): {', '.join(report.skipped)}", ""]
    lines += [f"> {note}" for note in report.notes]
    if report.findings:
        lines += ["| table | object | finding |", "|---|---|---|"]
        for f in report.findings:
            what = {"missing_column": "table", "primary_key": f"primary key {f.name}",
                    "index": f"index {f.name}"}[f.kind]
            lines.append(f"| {_cell(f.table)} | {_cell(what)} | {_cell(f.message)} |")
        lines += ["", "## Fixes", ""]
        for f in report.findings:
            lines += [f"{f.message}:", "", "```sql", *f.fix, "```", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


__all__ = ["FORMATS", "references_markdown", "render", "tenancy_markdown"]
