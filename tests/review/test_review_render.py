"""The renderers on reviews built by hand (no database)."""

from __future__ import annotations

import json

from dsql_migrate.errors import ExitCode
from dsql_migrate.plan import Plan, Step, StepKind
from dsql_migrate.review import MARKER, render
from dsql_migrate.review.model import Compilation, Finding, Level, Review, RevisionReview
from dsql_migrate.review.render import COMMENT_LIMIT


def _review(*, statement: str = "DROP TABLE t__old", approve: bool = False) -> Review:
    plan = Plan(profile="current", steps=(
        Step(id=1, kind=StepKind.DDL, summary="drop backup t__old", sql=(statement,),
             table="t", destructive=True),))
    revision = RevisionReview(revision="0002", doc="drop | it", path="m/versions/0002_x.py",
                              status="new", upgrade_line=17,
                              compilations=[Compilation("local emulator at the base", plan)])
    revision.findings.append(Finding("destructive", Level.ERROR, "step 1 is destructive",
                                     revision.path, 17, fix="approve it"))
    return Review(base="main", base_commit="f" * 40, base_heads=("0001",), profile="current",
                  revisions=[revision], approve_flag=approve, ini_path="alembic.ini")


def test_exit_codes_follow_the_project_table() -> None:
    assert _review().exit_code() is ExitCode.REFUSED
    assert _review(approve=True).exit_code() is ExitCode.OK
    refused = _review()
    refused.revisions[0].compilations[0].refused = "DSQL cannot ..."
    assert refused.exit_code() is ExitCode.FAILED


def test_markdown_starts_with_the_marker_and_escapes_table_cells() -> None:
    text = render(_review(), "markdown")
    assert text.splitlines()[0] == MARKER
    assert "| `0002` drop \\| it | new | 1 | 1 |" in text
    assert text.count("<details>") == text.count("</details>") == 3  # revision, plan, step


def test_a_review_too_long_for_a_comment_leaves_the_sql_out() -> None:
    huge = "DROP TABLE t__old /* " + "x" * COMMENT_LIMIT + " */"
    text = render(_review(statement=huge), "markdown")
    assert len(text) < COMMENT_LIMIT
    assert "Plan and SQL" not in text and "drop backup t__old" in text
    assert huge in json.loads(render(_review(statement=huge), "json"))["revisions"][0][
        "compilations"][0]["plan"]["steps"][0]["sql"][0]


def test_sarif_puts_a_finding_without_a_file_on_the_ini() -> None:
    review = _review()
    review.findings.append(Finding("target-not-at-base", Level.WARNING, "behind"))
    run = json.loads(render(review, "sarif"))["runs"][0]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert rules == ["target-not-at-base", "destructive"]
    where = [(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
              r["locations"][0]["physicalLocation"]["region"]["startLine"])
             for r in run["results"]]
    assert where == [("target-not-at-base", "alembic.ini", 1),
                     ("destructive", "m/versions/0002_x.py", 17)]


def test_a_review_too_long_even_without_sql_keeps_its_summary() -> None:
    review = _review()
    first = review.revisions[0]
    for number in range(3, 2000):
        review.revisions.append(RevisionReview(
            revision=f"{number:04}", doc="x" * 40, path=f"m/versions/{number:04}.py",
            status="new", compilations=first.compilations, findings=first.findings))
    text = render(review, "markdown")
    assert len(text) <= COMMENT_LIMIT + 200
    assert text.startswith(MARKER) and "| `0002` drop" in text
    assert text.endswith("see the review's JSON (--format json)._\n")


def test_a_target_without_statistics_says_so_instead_of_asking_for_url() -> None:
    # found by review: with --url against a table never analyzed (reltuples -1) the review
    # said "review with --url for the target's table sizes", which --url already was
    from dsql_migrate.plan import Batch, Estimate
    copy = Step(id=1, kind=StepKind.COPY, summary="copy t into t__new", sql=("INSERT ...",),
                table="t", batch=Batch(table="t", key=("id",), key_types=("bigint",),
                                       size=2995, bounds="SELECT ..."),
                estimate=Estimate(rows=None, batches=1))
    swap = Step(id=2, kind=StepKind.SWAP, summary="swap", sql=("ALTER ...",), table="t")
    plan = Plan(profile="current", steps=(copy, swap))
    review = _review()
    review.revisions[0].compilations.append(Compilation("postgresql://admin@db/postgres", plan))
    text = render(review, "markdown")
    assert "review with --url" not in text
    assert "`t`: rows unknown: the target has no statistics for t (run ANALYZE t" in text
