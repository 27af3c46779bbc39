"""Diagnostics about the script itself rather than a DSQL rule."""

from __future__ import annotations

from collections.abc import Iterator

from ...sql import ParsedStatement
from ..core import Finding, LintContext, rule


@rule("parse_error", nodes=())
def parse_error(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """The statement is not valid PostgreSQL syntax.

    The linter reports where parsing stopped and lints the other statements normally. When the
    text looks like MySQL (backquotes, `AUTO_INCREMENT`, `ENGINE=`, `UNSIGNED`, ...), the message
    says so: convert it to PostgreSQL syntax first, then lint the result.

    Example: ``CREATE TABLE `t` (id INT AUTO_INCREMENT) ENGINE=InnoDB;``
    """
    return iter(())  # produced by the engine, which sees the parser's error


@rule("invalid_suppression", nodes=())
def invalid_suppression(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """A `-- dsql-migrate: ignore ...` comment names a rule that does not exist.

    Suppressions must name rule ids exactly (see this page); an unknown id is reported rather
    than silently ignoring everything, so a typo cannot hide real problems.

    Example: `-- dsql-migrate: ignore index_asnyc` → `-- dsql-migrate: ignore index_async`
    """
    return iter(())  # produced by the engine while reading suppression comments
