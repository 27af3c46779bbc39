"""docs/explain.md's example is real: its commands, run on an emulator of their own, print its
report (times and time-share severities aside, which vary from run to run)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from _support import PrivateTarget
from dsql_migrate.cli import main

DOC = Path(__file__).parents[2] / "docs" / "explain.md"


@pytest.fixture(scope="module")
def private_url(private_target: PrivateTarget) -> Iterator[str]:
    with private_target("explain-doc") as instance:
        yield instance.url()


def _mask(text: str) -> str:
    text = re.sub(r"\d+\.\d{3} ms", "N ms", text)
    return re.sub(r"\((CRITICAL|HIGH|MODERATE|LOW) —", "(SEVERITY —",
                  re.sub(r"\| (CRITICAL|HIGH|MODERATE|LOW) \|", "| SEVERITY |", text))


@pytest.mark.integration
def test_the_example_prints_the_documented_report(private_url: str, workdir: Path) -> None:
    doc = DOC.read_text(encoding="utf-8")
    example = doc.split("## Example", 1)[1]
    commands = [shlex.split(line[2:]) for line in example.split("```console", 1)[1]
                .split("```", 1)[0].splitlines() if line.startswith("$ ")]
    documented = example.split("````markdown\n", 1)[1].split("\n````", 1)[0]
    runner = CliRunner()
    output = ""
    for argv in commands:
        assert argv[0] == "dsql-migrate"
        result = runner.invoke(main, [argv[1], "--url", private_url, *argv[2:]])
        assert result.exit_code == 0, result.stderr
        output = result.stdout
    assert _mask(output).rstrip("\n") == _mask(documented).rstrip("\n")
