"""The sticky review comment against a fake GitHub API (tests/ci/conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dsql_migrate.ci.github import (
    DEFAULT_MARKER,
    GitHubClient,
    GitHubError,
    GitHubPermissionError,
    PullRequest,
    next_link,
    pull_request_from_event,
)
from dsql_migrate.cli import main
from dsql_migrate.errors import ConfigError

REPO = "acme/shop"
PR = PullRequest(REPO, 7)


def _client(fake: Any) -> GitHubClient:
    return GitHubClient(fake.token, fake.url)


def test_creates_the_comment_when_none_has_the_marker(fake_github: Any) -> None:
    fake_github.add(REPO, 7, "LGTM")
    result = _client(fake_github).upsert_comment(PR, "## review\nall good")
    assert result.action == "created"
    bodies = [c["body"] for c in fake_github.comments[f"{REPO}#7"]]
    assert bodies == ["LGTM", f"{DEFAULT_MARKER}\n## review\nall good"]
    assert result.url.endswith(f"#issuecomment-{result.id}")


def test_updates_the_one_comment_holding_the_marker(fake_github: Any) -> None:
    client = _client(fake_github)
    first = client.upsert_comment(PR, f"{DEFAULT_MARKER}\nfirst push")
    fake_github.add(REPO, 7, "a human reply")
    second = client.upsert_comment(PR, f"{DEFAULT_MARKER}\nsecond push")
    assert (first.action, second.action) == ("created", "updated")
    assert second.id == first.id
    bodies = [c["body"] for c in fake_github.comments[f"{REPO}#7"]]
    assert bodies == [f"{DEFAULT_MARKER}\nsecond push", "a human reply"]
    assert [m for m, _, _ in fake_github.requests] == ["GET", "POST", "GET", "PATCH"]


def test_finds_the_marker_on_a_later_page(fake_github: Any) -> None:
    fake_github.page_size = 2
    for n in range(5):
        fake_github.add(REPO, 7, f"chatter {n}")
    marked = fake_github.add(REPO, 7, f"{DEFAULT_MARKER}\nold review")
    result = _client(fake_github).upsert_comment(PR, "new review")
    assert (result.action, result.id) == ("updated", marked)
    gets = [path for method, path, _ in fake_github.requests if method == "GET"]
    assert len(gets) == 3  # pages 1, 2 and 3 (the Link header's rel="next")
    assert gets[1].endswith("page=2") and gets[2].endswith("page=3")
    assert len(fake_github.comments[f"{REPO}#7"]) == 6


def test_walks_every_page_before_creating(fake_github: Any) -> None:
    fake_github.page_size = 2
    for n in range(5):
        fake_github.add(REPO, 7, f"chatter {n}")
    result = _client(fake_github).upsert_comment(PR, "review")
    assert result.action == "created"
    assert sum(method == "GET" for method, _, _ in fake_github.requests) == 3


def test_a_different_marker_is_a_different_comment(fake_github: Any) -> None:
    client = _client(fake_github)
    client.upsert_comment(PR, "review of app A", marker="<!-- review-a -->")
    client.upsert_comment(PR, "review of app B", marker="<!-- review-b -->")
    assert len(fake_github.comments[f"{REPO}#7"]) == 2


def test_permission_denied_is_a_clear_error_without_the_token(fake_github: Any) -> None:
    fake_github.deny_writes = True
    with pytest.raises(GitHubPermissionError) as caught:
        _client(fake_github).upsert_comment(PR, "review")
    error = caught.value
    assert error.status == 403
    assert "could not create the review comment: GitHub answered 403" in error.message
    assert "Resource not accessible by integration" in error.message
    assert error.hint is not None and "pull-requests: write" in error.hint
    assert fake_github.token not in str(error)
    assert fake_github.token not in repr(_client(fake_github))


def test_bad_credentials(fake_github: Any) -> None:
    with pytest.raises(GitHubPermissionError, match="GitHub answered 401 \\(Bad credentials\\)"):
        GitHubClient("wrong", fake_github.url).upsert_comment(PR, "review")


def test_unreachable_api_is_a_clear_error() -> None:
    client = GitHubClient("t", "http://127.0.0.1:9", timeout=2)
    with pytest.raises(GitHubError, match="unreachable"):
        client.upsert_comment(PR, "review")


def test_a_next_link_to_another_host_is_not_followed(fake_github: Any) -> None:
    client = _client(fake_github)
    with pytest.raises(GitHubError, match="leaves"):
        client._get_page("https://elsewhere.example/repos/acme/shop/issues/7/comments")


def test_long_reviews_are_cut_to_what_github_accepts(fake_github: Any) -> None:
    _client(fake_github).upsert_comment(PR, "x" * 70_000)
    body = fake_github.comments[f"{REPO}#7"][0]["body"]
    assert len(body) <= 65_536 and body.startswith(DEFAULT_MARKER)
    assert "the full review is in the job's log" in body


@pytest.mark.parametrize(("header", "expected"), [
    (None, None),
    ('<https://api.github.com/x?page=2>; rel="next", <https://api.github.com/x?page=5>; '
     'rel="last"', "https://api.github.com/x?page=2"),
    ('<https://api.github.com/x?page=1>; rel="prev", <https://api.github.com/x?page=1>; '
     'rel="first"', None),
])
def test_next_link(header: str | None, expected: str | None) -> None:
    assert next_link(header) == expected


def test_bad_inputs_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="no GitHub token"):
        GitHubClient("")
    with pytest.raises(ConfigError, match="not owner/name"):
        PullRequest("acme", 1)
    with pytest.raises(ConfigError, match="not an http"):
        GitHubClient("t", "ftp://x")


def test_pull_request_number_from_the_event() -> None:
    assert pull_request_from_event({"pull_request": {"number": 12}}) == 12
    assert pull_request_from_event({"number": 3}) == 3
    assert pull_request_from_event({"push": {}}) is None


# -- the command ---------------------------------------------------------------------------------


def _env(fake: Any, tmp_path: Path, number: int = 7) -> dict[str, str]:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": number}}))
    return {"GITHUB_TOKEN": fake.token, "GITHUB_REPOSITORY": REPO, "GITHUB_API_URL": fake.url,
            "GITHUB_EVENT_PATH": str(event)}


def test_ci_comment_creates_then_updates(fake_github: Any, tmp_path: Path) -> None:
    review = tmp_path / "review.md"
    review.write_text(f"{DEFAULT_MARKER}\n| revision | steps |\n")
    env = _env(fake_github, tmp_path)
    runner = CliRunner()
    first = runner.invoke(main, ["ci", "comment", "--file", str(review)], env=env)
    second = runner.invoke(main, ["ci", "comment", "--file", str(review)], env=env)
    assert (first.exit_code, second.exit_code) == (0, 0), first.output + second.output
    assert "created the review comment on acme/shop#7" in first.stderr
    assert "updated the review comment on acme/shop#7" in second.stderr
    assert len(fake_github.comments[f"{REPO}#7"]) == 1
    assert first.stdout.strip() == second.stdout.strip() == fake_github.comments[f"{REPO}#7"][0][
        "html_url"]


def test_ci_comment_permission_denied(fake_github: Any, tmp_path: Path) -> None:
    fake_github.deny_writes = True
    review = tmp_path / "review.md"
    review.write_text("review")
    result = CliRunner().invoke(main, ["ci", "comment", "--file", str(review)],
                                env=_env(fake_github, tmp_path))
    assert result.exit_code == 1
    assert "error: could not create the review comment: GitHub answered 403" in result.stderr
    assert "pull-requests: write" in result.stderr
    assert "Traceback" not in result.output
    assert fake_github.token not in result.output


def test_ci_comment_without_a_pull_request(fake_github: Any, tmp_path: Path) -> None:
    review = tmp_path / "review.md"
    review.write_text("review")
    env = _env(fake_github, tmp_path)
    Path(env["GITHUB_EVENT_PATH"]).write_text(json.dumps({"ref": "refs/heads/main"}))
    result = CliRunner().invoke(main, ["ci", "comment", "--file", str(review)], env=env)
    assert result.exit_code == 2
    assert "not about a pull request" in result.stderr
    no_token = {**env, "GITHUB_TOKEN": ""}
    result = CliRunner().invoke(main, ["ci", "comment", "--file", str(review), "--pr", "3"],
                                env=no_token)
    assert result.exit_code == 2 and "no GitHub token" in result.stderr
