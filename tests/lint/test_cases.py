"""Data-driven rule tests: every ``cases/<profile>/*.sql`` file is one case.

A case file is the input SQL (a ``-- @enable: rule, rule`` comment in it turns on opt-in
rules), then ``-- @expect`` followed by one ``-- rule_id status
[@line:col]`` line per expected diagnostic (order does not matter; ``advisory``: a warning on
a statement DSQL accepts, with nothing to fix, so never "unfixable"), then optionally
``-- @fixed`` followed by the exact output of ``--fix``. Without ``@fixed`` the fix must leave
the input unchanged. Set ``DSQL_MIGRATE_UPDATE_CASES=1`` to (re)write the ``@fixed`` sections
from the current output, then review the diff.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from dsql_migrate.lint import FixStatus, LintSettings, fix_script, lint_script
from dsql_migrate.profiles import get_profile
from dsql_migrate.sql import parse_script

CASES = Path(__file__).parent / "cases"
_EXPECT = re.compile(r"--\s*(\w+)\s+(fixed_with_warning|fixed|unfixable|advisory)"
                     r"(?:\s+@(\d+):(\d+))?\s*$")
_DATA = ("InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt", "CopyStmt")


@dataclass
class Case:
    path: Path
    profile: str
    sql: str
    expected: list[tuple[str, str, tuple[int, int] | None]]
    fixed: str | None
    enable: tuple[str, ...] = ()


def load(path: Path) -> Case:
    text = path.read_text(encoding="utf-8")
    sql, _, rest = text.partition("-- @expect\n")
    expect_part, _, fixed = rest.partition("-- @fixed\n")
    expected = []
    for line in expect_part.splitlines():
        if not line.strip():
            continue
        m = _EXPECT.match(line)
        assert m, f"{path}: bad expectation line {line!r}"
        pos = (int(m.group(3)), int(m.group(4))) if m.group(3) else None
        expected.append((m.group(1), m.group(2), pos))
    m = re.search(r"^-- @enable:(.*)$", sql, re.MULTILINE)
    enable = tuple(x.strip() for x in m.group(1).split(",")) if m else ()
    return Case(path, path.parent.name, sql, expected, fixed if "-- @fixed\n" in rest else None,
                enable)


def all_cases() -> list[Case]:
    return [load(p) for p in sorted(CASES.glob("*/*.sql"))]


def settings_for(case: Case) -> LintSettings:
    return LintSettings.build(get_profile(case.profile), enable=case.enable)


@pytest.mark.parametrize("case", all_cases(), ids=lambda c: f"{c.profile}/{c.path.stem}")
def test_case(case: Case) -> None:
    settings = settings_for(case)
    result = fix_script(case.sql, settings, str(case.path))
    got = Counter((d.rule, d.fix_result.status.value if d.fix_result else "advisory")
                  for d in result.diagnostics)
    want = Counter((rule, status) for rule, status, _ in case.expected)
    assert got == want, "\n".join(
        f"{d.line}:{d.column} {d.rule} "
        f"{d.fix_result.status.value if d.fix_result else 'advisory'}"
        for d in result.diagnostics)
    for rule, _, pos in case.expected:
        if pos is not None:
            positions = {(d.line, d.column) for d in result.diagnostics if d.rule == rule}
            assert pos in positions, f"{rule}: expected at {pos}, found at {sorted(positions)}"

    assert result.fixed_sql is not None
    if os.environ.get("DSQL_MIGRATE_UPDATE_CASES") and result.fixed_sql != case.sql:
        head = case.path.read_text(encoding="utf-8").partition("-- @fixed\n")[0]
        case.path.write_text(head + "-- @fixed\n" + result.fixed_sql, encoding="utf-8")
        return
    expected_fixed = case.sql if case.fixed is None else case.fixed
    assert result.fixed_sql == expected_fixed


@pytest.mark.parametrize("case", all_cases(), ids=lambda c: f"{c.profile}/{c.path.stem}")
def test_fixed_output_is_clean_except_unfixable(case: Case) -> None:
    """After --fix only what was reported unfixable may remain, and no data statement is lost."""
    settings = settings_for(case)
    result = fix_script(case.sql, settings)
    assert result.fixed_sql is not None
    unfixable = {d.rule for d in result.diagnostics
                 if d.fix_result is None or d.fix_result.status is FixStatus.UNFIXABLE}
    again = lint_script(result.fixed_sql, settings)
    leftover = {d.rule for d in again.diagnostics} - unfixable
    assert not leftover, [f"{d.line}:{d.column} {d.rule}: {d.message}"
                          for d in again.diagnostics if d.rule in leftover]
    # every data statement of the input is still in the output, word for word
    for p in parse_script(case.sql):
        if p.node_type in _DATA:
            assert p.text in result.fixed_sql, f"data statement lost: {p.text}"
    # fixing is idempotent
    assert fix_script(result.fixed_sql, settings).fixed_sql == result.fixed_sql
