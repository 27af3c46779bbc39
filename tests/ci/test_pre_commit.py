"""The hooks of .pre-commit-hooks.yaml, run by pre-commit itself in a temporary git repository.

pre-commit installs a ``language: python`` hook's repository into a virtualenv with ``pip
install .``, which needs a package index (setuptools and dsql-migrate's dependencies): there is
none offline. So the test declares the manifest's hooks as ``repo: local`` hooks with the same
id, entry, types and files, run with this environment's ``dsql-migrate`` (``language:
system``), and checks the manifest itself with ``pre-commit validate-manifest``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dsql_migrate.alembic import example_revision

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / ".pre-commit-hooks.yaml"
BIN = Path(sys.executable).parent


def _pre_commit(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pre_commit", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def _local_hooks() -> list[dict[str, Any]]:
    hooks = yaml.safe_load(MANIFEST.read_text())
    out = []
    for hook in hooks:
        assert hook["language"] == "python"
        local = {key: hook[key] for key in ("id", "name", "entry", "types", "files")
                 if key in hook}
        program, *rest = shlex.split(hook["entry"])
        local["entry"] = shlex.join([str(BIN / program), *rest])
        local["language"] = "system"
        out.append(local)
    return out


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache"),
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    work = tmp_path / "project"
    work.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=work, env=env, check=True)
    config = {"repos": [{"repo": "local", "hooks": _local_hooks()}]}
    (work / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    installed = _pre_commit("install", cwd=work, env=env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return work, env


def _commit(work: Path, env: dict[str, str], message: str) -> subprocess.CompletedProcess[str]:
    subprocess.run(["git", "add", "-A"], cwd=work, env=env, check=True)
    return subprocess.run(["git", "commit", "-q", "-m", message], cwd=work, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_the_manifest_is_valid() -> None:
    result = _pre_commit("validate-manifest", str(MANIFEST), cwd=ROOT, env=dict(os.environ))
    assert result.returncode == 0, result.stdout + result.stderr
    ids = [hook["id"] for hook in yaml.safe_load(MANIFEST.read_text())]
    assert ids == ["dsql-migrate-lint", "dsql-migrate-lint-revisions"]


def test_sql_hook_blocks_a_commit_until_the_sql_is_fixed(repo: tuple[Path, dict[str, str]]
                                                         ) -> None:
    work, env = repo
    (work / "schema.sql").write_text("CREATE TABLE t (id serial PRIMARY KEY);\n")
    refused = _commit(work, env, "schema")
    assert refused.returncode != 0
    out = refused.stdout + refused.stderr
    assert "dsql-migrate lint (SQL against Aurora DSQL's rules)" in out and "Failed" in out
    assert "schema.sql:1:" in out and "serial_type" in out
    (work / "schema.sql").write_text("CREATE TABLE t (id BIGINT PRIMARY KEY);\n")
    accepted = _commit(work, env, "schema")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr


def test_revision_hook_blocks_a_commit_until_the_revision_is_fixed(
        repo: tuple[Path, dict[str, str]]) -> None:
    work, env = repo
    versions = work / "migrations" / "versions"
    versions.mkdir(parents=True)
    example_revision.write(versions, example_revision.REFUSED)
    (work / "app.py").write_text("import os\n")  # not a revision: the hook's files: skips it
    refused = _commit(work, env, "accounts")
    assert refused.returncode != 0
    out = refused.stdout + refused.stderr
    assert "dsql-migrate lint-revisions (Alembic revisions, offline)" in out
    assert "a1_add_accounts.py:15 in upgrade(): op.execute #1:1:1: truncate" in out
    assert "1 error(s), 0 warning(s) in 1 revision file(s)" in out
    example_revision.write(versions, example_revision.ACCEPTED)
    accepted = _commit(work, env, "accounts")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
