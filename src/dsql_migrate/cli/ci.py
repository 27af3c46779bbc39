"""``dsql-migrate ci ...``: the glue a CI job needs (the sticky PR comment, the revision hook)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from ..errors import ConfigError
from ._common import AppContext, note


@click.group("ci")
def ci() -> None:
    """CI glue: the sticky pull-request comment and the offline revision check (docs/ci.md)."""


@ci.command("comment")
@click.option("--file", "body_file", required=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Markdown to post (the review).")
@click.option("--marker", default=None,
              help="Hidden marker that finds the comment again (default: "
              "<!-- dsql-migrate-review -->).")
@click.option("--repo", envvar="GITHUB_REPOSITORY", help="owner/name (default: "
              "$GITHUB_REPOSITORY).")
@click.option("--pr", "number", type=int, default=None,
              help="Pull request number (default: from $GITHUB_EVENT_PATH).")
@click.option("--api-url", envvar="GITHUB_API_URL", default=None,
              help="GitHub API URL (default: $GITHUB_API_URL, else https://api.github.com).")
def comment(body_file: Path, marker: str | None, repo: str | None, number: int | None,
            api_url: str | None) -> None:
    """Create or update the one pull-request comment holding the marker (token: $GITHUB_TOKEN)."""
    from ..ci.github import DEFAULT_API_URL, DEFAULT_MARKER, GitHubClient, PullRequest

    body = body_file.read_text(encoding="utf-8")
    if not repo:
        raise ConfigError("no repository", hint="give --repo owner/name or set "
                          "GITHUB_REPOSITORY")
    pr = PullRequest(repo, number if number is not None else _event_pull_request())
    # the token only ever comes from the environment: a flag would show in process lists
    client = GitHubClient(os.environ.get("GITHUB_TOKEN", ""), api_url or DEFAULT_API_URL)
    result = client.upsert_comment(pr, body, marker or DEFAULT_MARKER)
    note(f"{result.action} the review comment on {pr.repo}#{pr.number}: {result.url}")
    click.echo(result.url)  # stdout: the URL alone, for a workflow's outputs


def _event_pull_request() -> int:
    from ..ci.github import pull_request_from_event

    path = os.environ.get("GITHUB_EVENT_PATH")
    if not path:
        raise ConfigError("no pull request number",
                          hint="give --pr N, or run it in a pull_request workflow")
    try:
        event = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read the workflow event {path}: {exc}") from None
    number = pull_request_from_event(event) if isinstance(event, dict) else None
    if number is None:
        raise ConfigError("the workflow event is not about a pull request",
                          hint="run the review on: pull_request, or give --pr N")
    return number


@ci.command("lint-revisions")
@click.argument("paths", nargs=-1, type=click.Path(dir_okay=False, exists=True,
                                                    path_type=Path))
@click.option("--profile", "profile_name",
              help="Capability profile: current or classic (default: config, else current).")
@click.pass_obj
def lint_revisions(app: AppContext, paths: tuple[Path, ...], profile_name: str | None) -> None:
    """Check Alembic revision files offline: the ops they record, as upgrade would expand them."""
    # the body is shared with the fast path (cli/_fast.py), which runs it without click
    from ._lintcmd import run_lint_revisions

    raise SystemExit(run_lint_revisions(app.config_path, paths, profile_name))
