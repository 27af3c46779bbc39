"""``format_json`` writes its text directly (issue 18: a worst-case report is larger than the
script): it must be exactly ``json.dumps`` of the report's dict, whatever the strings hold."""

from __future__ import annotations

import json

import pytest

from dsql_migrate.lint import LintSettings, fix_script, lint_script
from dsql_migrate.lint.core import Diagnostic, FixResult, FixStatus, Severity
from dsql_migrate.lint.engine import LintResult
from dsql_migrate.lint.report import _json_doc, format_json
from dsql_migrate.profiles import CURRENT

SCRIPT = """\
CREATE TABLE "ünïcode ""q"" t" (id serial PRIMARY KEY, tags text[], note text COLLATE "C");
CREATE INDEX ix ON "ünïcode ""q"" t" (note DESC);
-- dsql-migrate: ignore no_such_rule
TRUNCATE t;
SELEC 'a\\b' , E'\\t';
CREATE SEQUENCE s CACHE 10;
BEGIN; CREATE TABLE e (a int); INSERT INTO e VALUES (1); COMMIT;
"""
ODD = "tab\there \"quoted\" back\\slash new\nline \x01 ctl \u2028 sep é 😀"


def _same(results: list[LintResult], fixing: bool, outputs: dict[str, str] | None = None
          ) -> None:
    fast = format_json(results, fixing=fixing, profile="current", outputs=outputs)
    doc = _json_doc(results, fixing=fixing, profile="current", outputs=outputs)
    assert fast == json.dumps(doc, ensure_ascii=False) + "\n"
    assert json.loads(fast) == doc


@pytest.mark.parametrize("fixing", [False, True])
def test_a_report_is_json_dumps_of_its_dict(fixing: bool) -> None:
    settings = LintSettings.build(CURRENT)
    run = fix_script if fixing else lint_script
    results = [run(SCRIPT, settings, "a b/ü.sql"), run("SELECT 1;", settings, "<stdin>"),
               run(SCRIPT * 3, settings, 'we"ird\\name.sql')]
    assert sum(len(r.diagnostics) for r in results) > 10
    _same(results, fixing, outputs={"a b/ü.sql": "out\n.sql"} if fixing else None)


def test_odd_strings_and_missing_values() -> None:
    diagnostics = [
        Diagnostic(ODD, Severity.WARNING, 1, 2, ODD, None, 0, ODD, None, ODD),
        Diagnostic("r", Severity.ERROR, 10**12, 0, "", ODD, 3, "",
                   FixResult(FixStatus.FIXED_WITH_WARNING, None), "p"),
        Diagnostic("r", Severity.ERROR, 1, 1, "m", "", 3, "x",
                   FixResult(FixStatus.UNFIXABLE, ODD), "p"),
    ]
    _same([LintResult(ODD, diagnostics, [], ODD)], fixing=True, outputs={ODD: ODD})
    _same([LintResult(ODD, diagnostics, [], None)], fixing=False)
    _same([LintResult("empty.sql", [], [])], fixing=False)
    _same([], fixing=False)
