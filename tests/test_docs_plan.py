"""docs/plan.md's example runs, and prints what the page shows."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import psycopg
from click.testing import CliRunner

from dsql_migrate.cli import main

PAGE = Path(__file__).resolve().parents[1] / "docs" / "plan.md"


def test_the_example_gives_the_documented_plan(scratch_url: str, workdir: Path) -> None:
    text = PAGE.read_text()
    model = re.search(r"```python\n(.*?)```", text, re.S)
    assert model is not None
    (workdir / "models.py").write_text(model.group(1))
    sys.modules.pop("models", None)
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        for line in text.splitlines():
            if line.startswith("$ dsql-migrate sql --write "):
                conn.execute(shlex.split(line)[-1])
    runner = CliRunner()
    result = runner.invoke(main, ["plan", "--url", scratch_url, "--target", "models:metadata"])
    assert result.exit_code == 0, result.stderr
    documented = re.search(r"\$ dsql-migrate plan --target models:metadata\n(.*)\n", text)
    assert documented is not None
    assert result.stdout.splitlines()[0] == documented.group(1)

    result = runner.invoke(main, ["plan", "--url", scratch_url, "--target", "models:metadata",
                                  "--format", "markdown"])
    block = re.search(r"```markdown\n(.*?)```", text, re.S)
    assert block is not None
    assert result.stdout.startswith(block.group(1))

    result = runner.invoke(main, ["plan", "--url", scratch_url, "--target", "models:metadata",
                                  "--check"])
    assert result.exit_code == 1
