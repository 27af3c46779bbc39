"""Render ``docs/lint-rules.md`` from the rules' docstrings.

    python -m dsql_migrate.lint.docs docs/lint-rules.md

A test checks that the committed page equals :func:`render_rules_markdown`, so a rule's
documentation is edited in its docstring only.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

from ..profiles import PROFILES
from .core import REGISTRY, Rule
from .engine import LintSettings  # noqa: F401  (importing the engine registers every rule)

HEADER = """# Lint rules

<!-- Generated from the rule docstrings by `python -m dsql_migrate.lint.docs
docs/lint-rules.md`; edit the docstrings in src/dsql_migrate/lint/rules/, not this file. -->

Every rule `dsql-migrate lint` knows, grouped by family. Severity `error` means DSQL rejects the
statement; `warning` means it is accepted but likely to fail or misbehave at run time. Rule ids
are stable; where AWS's `dsql-lint` has a rule for the same problem the id is the same.
See [the linter guide](lint.md) for usage, suppressions and configuration.
"""


def _profiles(r: Rule) -> str:
    names = [name for name, profile in PROFILES.items() if r.active_in(profile)]
    return ", ".join(f"`{n}`" for n in sorted(names))


def _fix(r: Rule) -> str:
    if r.fix is None:
        return "no (manual rewrite)"
    return "yes, `--fix` (see below)"


def render_rules_markdown() -> str:
    rules = list(REGISTRY)
    families: dict[str, list[Rule]] = {}
    for r in rules:
        families.setdefault(r.family, []).append(r)
    out = [HEADER, "| Rule | Severity | Profiles | Default | Summary |",
           "|---|---|---|---|---|"]
    for r in rules:
        default = "on" if r.default_enabled else "opt-in"
        out.append(f"| [`{r.id}`](#{r.id}) | {r.severity.value} | {_profiles(r)} | {default} | "
                   f"{r.summary} |")
    for family, members in families.items():
        out.append(f"\n## {family.replace('_', ' ').capitalize()}\n")
        for r in members:
            body = inspect.cleandoc(r.doc).split("\n", 1)
            out.append(f"### {r.id}\n")
            out.append(f"**{body[0].strip()}**\n")
            out.append(f"- severity: `{r.severity.value}`; profiles: {_profiles(r)}; "
                       f"{'enabled by default' if r.default_enabled else 'opt-in'}; "
                       f"automatic fix: {_fix(r)}\n")
            if len(body) > 1 and body[1].strip():
                out.append(body[1].strip() + "\n")
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m dsql_migrate.lint.docs OUTPUT.md\n")
        return 2
    Path(argv[0]).write_text(render_rules_markdown(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
