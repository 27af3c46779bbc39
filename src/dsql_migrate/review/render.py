"""A review as markdown (a pull-request comment), JSON, or SARIF 2.1.0 (code scanning).

The markdown starts with :data:`~.model.MARKER` (the GitHub Action finds its one comment by it),
then a verdict, a summary table, and per revision the details folded in ``<details>``. It stays
under GitHub's comment limit: past :data:`COMMENT_LIMIT` characters the SQL is left out (the
JSON has it all).
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from typing import Any

from .. import __version__
from ..lint import REGISTRY
from ..plan import Step, StepKind, render_markdown
from .model import (
    APPROVE_ANNOTATION,
    CODE_ERROR,
    FORMAT,
    MARKER,
    Compilation,
    Copy,
    Finding,
    Level,
    Review,
    RevisionReview,
    copies,
    recreated_tables,
)

#: GitHub refuses comments over 65,536 characters
COMMENT_LIMIT = 60_000
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"

#: review's own rules (lint rules are the linter's, with their documentation)
RULES: dict[str, tuple[str, str]] = {
    "refused": ("DSQL cannot run this as written", "error"),
    "needs-connection": ("the revision uses the database connection while it is recorded",
                         "error"),
    "destructive": ("a destructive step needs explicit approval", "error"),
    CODE_ERROR: ("the revision's own Python code raised an error", "error"),
    "edited-applied-revision": ("a revision that exists at the base was edited", "warning"),
    "removed-revision": ("a revision that exists at the base was removed", "warning"),
    "plan-warning": ("the planner has something to say about a step", "warning"),
    "target-not-at-base": ("the target is not at the base's heads", "warning"),
}

KIND_WORDS: dict[StepKind, str] = {
    StepKind.DDL: "DDL",
    StepKind.ASYNC_INDEX: "async index, waited for",
    StepKind.ASYNC_VALIDATE: "async validation, waited for",
    StepKind.BACKFILL: "batched backfill",
    StepKind.COPY: "batched copy",
    StepKind.VERIFY: "verification",
    StepKind.SWAP: "swap",
    StepKind.DML: "DML",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _int(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"~{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"~{round(seconds / 60)} min"
    return f"~{seconds / 3600:.1f} h"


def _sized(r: RevisionReview) -> Compilation | None:
    """The compilation against the target: the only one whose table sizes mean something (the
    fresh emulator holds only what the revisions inserted)."""
    sized = [c for c in r.compilations[1:] if c.plan is not None]
    return sized[-1] if sized else None


def _copy_words(copy: Copy, review: Review, sized: bool) -> str:
    if not sized:
        return (f"rows unknown here, batches of <= {copy.batch_size:,} rows "
                "(review with --url for the target's table sizes)")
    if copy.rows is None:  # pg_class.reltuples is -1 until the table is analyzed
        return (f"rows unknown: the target has no statistics for {copy.table} (run ANALYZE "
                f"{copy.table} on it, then review again), batches of <= {copy.batch_size:,} rows")
    seconds = copy.seconds(review.seconds_per_batch) or 0.0
    return (f"~{_int(copy.rows)} rows in {copy.batches:,} batch{'es' if copy.batches != 1 else ''}"
            f" of <= {copy.batch_size:,}, {_duration(seconds)}")


def _status(r: RevisionReview, review: Review) -> str:
    if r.refused:
        return "⛔ refused"
    if any(c.not_compiled for c in r.compilations):
        return "⏸ not compiled"
    if r.destructive_steps():
        return "✅ destructive, approved" if r.approved(review.approve_flag) else (
            "⛔ needs approval")
    if r.status == "edited":
        return "⚠️ edited after it was applied"
    if any(f.level is Level.ERROR for f in r.findings):
        return "⛔ errors"
    return "✅ ok"


def _recreated_cell(r: RevisionReview, review: Review) -> str:
    plan = r.plan
    if plan is None:
        return ""
    sized = _sized(r) is not None
    parts = []
    for copy in copies(plan):
        if copy.kind is not StepKind.COPY:
            continue
        rows = f"~{_int(copy.rows)} rows, {copy.batches:,} batches" if sized and copy.rows \
            is not None else "rows unknown"
        parts.append(f"`{copy.table}` ({rows})")
    return ", ".join(parts) or ", ".join(f"`{t}`" for t in recreated_tables(plan))


def markdown(review: Review, *, with_sql: bool = True) -> str:
    out: list[str] = [MARKER, f"### dsql-migrate review: {review.verdict()}", ""]
    where = f"a fresh local emulator at the base (profile `{review.profile}`)"
    if review.targets:
        where += " and against " + ", ".join(f"`{t}`" for t in review.targets) + \
            " (live schema, read only)"
    heads = ", ".join(f"`{h}`" for h in review.base_heads) or "no revisions"
    out += [f"Base: {review.base} (`{review.base_commit[:12]}`, at {heads}). "
            f"Compiled on {where}.", "", hash_line(review), ""]
    if review.revisions:
        out += ["| Revision | Status | Steps | Destructive | Tables recreated | Async jobs | "
                "Lint | Verdict |", "|---|---|---:|---:|---|---:|---:|---|"]
        for r in review.revisions:
            plan = r.plan
            lint = sum(1 for f in r.findings if f.rule in REGISTRY)
            out.append(
                f"| `{r.revision}` {_cell(r.doc)} | {r.status} | "
                f"{len(plan.steps) if plan else '-'} | "
                f"{len(r.destructive_steps()) if plan else '-'} | "
                f"{_recreated_cell(r, review)} | "
                f"{plan.summary()['async_jobs'] if plan else '-'} | {lint or ''} | "
                f"{_status(r, review)} |")
        out.append("")
    for finding in review.findings:
        out.append(f"- {_icon(finding)} {_finding_text(finding)}")
    if review.findings:
        out.append("")
    for r in review.revisions:
        out += _revision_md(r, review, with_sql)
    if any(c.seconds(review.seconds_per_batch) is not None for r in review.revisions
           if (s := _sized(r)) is not None and s.plan is not None for c in copies(s.plan)):
        out += [f"<sub>Times assume {review.seconds_per_batch:g} s per batch (one transaction "
                "of up to the batch size); measure yours and pass --seconds-per-batch.</sub>",
                ""]
    text = "\n".join(out).rstrip() + "\n"
    if with_sql and len(text) > COMMENT_LIMIT:
        return markdown(review, with_sql=False)
    if len(text) > COMMENT_LIMIT:  # even without SQL: the summary table and a pointer
        cut = text.find("\n<details>")
        text = (text[:cut] if 0 < cut < COMMENT_LIMIT else text[:COMMENT_LIMIT]).rstrip() + (
            "\n\n_The details are too long for a comment: see the review's JSON "
            "(--format json)._\n")
    return text


def hash_line(review: Review) -> str:
    """The upgrade hash a deploy pins with ``upgrade --expect-hash``, and what it was
    computed against (a hash taken on the emulator pins a deploy only when the target's touched
    tables are as the emulator's: docs/review.md)."""
    if review.upgrade_hash is None:
        return f"Upgrade hash: none ({review.hash_missing})."
    text = f"Upgrade hash: `{review.upgrade_hash}` (computed against "
    if not review.targets:
        return text + f"{review.hash_target}; to pin a deploy, review with `--url` against its " \
            "target)."
    return text + (f"`{review.hash_target}`; pin the deploy with "
                   f"`--expect-hash {review.upgrade_hash}`).")


def _icon(finding: Finding) -> str:
    return {Level.ERROR: "⛔", Level.WARNING: "⚠️", Level.NOTE: "🛈"}[finding.level]


def _finding_text(f: Finding) -> str:
    where = f" (`{f.path}:{f.line}`)" if f.path and f.line else (f" (`{f.path}`)" if f.path
                                                                else "")
    fix = f" **Fix:** {f.fix}" if f.fix else ""
    return f"**{f.rule}**{where}: {f.message}.{fix}".replace(".. ", ". ").replace(
        "..**", ".**")


def _revision_md(r: RevisionReview, review: Review, with_sql: bool) -> list[str]:
    plan = r.plan
    head = f"<b>{html.escape(r.revision)}</b> {html.escape(r.doc)}"
    size = f": {len(plan.steps)} steps" if plan else ""
    out = [f"<details><summary>{head}{size} ({_status(r, review)})</summary>", "",
           f"File: `{r.path}` ({r.status})", ""]
    for c in r.compilations:
        if c.not_compiled:
            out += [f"_{c.target}: {c.not_compiled}._", ""]
    if plan is not None:
        out += [f"**What it does** ({_plan_origin(r)}):", ""]
        others = {c.plan.hash for c in r.compilations if c.plan is not None} - {plan.hash}
        if others:
            out[-2] = out[-2].rstrip(":") + (" - the plan on the local emulator differs "
                                             f"(hash {', '.join(sorted(others))}):")
        out += [f"{s.id}. {_step_words(s)}" for s in plan.steps] + [""]
        out += _destructive_md(r, review)
        out += _section("Tables recreated", [
            f"`{c.table}`: {_copy_words(c, review, _sized(r) is not None)}"
            for c in copies(plan) if c.kind is StepKind.COPY])
        out += _section("Batched backfills", [
            f"`{c.table}`: {_copy_words(c, review, _sized(r) is not None)}"
            for c in copies(plan) if c.kind is StepKind.BACKFILL])
        out += _section("Async indexes and validations", [
            f"step {s.id}: {_step_words(s)}" for s in plan.steps if s.kind.is_async])
    out += _section("Lint", [_finding_text(f) for f in r.findings if f.rule in REGISTRY])
    out += _section("Refused", [_finding_text(f) for f in r.findings
                                if f.rule in ("refused", "needs-connection")])
    out += _section("Failed (the revision's code)", [_finding_text(f) for f in r.findings
                                                     if f.rule == CODE_ERROR])
    out += _section("Also", [f"{_icon(f)} {_finding_text(f)}" for f in r.findings
                             if f.rule in ("edited-applied-revision", "plan-warning")])
    if plan is not None and with_sql:
        body = render_markdown(plan).replace("### dsql-migrate plan\n\n", "", 1)
        out += [f"<details><summary>Plan and SQL ({html.escape(plan.hash[:19])}…)</summary>",
                "", body.rstrip(), "", "</details>", ""]
    out += ["</details>", ""]
    return out


def _plan_origin(r: RevisionReview) -> str:
    targets = [c.target for c in r.compilations if c.plan is not None]
    return f"compiled against {targets[-1]}" if targets else ""


def _step_words(step: Step) -> str:
    flag = " ⚠️ **destructive**" if step.destructive else ""
    said = step.kind.is_async and "async" in step.summary  # the planner's words say it
    kind = "" if said else f" _({KIND_WORDS[step.kind]})_"
    return f"{step.summary}{kind}{flag}"


def _destructive_md(r: RevisionReview, review: Review) -> list[str]:
    steps = r.destructive_steps()
    if not steps:
        return []
    if r.approved(review.approve_flag):
        by = "--approve-destructive" if review.approve_flag else (
            f"`{APPROVE_ANNOTATION}` at line {r.approved_in_file}")
        title = f"Destructive, approved by {by}"
    else:
        title = ("Destructive, needs approval (--approve-destructive, or the line "
                 f"`{APPROVE_ANNOTATION}` in the revision file)")
    return _section(title, [f"step {s.id}: {s.summary}" for s in steps])


def _section(title: str, items: list[str]) -> list[str]:
    if not items:
        return []
    return [f"**{title}:**", "", *[f"- {i}" for i in items], ""]


# -- JSON ------------------------------------------------------------------------------------


def as_dict(review: Review) -> dict[str, Any]:
    revisions = [r.as_dict(review.approve_flag) for r in review.revisions]
    findings = list(review.all_findings())
    return {
        "format": FORMAT,
        "tool": {"name": "dsql-migrate", "version": __version__},
        "base": {"ref": review.base, "commit": review.base_commit,
                 "heads": list(review.base_heads)},
        "profile": review.profile,
        "targets": list(review.targets),
        "upgrade_hash": {"hash": review.upgrade_hash, "target": review.hash_target or None,
                         "missing": None if review.upgrade_hash else review.hash_missing},
        "approve_destructive": review.approve_flag,
        "seconds_per_batch": review.seconds_per_batch,
        "revisions": revisions,
        "findings": [f.as_dict() for f in review.findings],
        "summary": {
            "revisions": len(review.revisions),
            "new": sum(r.status == "new" for r in review.revisions),
            "edited": sum(r.status == "edited" for r in review.revisions),
            "refused": sum(r.refused for r in review.revisions),
            "destructive_steps": sum(len(r.destructive_steps()) for r in review.revisions),
            "unapproved": [r.revision for r in review.unapproved()],
            "errors": sum(f.level is Level.ERROR for f in findings),
            "warnings": sum(f.level is Level.WARNING for f in findings),
        },
        "verdict": review.verdict(),
        "exit_code": int(review.exit_code()),
    }


def to_json(review: Review) -> str:
    return json.dumps(as_dict(review), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# -- SARIF -----------------------------------------------------------------------------------


def _rule_meta(rule_id: str) -> dict[str, Any]:
    if rule_id in REGISTRY:
        found = next(r for r in REGISTRY if r.id == rule_id)
        return {"id": rule_id, "name": rule_id, "shortDescription": {"text": found.summary},
                "help": {"text": " ".join(found.doc.split()),
                         "markdown": f"{found.summary}\n\nSee docs/lint-rules.md#{rule_id}"},
                "defaultConfiguration": {"level": found.severity.value}}
    summary, level = RULES.get(rule_id, (rule_id, "warning"))
    return {"id": rule_id, "name": rule_id, "shortDescription": {"text": summary},
            "help": {"text": f"{summary}. See docs/review.md."},
            "defaultConfiguration": {"level": level}}


def sarif(review: Review) -> str:
    """SARIF 2.1.0: one result per finding, on the revision file's line (a finding about the
    whole change is put on the project's alembic.ini: code scanning needs a
    location)."""
    findings = list(review.all_findings())
    rule_ids = list(dict.fromkeys(f.rule for f in findings))
    results = []
    for f in findings:
        text = f.message + (f" Fix: {f.fix}" if f.fix else "")
        results.append({
            "ruleId": f.rule,
            "ruleIndex": rule_ids.index(f.rule),
            "level": f.level.value,
            "message": {"text": text},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": f.path or review.ini_path, "uriBaseId": "%SRCROOT%"},
                "region": {"startLine": f.line or 1}}}],
        })
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "dsql-migrate", "version": __version__,
                                "rules": [_rule_meta(r) for r in rule_ids]}},
            "automationDetails": {"id": "dsql-migrate/review"},
            "results": results,
        }],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


FORMATS: dict[str, Callable[[Review], str]] = {
    "markdown": markdown,
    "json": to_json,
    "sarif": sarif,
}


def render(review: Review, fmt: str) -> str:
    return FORMATS[fmt](review)


__all__ = ["COMMENT_LIMIT", "FORMATS", "RULES", "as_dict", "markdown", "render", "sarif",
           "to_json"]
