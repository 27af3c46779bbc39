"""Where the base comes from, and the clear errors when there is none (no database needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from review_project import git, make_repo, review, write_revision

from dsql_migrate.review.git import GitError, resolve_base


def test_outside_a_git_repository_is_a_usage_error(workdir: Path) -> None:
    result = review()
    assert result.exit_code == 2, result.output
    assert "alembic.ini: no such file" in result.stderr
    from dsql_migrate.cli.migrations import scaffold

    scaffold(workdir, "migrations")
    result = review()
    assert result.exit_code == 2, result.output
    assert "is not in a git repository" in result.stderr
    assert "Traceback" not in result.output


def test_an_unknown_base_ref_is_a_usage_error(workdir: Path) -> None:
    make_repo(workdir)
    result = review("--base", "no-such-branch")
    assert result.exit_code == 2, result.output
    assert "--base no-such-branch: not a commit" in result.stderr
    assert "fetch-depth: 0" in result.stderr


def test_the_default_base_is_the_merge_base_with_the_default_branch(workdir: Path) -> None:
    make_repo(workdir, branch="master")
    base_commit = git(workdir, "rev-parse", "master")
    (workdir / "notes.txt").write_text("later\n")
    git(workdir, "add", "notes.txt")
    git(workdir, "commit", "-q", "-m", "on the change branch")
    base = resolve_base(workdir, None)
    assert base.commit == base_commit
    assert base.name == "merge base of HEAD and master"
    assert resolve_base(workdir, "HEAD~1").commit == base_commit


def test_no_default_branch_asks_for_base(workdir: Path) -> None:
    make_repo(workdir, branch="trunk")
    with pytest.raises(GitError, match="no default branch") as raised:
        resolve_base(workdir, None)
    assert raised.value.hint is not None and "--base REF" in raised.value.hint


def test_nothing_new_is_a_clean_review_without_an_emulator(workdir: Path) -> None:
    make_repo(workdir)
    result = review("--base", "main")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("<!-- dsql-migrate-review -->\n")
    assert "no new or edited revisions" in result.stdout
    assert not (workdir / ".dsql-migrate").exists()
    for name, key in (("review.sarif", "runs"), ("review.json", "revisions")):
        written = review("--base", "main", "-o", name)
        assert written.exit_code == 0, written.output
        assert key in json.loads((workdir / name).read_text())


def test_an_edited_applied_revision_is_flagged(workdir: Path) -> None:
    first = make_repo(workdir)
    first.write_text(first.read_text().replace('sa.Column("qty", sa.Integer)',
                                               'sa.Column("qty", sa.BigInteger)'))
    result = review("--format", "sarif")
    assert result.exit_code == 0, result.output
    sarif = json.loads(result.stdout)
    (found,) = sarif["runs"][0]["results"]
    assert found["ruleId"] == "edited-applied-revision"
    assert found["level"] == "warning"
    location = found["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "migrations/versions/0001_items.py"
    assert "will not run it again" in found["message"]["text"]
    markdown = review().stdout
    assert "| `0001` items | edited |" in markdown
    assert "⚠️ edited after it was applied" in markdown


def test_a_base_whose_heads_the_work_tree_lacks_says_to_merge_or_use_the_merge_base(
        workdir: Path) -> None:
    # found by review: '--base main' after main moved on failed with Alembic's bare "Can't
    # locate revision identified by '0003'" (exit 1, no review)
    make_repo(workdir)
    git(workdir, "checkout", "-q", "main")
    write_revision(workdir, "0003", "0001", "    pass\n", "other")
    git(workdir, "add", "-A")
    git(workdir, "commit", "-q", "-m", "other")
    git(workdir, "checkout", "-q", "change")
    write_revision(workdir, "0002", "0001", "    pass\n", "mine")
    result = review("--base", "main")
    assert result.exit_code == 2, result.output
    assert "--base main has revision 0003, which this work tree does not have" in result.stderr
    assert "git merge-base HEAD main" in result.stderr
    assert "Traceback" not in result.output and "Can't locate" not in result.output


def test_a_change_that_removes_the_base_head_is_a_usage_error_that_says_so(
        workdir: Path) -> None:
    first = make_repo(workdir)
    first.unlink()
    result = review()
    assert result.exit_code == 2, result.output
    assert ("the base (merge base of HEAD and main) has revision 0001, which this work tree "
            "does not have") in result.stderr
    assert "Traceback" not in result.output
