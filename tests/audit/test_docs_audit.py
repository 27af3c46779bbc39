"""docs/audit.md runs as written, on an emulator of its own, and prints what the page shows."""

from __future__ import annotations

import re
import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from _support import PrivateTarget
from dsql_migrate.cli import main

pytestmark = pytest.mark.integration

PAGE = Path(__file__).resolve().parents[2] / "docs" / "audit.md"
SKIPPED = ("mkdir ", "cd ", "dsql-migrate local start")


@pytest.fixture(scope="module")
def private_url(private_target: PrivateTarget) -> Iterator[str]:
    """The page's tables (customers, orders) need a database of their own."""
    with private_target("audit-docs") as instance:
        yield instance.url()


def commands(text: str) -> Iterator[tuple[str, str]]:
    """(command, documented output) for every ``$ `` line of the page's console blocks."""
    for block in re.finditer(r"^(`{3,})console\n(.*?)^\1$", text, re.S | re.M):
        lines = block.group(2).splitlines()
        starts = [i for i, line in enumerate(lines) if line.startswith("$ ")]
        for n, i in enumerate(starts):
            end = starts[n + 1] if n + 1 < len(starts) else len(lines)
            yield lines[i][2:], "\n".join(lines[i + 1:end])


def wait_for_jobs(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(300):
            row = conn.execute("SELECT count(*) FROM sys.jobs WHERE status NOT IN "
                               "('completed', 'failed', 'cancelled')").fetchone()
            if row == (0,):
                return
            time.sleep(0.1)
    raise AssertionError("jobs still running")


def test_the_page_runs_as_documented(private_url: str, workdir: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    text = PAGE.read_text(encoding="utf-8")
    model = re.search(r"```python\n(.*?)```", text, re.S)
    assert model is not None
    (workdir / "models.py").write_text(model.group(1))
    sys.modules.pop("models", None)
    monkeypatch.setenv("DSQL_MIGRATE_URL", private_url)
    runner = CliRunner()
    last_code, audited = 0, 0
    for command, documented in commands(text):
        if command.startswith(SKIPPED):
            continue
        if command == "echo $?":
            assert documented == str(last_code)
            continue
        args = shlex.split(command)
        assert args[0] == "dsql-migrate", command
        result = runner.invoke(main, args[1:])
        assert "Traceback" not in result.output, result.output
        last_code = result.exit_code
        if args[1] == "audit":
            audited += 1
            assert result.output.rstrip("\n") == documented, command
        else:
            assert last_code == 0, (command, result.output)
        if "ASYNC" in command:
            wait_for_jobs(private_url)
    assert audited == 7
    sys.modules.pop("models", None)
