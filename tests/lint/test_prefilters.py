"""The speed-ups (keyword prefilters, profile gating) must never change a result."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsql_migrate.lint import REGISTRY, LintSettings, lint_script
from dsql_migrate.profiles import CLASSIC, CURRENT

from .test_never_crash import FRAGMENTS, STATEMENTS

CASES = sorted((Path(__file__).parent / "cases").glob("*/*.sql"))


@contextmanager
def no_prefilters() -> Iterator[None]:
    saved = {r.id: r.prefilter for r in REGISTRY}
    try:
        for r in REGISTRY:
            r.prefilter = None
        yield
    finally:
        for r in REGISTRY:
            r.prefilter = saved[r.id]


def summary(script: str, classic: bool) -> list[tuple[str, int, int, str]]:
    s = LintSettings.build(CLASSIC if classic else CURRENT,
                           enable=("tenant_id_missing", "tenant_id_index_order"))
    return [(d.rule, d.line, d.column, d.message) for d in lint_script(script, s).diagnostics]


def same_with_and_without_prefilters(script: str, classic: bool) -> None:
    fast = summary(script, classic)
    with no_prefilters():
        slow = summary(script, classic)
    assert fast == slow


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_cases_unchanged_by_prefilters(path: Path) -> None:
    script = path.read_text(encoding="utf-8").partition("-- @expect")[0]
    same_with_and_without_prefilters(script, classic=False)
    same_with_and_without_prefilters(script, classic=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(picks=st.lists(st.sampled_from(STATEMENTS + FRAGMENTS), max_size=15),
       classic=st.booleans())
def test_random_scripts_unchanged_by_prefilters(picks: list[str], classic: bool) -> None:
    same_with_and_without_prefilters(";\n".join(picks), classic)
