"""The converted script (with a header and a comment above every change) and the report."""

from __future__ import annotations

import json
from collections.abc import Sequence

from .report import Action, Change, Conversion

REPORT_FORMAT = "dsql-migrate.convert/1"

_ORDER = (Action.FLAGGED, Action.REMOVED, Action.CHANGED, Action.CONVERTED, Action.SPLIT)


def script(conversion: Conversion, *, sources: Sequence[str], dialect: str,
           profile: str) -> str:
    """The DSQL script: a header, then each statement (``;``-terminated, a COPY's data block
    after it), with the report's comment lines above the statements they concern."""
    counts = conversion.summary()
    head = [
        f"-- Converted by `dsql-migrate convert --from {dialect} --profile {profile}` from "
        + ", ".join(sources),
        "-- " + ", ".join(f"{n} {a}" for a, n in counts.items() if n),
        "-- Read every 'changed', 'removed' and 'flagged' comment below (or the --report) "
        "before running it:",
        "--   dsql-migrate sql -f THIS_FILE",
        "",
    ]
    parts = ["\n".join(head)]
    for index, sql in enumerate(conversion.statements):
        for line in conversion.notes.get(index, ()):
            parts.append(line + "\n")
        parts.append(sql + ";\n")
        if index in conversion.data:
            parts.append(conversion.data[index])
        parts.append("\n")
    for line in conversion.trailer:
        parts.append(line + "\n")
    return "".join(parts)


def report_json(conversion: Conversion, *, sources: Sequence[str], dialect: str,
                profile: str, output: str | None) -> str:
    doc = {
        "format": REPORT_FORMAT,
        "from": dialect,
        "profile": profile,
        "sources": list(sources),
        "output": output,
        "summary": conversion.summary(),
        "changes": [c.as_dict() for c in _sorted(conversion.changes)],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def report_markdown(conversion: Conversion, *, sources: Sequence[str], dialect: str,
                    profile: str, output: str | None) -> str:
    counts = conversion.summary()
    lines = [f"# Conversion report: {', '.join(sources)}", "",
             f"From {dialect} to DSQL, profile `{profile}`"
             + (f"; output `{output}`" if output else "") + ".", "",
             "| action | statements |", "|---|---|"]
    lines += [f"| {a} | {n} |" for a, n in counts.items()]
    for action in _ORDER:
        entries = [c for c in conversion.changes if c.action is action]
        if not entries:
            continue
        lines += ["", f"## {action.value} ({len(entries)})", "",
                  "| where | statement | what | follow-up |", "|---|---|---|---|"]
        lines += [f"| {c.source}:{c.line} | `{_cell(c.statement)}` | {_cell(c.message)}"
                  + (f" ({c.rule})" if c.rule else "") + f" | {_cell(c.follow_up or '')} |"
                  for c in entries]
    return "\n".join(lines) + "\n"


def summary_text(conversion: Conversion) -> str:
    """One line per flagged entry, then the counts (for stderr when no report is asked for)."""
    lines = [f"{c.source}:{c.line}: flagged: {c.message}" + (f" ({c.follow_up})"
                                                             if c.follow_up else "")
             for c in conversion.flagged]
    counts = conversion.summary()
    lines.append("converted: " + ", ".join(f"{n} {a}" for a, n in counts.items() if n))
    return "\n".join(lines)


def _sorted(changes: list[Change]) -> list[Change]:
    return sorted(changes, key=lambda c: (c.source, c.line))


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
