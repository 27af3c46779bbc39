"""The sticky pull-request comment: create it once, update it on every later push.

The comment is found again by a hidden marker (an HTML comment such as
``<!-- dsql-migrate-review -->``) in its body, so a pull request carries one review comment
however often the workflow runs. REST through the standard library's ``urllib``: four calls
(list with ``Link`` pagination, create, update) do not justify a client dependency, and the
action installs nothing besides dsql-migrate.

The token is sent in the ``Authorization`` header and appears in no message, log line or
exception this module produces.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, DsqlMigrateError, ExitCode

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_MARKER = "<!-- dsql-migrate-review -->"
#: a comment body GitHub accepts at most (65,536 characters); longer reviews are cut
MAX_BODY = 65_536
PER_PAGE = 100
#: pages of comments walked at most: 100 pages of 100 comments
MAX_PAGES = 100
TIMEOUT = 30.0

_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


class GitHubError(DsqlMigrateError):
    """The GitHub API answered with an error or could not be reached."""

    exit_code = ExitCode.FAILED

    def __init__(self, message: str, *, status: int | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class GitHubPermissionError(GitHubError):
    """The token may not write the comment (403, or 404 for a repository it cannot see)."""


@dataclass(frozen=True)
class CommentResult:
    action: str  # "created" or "updated"
    id: int
    url: str


@dataclass(frozen=True)
class PullRequest:
    """Where the comment goes: ``owner/name`` and the pull request's number."""

    repo: str
    number: int

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", self.repo):
            raise ConfigError(f"repository {self.repo!r} is not owner/name",
                              hint="give --repo owner/name or set GITHUB_REPOSITORY")
        if self.number < 1:
            raise ConfigError(f"pull request number {self.number} is not a positive number")


class GitHubClient:
    """The few REST calls the sticky comment needs."""

    def __init__(self, token: str, api_url: str = DEFAULT_API_URL, *,
                 timeout: float = TIMEOUT) -> None:
        if not token:
            raise ConfigError("no GitHub token: the comment cannot be posted",
                              hint="set GITHUB_TOKEN (in a workflow: "
                              "env: GITHUB_TOKEN: ${{ github.token }})")
        parsed = urllib.parse.urlsplit(api_url)
        if parsed.scheme not in ("https", "http") or not parsed.netloc:
            raise ConfigError(f"GitHub API URL {api_url!r} is not an http(s) URL",
                              hint="leave it unset (GITHUB_API_URL) for github.com")
        self._token = token
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout

    def __repr__(self) -> str:  # never the token
        return f"GitHubClient(api_url={self.api_url!r})"

    # -- the sticky comment --------------------------------------------------------------------

    def upsert_comment(self, pr: PullRequest, body: str,
                       marker: str = DEFAULT_MARKER) -> CommentResult:
        """Update the pull request's comment holding ``marker``, or create it."""
        if marker not in body:
            body = f"{marker}\n{body}"
        body = _fit(body)
        existing = self.find_comment(pr, marker)
        if existing is None:
            created = self._request("POST", f"/repos/{pr.repo}/issues/{pr.number}/comments",
                                    {"body": body}, doing="create the review comment")
            return CommentResult("created", int(created["id"]), str(created.get("html_url", "")))
        updated = self._request("PATCH", f"/repos/{pr.repo}/issues/comments/{existing}",
                                {"body": body}, doing="update the review comment")
        return CommentResult("updated", int(updated["id"]), str(updated.get("html_url", "")))

    def find_comment(self, pr: PullRequest, marker: str) -> int | None:
        """The id of the first comment whose body holds ``marker``, walking every page."""
        url: str | None = (f"{self.api_url}/repos/{pr.repo}/issues/{pr.number}/comments"
                           f"?per_page={PER_PAGE}")
        for _ in range(MAX_PAGES):
            if url is None:
                return None
            page, link = self._get_page(url)
            for comment in page:
                if isinstance(comment, dict) and marker in str(comment.get("body") or ""):
                    return int(comment["id"])
            url = next_link(link)
        return None

    # -- transport -----------------------------------------------------------------------------

    def _get_page(self, url: str) -> tuple[list[Any], str | None]:
        if not url.startswith(self.api_url + "/"):
            # a Link header pointing elsewhere would carry the token to another host
            raise GitHubError(f"the API's next-page link leaves {self.api_url}: {url}")
        data, headers = self._send("GET", url, None, doing="list the pull request's comments")
        if not isinstance(data, list):
            raise GitHubError("listing the pull request's comments did not return a list")
        return data, headers.get("Link")

    def _request(self, method: str, path: str, payload: dict[str, Any],
                 *, doing: str) -> dict[str, Any]:
        data, _ = self._send(method, self.api_url + path, payload, doing=doing)
        if not isinstance(data, dict) or "id" not in data:
            raise GitHubError(f"could not {doing}: the API's answer has no comment id")
        return data

    def _send(self, method: str, url: str, payload: dict[str, Any] | None,
              *, doing: str) -> tuple[Any, Any]:
        request = urllib.request.Request(url, method=method, headers={
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {self._token}",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "dsql-migrate",
            **({"Content-Type": "application/json"} if payload is not None else {}),
        }, data=json.dumps(payload).encode() if payload is not None else None)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
                return (json.loads(raw) if raw else None), response.headers
        except urllib.error.HTTPError as exc:
            raise _http_error(exc, doing) from None
        except urllib.error.URLError as exc:
            raise GitHubError(f"could not {doing}: {self.api_url} unreachable ({exc.reason})",
                              hint="check GITHUB_API_URL and the runner's network") from None
        except (TimeoutError, OSError) as exc:
            raise GitHubError(f"could not {doing}: {exc}") from None
        except json.JSONDecodeError:
            raise GitHubError(f"could not {doing}: the API answered with something other "
                              "than JSON") from None


def next_link(link: str | None) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header (RFC 8288), or None on the last page."""
    if not link:
        return None
    for part in link.split(","):
        found = _NEXT.search(part)
        if found:
            return found.group(1)
    return None


def _api_message(exc: urllib.error.HTTPError) -> str:
    try:
        data = json.loads(exc.read() or b"{}")
    except (json.JSONDecodeError, OSError):
        return exc.reason if isinstance(exc.reason, str) else ""
    message = data.get("message") if isinstance(data, dict) else None
    return str(message) if message else str(exc.reason or "")


def _http_error(exc: urllib.error.HTTPError, doing: str) -> GitHubError:
    said = _api_message(exc)
    what = f"could not {doing}: GitHub answered {exc.code}" + (f" ({said})" if said else "")
    if exc.code in (401, 403, 404):
        return GitHubPermissionError(
            what, status=exc.code,
            hint="the workflow's token needs 'pull-requests: write' (add a permissions: "
            "block to the job); on a pull request from a fork GITHUB_TOKEN is read-only, so "
            "the review is only in the job's log and its SARIF")
    return GitHubError(what, status=exc.code)


def _fit(body: str) -> str:
    if len(body) <= MAX_BODY:
        return body
    tail = "\n\n… (cut: the full review is in the job's log)\n"
    return body[:MAX_BODY - len(tail)] + tail


def pull_request_from_event(event: dict[str, Any]) -> int | None:
    """The pull request's number in a workflow's event payload (``GITHUB_EVENT_PATH``)."""
    for key in ("pull_request", "issue"):
        value = event.get(key)
        if isinstance(value, dict) and isinstance(value.get("number"), int):
            return int(value["number"])
    number = event.get("number")
    return number if isinstance(number, int) else None


__all__ = ["DEFAULT_API_URL", "DEFAULT_MARKER", "CommentResult", "GitHubClient", "GitHubError",
           "GitHubPermissionError", "PullRequest", "next_link", "pull_request_from_event"]
