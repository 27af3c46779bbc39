"""The git side of a review: the base ref, and the project's files as they were there.

A review compares the working tree (what the pull request proposes, uncommitted files
included) with a base ref: by default the merge base of ``HEAD`` and the repository's default
branch (``origin/HEAD``, else ``main``, else ``master``). The base's files are exported with
``git archive`` into a temporary directory: nothing in the working tree or the index changes.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

#: the default branch, in the order it is looked for
DEFAULT_BRANCHES = ("origin/HEAD", "main", "master", "origin/main", "origin/master")


class GitError(ConfigError):
    """No git repository, an unknown ref, or git itself missing: exit 2 (usage)."""


@dataclass(frozen=True)
class BaseRef:
    """The ref the change is reviewed against."""

    name: str  # as given, or how it was found ("merge base of HEAD and main")
    commit: str  # full commit id

    @property
    def short(self) -> str:
        return self.commit[:12]


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError:
        raise GitError("git is not installed (review compares the change with a git ref)",
                       hint="install git, or run 'dsql-migrate upgrade --dry-run' to see the "
                       "plans of the pending revisions") from None


def _out(result: subprocess.CompletedProcess[bytes]) -> str:
    return result.stdout.decode("utf-8", "replace").strip()


def repo_root(path: Path) -> Path:
    """The top of the git work tree holding ``path``."""
    result = _git(path, "rev-parse", "--show-toplevel")
    if result.returncode != 0:
        raise GitError(f"{path.resolve()} is not in a git repository",
                       hint="review compares the project with a git ref: run it inside the "
                       "repository's work tree (git init, or a checkout)")
    return Path(_out(result)).resolve()


def _commit_of(root: Path, ref: str) -> str | None:
    result = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    return _out(result) if result.returncode == 0 else None


def resolve_base(root: Path, ref: str | None) -> BaseRef:
    """``ref`` as a commit, or the merge base of ``HEAD`` with the default branch."""
    if ref is not None:
        commit = _commit_of(root, ref)
        if commit is None:
            raise GitError(f"--base {ref}: not a commit in {root}",
                           hint="give a branch, tag or commit that exists here (in CI, fetch "
                           "it first: actions/checkout with fetch-depth: 0)")
        return BaseRef(ref, commit)
    if _commit_of(root, "HEAD") is None:
        raise GitError(f"{root}: the repository has no commit yet",
                       hint="commit the project first, or pass --base REF")
    for branch in DEFAULT_BRANCHES:
        if _commit_of(root, branch) is None:
            continue
        result = _git(root, "merge-base", "HEAD", branch)
        if result.returncode == 0 and _out(result):
            return BaseRef(f"merge base of HEAD and {branch}", _out(result))
    raise GitError(f"{root}: no default branch to compare with (looked for "
                   f"{', '.join(DEFAULT_BRANCHES)})",
                   hint="pass --base REF (the branch the change will be merged into)")


def export_tree(root: Path, commit: str, into: Path) -> None:
    """The files of ``commit`` written under ``into`` (``git archive``: tracked files only)."""
    result = _git(root, "archive", "--format=tar", commit)
    if result.returncode != 0:
        raise GitError(f"git archive {commit[:12]} failed: "
                       f"{result.stderr.decode('utf-8', 'replace').strip()}")
    with tarfile.open(fileobj=io.BytesIO(result.stdout)) as archive:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12: no paths out of ``into``
            archive.extractall(into, filter="data")
        else:  # pragma: no cover - git's own archive of the repository's tracked files
            archive.extractall(into)


__all__ = ["BaseRef", "GitError", "export_tree", "repo_root", "resolve_base"]
