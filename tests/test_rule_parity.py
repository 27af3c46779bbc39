"""The linter and the emulator decide from one table (dsql_migrate.forms), so they must agree.

Every statement we know a verdict for goes through both, per profile:

- the SQL examples in the lint rules' docstrings (docs/lint-rules.md),
- the emulator's statement cases (tests/local/cases/*.cases, run against the database by
  tests/local/test_statements.py, whose expected column is therefore the emulator's verdict),
- the linter's case files (tests/lint/cases/*/*.sql),

and "the emulator's rules reject it" must equal "the linter reports an error for it". The
comparison is with the emulator's rule layer (:func:`dsql_migrate.local.rules.rewrite`, no
database needed); for the emulator's own cases it is also with their database verdict, except
the few listed in ``NEEDS_CATALOG`` whose verdict depends on objects a lone statement cannot show.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from dsql_migrate.forms import FORM_RULES, Form, rejected_forms, rejected_set
from dsql_migrate.lint import REGISTRY, LintSettings, Severity, lint_script
from dsql_migrate.local import rules
from dsql_migrate.profiles import PROFILES, get_profile
from dsql_migrate.sql import parse_script
from dsql_migrate.sql.classify import classify, may_use_forms, needs_tree

TESTS = Path(__file__).parent

#: lint rules that decide by themselves (no form in the table), and what enforces the same rule
#: on the emulator instead of its statement rules
DECIDED_ELSEWHERE = {
    "parse_error": "PostgreSQL's parser",
    "invalid_suppression": "a linter-only comment",
    "identifier_too_long": "PostgreSQL truncates long names (DSQL's behaviour is not verified)",
    "index_volatile_function": "PostgreSQL rejects functions not marked IMMUTABLE in indexes",
    "wait_for_job_select": "PostgreSQL: sys.wait_for_job is a procedure, SELECT fails",
    "multi_ddl_transaction": "the emulator's transaction rules (one DDL per transaction)",
    "mixed_ddl_dml_transaction": "the emulator's transaction rules (no DDL with DML)",
    "wait_for_job_in_transaction": "the emulator's CALL sys.wait_for_job refuses a transaction",
    "too_many_indexes": "the emulator's index count at job submission (a script-wide count)",
    "too_many_schemas": "the emulator's schema limit (a script-wide count)",
    "too_many_tables": "the emulator's table limit (a script-wide count)",
    "comment_on_extension": "PostgreSQL: no such extension, or admin is not its owner (42704)",
    "pg18_function": "PostgreSQL 16: no such function (42883)",
    "virtual_generated_column": "PostgreSQL 16's parser: STORED is required (42601)",
    "extension_type": "PostgreSQL: no such type (42704)",
}

#: emulator cases whose verdict needs the live catalog (the linter sees one statement)
NEEDS_CATALOG = {
    "ALTER TABLE t DROP COLUMN id": "id is the primary key (sql_drop event trigger)",
    "ALTER TABLE t DROP COLUMN id CASCADE": "id is the primary key",
    "ALTER TABLE t DROP CONSTRAINT t_pkey": "t_pkey is the primary key",
    "ALTER TABLE ASYNC t VALIDATE CONSTRAINT missing": "no such constraint (42704 at submit)",
    "ALTER TABLE ASYNC t VALIDATE CONSTRAINT t_b_uq": "a UNIQUE constraint (42809 at submit)",
    "ALTER TABLE ASYNC no_such_table VALIDATE CONSTRAINT t_nv": "no such table (42P01)",
}


@dataclass(frozen=True)
class Sample:
    source: str
    profile: str
    sql: str
    expected_rejected: bool | None = None  # the database verdict, for emulator cases


def _doc_examples() -> list[Sample]:
    out = []
    for r in REGISTRY:
        doc = inspect.cleandoc(r.doc)
        start = doc.find("Example")
        if start < 0:
            continue
        example = doc[start:]
        head = example.split(":", 1)[0]
        profiles = ["classic"] if "(classic)" in head else ["current"] if "(current)" in head \
            else list(PROFILES)
        for span in re.findall(r"`([^`]+)`", example, re.S):
            sql = " ".join(span.split())
            parsed = parse_script(sql)
            if len(parsed) != 1 or parsed[0].node_type is None:
                continue  # a fragment (`id int GENERATED ...`), not a statement
            out.extend(Sample(f"doc:{r.id}", name, sql) for name in profiles)
    return out


def _emulator_cases() -> list[Sample]:
    out = []
    for path in sorted((TESTS / "local" / "cases").glob("*.cases")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            profile, expected, sql = (part.strip() for part in line.split("|", 2))
            profile = profile.partition("@pg")[0]
            for name in ("current", "classic") if profile == "both" else (profile,):
                out.append(Sample(f"{path.name}:{number}", name, sql, expected != "ok"))
    return out


def _lint_cases() -> list[Sample]:
    out = []
    for path in sorted((TESTS / "lint" / "cases").glob("*/*.sql")):
        script = path.read_text(encoding="utf-8").partition("-- @expect\n")[0]
        for p in parse_script(script):
            if p.node_type not in (None, "EmptyStmt"):
                out.append(Sample(f"{path.parent.name}/{path.name}:{p.line}", path.parent.name,
                                  p.text))
    return out


def _generated() -> list[Sample]:
    """Statements too long for a case line: the column and key-column limits."""
    wide = ", ".join(f"c{i} int" for i in range(256))
    keys = ", ".join(f"c{i}" for i in range(9))
    sqls = [f"CREATE TABLE wide (id bigint PRIMARY KEY, {wide})",
            "CREATE TABLE fits (id bigint PRIMARY KEY, " + ", ".join(
                f"c{i} int" for i in range(254)) + ")",
            f"CREATE TABLE k9 (c0 int, c1 int, c2 int, c3 int, c4 int, c5 int, c6 int, c7 int, "
            f"c8 int, PRIMARY KEY ({keys}))"]
    return [Sample("generated", name, sql) for sql in sqls for name in PROFILES]


SAMPLES = _doc_examples() + _emulator_cases() + _lint_cases() + _generated()


def emulator_rejects(sql: str, profile: str) -> bool:
    result = rules.rewrite(sql, get_profile(profile))
    return result.sql is not None and result.sql.lstrip().startswith("SELECT sys.dsql_error(")


def lint_errors(sql: str, profile: str) -> list[str]:
    settings = LintSettings.build(get_profile(profile))
    return [d.rule for d in lint_script(sql, settings).diagnostics
            if d.severity is Severity.ERROR and d.rule not in DECIDED_ELSEWHERE]


def test_the_corpus_is_not_empty() -> None:
    sources = {s.source.split(":")[0].split("/")[0] for s in SAMPLES}
    assert len(SAMPLES) > 400
    assert any(s.startswith("doc") for s in sources)
    assert any(s.endswith(".cases") for s in sources)


@pytest.mark.parametrize("sample", SAMPLES, ids=[f"{s.source}-{s.profile}" for s in SAMPLES])
def test_linter_and_emulator_agree(sample: Sample) -> None:
    if parse_script(sample.sql)[0].node_type is None:
        pytest.skip("not valid SQL: both leave it to the parser")
    errors = lint_errors(sample.sql, sample.profile)
    rejected = emulator_rejects(sample.sql, sample.profile)
    assert rejected == bool(errors), (
        f"{sample.sql!r} ({sample.profile}): emulator {'rejects' if rejected else 'accepts'}, "
        f"lint errors {errors}")
    if sample.expected_rejected is not None and sample.sql not in NEEDS_CATALOG:
        assert sample.expected_rejected == bool(errors), (
            f"{sample.sql!r} ({sample.profile}): the emulator's database verdict is "
            f"{'rejected' if sample.expected_rejected else 'accepted'}, lint errors {errors}")


@pytest.mark.parametrize("sample", SAMPLES, ids=[f"{s.source}-{s.profile}" for s in SAMPLES])
def test_gates_never_hide_a_rejected_form(sample: Sample) -> None:
    """The linter's cheap gates skip decoding only where classify() finds no rejected form."""
    p = parse_script(sample.sql)[0]
    profile = get_profile(sample.profile)
    if p.node_type is None or p.json is None:
        return
    found = [f.form for f in classify(p.node_type, p.node or {}, profile.limits,
                                      is_async=p.is_async, text=p.text)
             if f.form in rejected_set(profile)]
    if found:
        assert may_use_forms(p.node_type, p.lower), found
        assert needs_tree(p.node_type, p.json, p.lower, rejected_set(profile), profile.limits,
                          is_async=p.is_async), found


def test_every_form_names_a_registered_lint_rule() -> None:
    for form, form_rule in FORM_RULES.items():
        assert form_rule.lint_rule in REGISTRY, (form, form_rule.lint_rule)
        assert REGISTRY.rules[form_rule.lint_rule].severity is Severity.ERROR, form


def test_rules_without_a_form_are_accounted_for() -> None:
    """A new error rule must either report forms of the table or say here what enforces it."""
    deciding = {r.id for r in REGISTRY if not r.forms and r.severity is Severity.ERROR}
    assert deciding == set(DECIDED_ELSEWHERE)


def test_every_form_is_exercised_where_it_is_rejected() -> None:
    """Each form is rejected by at least one sample of a profile that rejects it."""
    seen: set[Form] = set()
    for sample in SAMPLES:
        p = parse_script(sample.sql)[0]
        if p.node_type is None:
            continue
        profile = get_profile(sample.profile)
        seen.update(f.form for f in classify(p.node_type, p.node or {}, profile.limits,
                                             is_async=p.is_async, text=p.text)
                    if f.form in rejected_forms(profile))
    assert set(FORM_RULES) - seen == set()
