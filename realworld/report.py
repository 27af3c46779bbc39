"""The harness's output: a table per history and one summary line each, as text or markdown."""

from __future__ import annotations

from .allowed import reasons
from .run import CLASSES, HistoryResult, RevisionResult


def revision_line(result: RevisionResult, width: int = 0) -> str:
    detail = result.detail
    if result.allowed:
        detail = (detail + " " if detail else "") + "(allowed: " + ", ".join(result.allowed) + ")"
    if width and len(detail) > width:
        detail = detail[:width - 3] + "..."
    return f"{result.revision:<14} {result.classification:<22} {detail}".rstrip()


def summary(result: HistoryResult) -> str:
    h = result.history
    counts = ", ".join(f"{result.count(c)} {c}" for c in CLASSES if result.count(c))
    verdict = "OK" if result.ok else "NOT OK"
    text = (f"{h.name} {h.version}: {len(result.revisions)} revisions: {counts or 'none'}"
            f" in {result.seconds:.0f} s -- {verdict}")
    return text + (f" ({result.error})" if result.error else "")


def text(results: list[HistoryResult], width: int = 160) -> str:
    lines: list[str] = []
    for result in results:
        h = result.history
        lines.append(f"== {h.name} {h.version} ({h.dist}, {h.versions_dir})")
        if result.stock_server:
            lines.append(f"   stock Alembic on: {result.stock_server}")
        if result.setup:
            lines.append(f"   setup: {result.setup}")
        lines.append(f"{'revision':<14} {'classification':<22} detail")
        lines += [revision_line(r, width) for r in result.revisions]
        lines += [f"   allowed {name}: {reason}" for name, reason in _allowed(result)]
        lines.append(summary(result))
        lines.append("")
    return "\n".join(lines)


def markdown(results: list[HistoryResult]) -> str:
    lines: list[str] = []
    for result in results:
        h = result.history
        lines += [f"### {h.name} {h.version}", "", summary(result), ""]
        if result.stock_server:
            lines += [f"Stock Alembic on {result.stock_server}.", ""]
        lines += [f"- allowed `{name}`: {reason}" for name, reason in _allowed(result)]
        lines += ["", "| revision | file | classification | detail |", "|---|---|---|---|"]
        for r in result.revisions:
            detail = r.detail.replace("|", "\\|")
            if r.allowed:
                detail += " (allowed: " + ", ".join(r.allowed) + ")"
            lines.append(f"| `{r.revision}` | {r.file} | {r.classification} | {detail} |")
        lines.append("")
    return "\n".join(lines)


def _allowed(result: HistoryResult) -> list[tuple[str, str]]:
    """The allowed differences the history's revisions used, with their DSQL reasons."""
    return reasons({name for r in result.revisions for name in r.allowed})
