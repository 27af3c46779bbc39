"""Applying rules' fixes to one statement at a time.

A fixer receives a :class:`FixTarget`. It either edits the statement's pglast object tree
(:attr:`FixTarget.tree`, built lazily: only statements that need a fix pay for pglast's slow
object parse), sets DSQL flags (:attr:`FixTarget.is_async`), or adds whole statements before
or after it (:attr:`FixTarget.before`, :attr:`FixTarget.after`) or replaces it
(:attr:`FixTarget.replacement`). :meth:`FixTarget.render` turns the result back into SQL:
an untouched tree keeps the original text and comments; an edited one is printed by pglast.
"""

from __future__ import annotations

import re
from typing import Any

from ..sql import ParsedStatement, dsql_syntax

_INDEX_HEAD = re.compile(r"(CREATE\s+(?:UNIQUE\s+)?INDEX)(\s+CONCURRENTLY)?\b", re.IGNORECASE)
_ALTER_HEAD = re.compile(r"(ALTER\s+TABLE)\b", re.IGNORECASE)


def parse_tree(sql: str) -> Any:
    """pglast object tree of one statement (DSQL ``ASYNC`` removed)."""
    import pglast  # here: linting without --fix needs none of pglast's object trees (start-up)

    return pglast.parse_sql(dsql_syntax(sql)[0])[0].stmt


def render_tree(node: Any) -> str:
    from pglast.stream import RawStream  # here: its printers cost ~10 ms to import (start-up)

    return str(RawStream()(node))


def add_async(sql: str) -> str:
    """Insert DSQL's ASYNC keyword after ``CREATE [UNIQUE] INDEX`` (dropping CONCURRENTLY) or
    ``ALTER TABLE``."""
    if _INDEX_HEAD.match(sql):
        return _INDEX_HEAD.sub(r"\1 ASYNC", sql, count=1)
    return _ALTER_HEAD.sub(r"\1 ASYNC", sql, count=1)


class FixTarget:
    """One statement being rewritten by the fixers of the rules that flagged it."""

    def __init__(self, parsed: ParsedStatement) -> None:
        self.parsed = parsed
        self.is_async = parsed.is_async
        self.before: list[str] = []
        self.after: list[str] = []
        self.replacement: list[str] | None = None
        self._tree: Any = None

    @property
    def tree(self) -> Any:
        """The pglast object tree; using it means the statement is re-printed from it."""
        if self._tree is None:
            self._tree = parse_tree(self.parsed.text)
        return self._tree

    @property
    def changed(self) -> bool:
        return (
            self._tree is not None
            or self.is_async != self.parsed.is_async
            or bool(self.before or self.after)
            or self.replacement is not None
        )

    def render(self) -> list[str]:
        """The statement(s) that replace the original, without terminating semicolons."""
        if self.replacement is not None:
            return [*self.before, *self.replacement, *self.after]
        if self._tree is not None:
            main = render_tree(self._tree)
            if self.is_async:
                main = add_async(main)
        elif self.is_async and not self.parsed.is_async:
            main = add_async(self.parsed.text)
        else:
            main = self.parsed.text
        return [*self.before, main, *self.after]


__all__ = ["FixTarget", "add_async", "parse_tree", "render_tree"]


def column_snippet(definition: str) -> Any:
    """A pglast ``ColumnDef`` object parsed from ``definition`` (e.g. ``"id bigint"``)."""
    return parse_tree(f"CREATE TABLE x ({definition})").tableElts[0]


def seq_option(option: str) -> Any:
    """A pglast sequence-option ``DefElem`` parsed from e.g. ``"CACHE 1"`` or ``"AS bigint"``."""
    return parse_tree(f"CREATE SEQUENCE x {option}").options[0]


def object_column_defs(tree: Any) -> list[Any]:
    """ColumnDef objects of a CREATE TABLE, or added by an ALTER TABLE."""
    if type(tree).__name__ == "CreateStmt":
        return [e for e in tree.tableElts or () if type(e).__name__ == "ColumnDef"]
    if type(tree).__name__ == "AlterTableStmt":
        return [
            c.def_ for c in tree.cmds or ()
            if type(getattr(c, "def_", None)).__name__ == "ColumnDef"
        ]
    return []


__all__ += ["column_snippet", "object_column_defs", "seq_option"]
