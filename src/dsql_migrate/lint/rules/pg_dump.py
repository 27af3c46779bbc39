"""What pg_dump (and PostgreSQL 17/18) leave in a script that DSQL does not take as written:
a COPY without its data block, ``OWNER TO`` roles, ``COMMENT ON EXTENSION``, functions and
VIRTUAL generated columns newer than DSQL's PostgreSQL 16."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pglast import ast, enums

from ...sql import ParsedStatement
from .. import _tree as t
from ..core import Finding, FixStatus, LintContext, Severity, any_of, rule
from ..fixer import FixTarget

_COPY_END_LINE = re.compile(r"^\\\.[ \t]*\r?$", re.MULTILINE)


@rule("copy_data_unterminated", nodes=("CopyStmt",), severity=Severity.WARNING,
      prefilter=any_of("stdin"))
def copy_data_unterminated(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """`COPY ... FROM STDIN` without a `\\.` line ending its data.

    In a script (pg_dump's plain format, `psql -f`), the rows of `COPY ... FROM STDIN;` follow
    it up to a line holding `\\.`. Without that line psql reads *every following line* as a data
    row, up to the end of the file. The linter does not: it takes the data block to end at
    `\\.` only, lints what follows as SQL and warns here, so that no statement goes unchecked.
    Add the `\\.` line after the rows (or remove the COPY and load the data with
    `dsql-migrate load`).

    Example: `COPY t (id, v) FROM stdin;` directly followed by `CREATE INDEX ...;`
    """
    assert p.node is not None
    if not p.node.get("is_from") or p.node.get("filename") or p.node.get("is_program"):
        return
    following = p.statement.index + 1
    if following >= len(ctx.statements):
        return  # at the end of the file psql ends the data there too
    if _COPY_END_LINE.search(ctx.statements[following].statement.leading):
        return
    todo = ("end the COPY's data rows with a line holding \\. (psql would read the statements "
            "below as data rows); the linter checked them as SQL")
    yield Finding("COPY ... FROM STDIN has no data block ending in \\.", todo, detail=todo)


# -- OWNER TO -------------------------------------------------------------------------------------


def _owner_cmds(p: ParsedStatement) -> list[dict[str, Any]]:
    node = p.node or {}
    return [c for c in t.alter_cmds(node) if c.get("subtype") == "AT_ChangeOwner"]


@rule("owner_to", nodes=("AlterTableStmt", "AlterOwnerStmt"), severity=Severity.WARNING,
      prefilter=any_of("owner"))
def owner_to(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """`OWNER TO role`: pg_dump's owners rarely exist in DSQL.

    DSQL accepts `ALTER ... OWNER TO` for a role that exists, but pg_dump names the source
    database's roles (`postgres`, the application's owner), which a DSQL cluster does not have
    (it has `admin` and the roles you create), so the statement fails with 42704. `--fix` removes
    it, with a warning: the object then stays owned by the role that runs the script; create the
    role first and keep the statement if the owner matters, or grant privileges with `GRANT`.

    Example: `ALTER TABLE public.actor OWNER TO postgres;`
    """
    assert p.node is not None
    if p.node_type == "AlterOwnerStmt":
        role = (p.node.get("newowner") or {}).get("rolename")
    else:
        cmds = _owner_cmds(p)
        if not cmds:
            return
        role = (cmds[0].get("newowner") or {}).get("rolename")
    who = f"role {role}" if role else "that role"
    yield Finding(
        f"OWNER TO {role or '...'}: pg_dump's owner roles usually do not exist in DSQL",
        f"remove it (the object stays owned by the role that runs the script), or create "
        f"{who} in DSQL first", status=FixStatus.FIXED_WITH_WARNING,
        detail=f"removed OWNER TO: the object stays owned by the role that runs the script, "
        f"not {who}")


@owner_to.fixer
def _fix_owner_to(target: FixTarget, ctx: LintContext) -> None:
    tree = target.tree
    if isinstance(tree, ast.AlterOwnerStmt):
        target.replacement = []
        return
    kept = tuple(c for c in tree.cmds or () if not (
        isinstance(c, ast.AlterTableCmd) and c.subtype == enums.AlterTableType.AT_ChangeOwner))
    if kept:
        tree.cmds = kept
    else:
        target.replacement = []


# -- COMMENT ON EXTENSION ------------------------------------------------------------------------


@rule("comment_on_extension", nodes=("CommentStmt",), prefilter=any_of("extension"))
def comment_on_extension(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """`COMMENT ON EXTENSION`: DSQL has no extensions to comment on.

    pg_dump writes `COMMENT ON EXTENSION x IS '...'` after `CREATE EXTENSION x`. DSQL supports no
    `CREATE EXTENSION`, so once that is removed the comment names an extension that is not there
    (42704; for one built into the server, the caller is not its owner). `--fix` removes it:
    nothing is lost.

    Example: `COMMENT ON EXTENSION pgcrypto IS 'cryptographic functions';`
    """
    assert p.node is not None
    if p.node.get("objtype") != "OBJECT_EXTENSION":
        return
    name = t.sval(p.node.get("object"))
    yield Finding(f"COMMENT ON EXTENSION {name}: DSQL has no extension {name} (no extensions "
                  "at all)", "remove the statement", status=FixStatus.FIXED,
                  detail=f"removed the comment on extension {name}, which DSQL does not have")


@comment_on_extension.fixer
def _fix_comment_on_extension(target: FixTarget, ctx: LintContext) -> None:
    target.replacement = []


# -- PostgreSQL 17/18 ----------------------------------------------------------------------------

#: functions PostgreSQL added after 16 (DSQL's version): name -> a PostgreSQL 16 replacement
#: for a call without arguments (None: none)
NEWER_FUNCTIONS: dict[str, str | None] = {
    "uuidv7": "gen_random_uuid",  # PostgreSQL 18
    "uuidv4": "gen_random_uuid",  # PostgreSQL 18 (an alias of gen_random_uuid)
    "uuid_extract_timestamp": None,  # PostgreSQL 17
    "uuid_extract_version": None,  # PostgreSQL 17
    "casefold": None,  # PostgreSQL 18
    "array_sort": None,  # PostgreSQL 18
    "array_reverse": None,  # PostgreSQL 18
}


def _newer_calls(node: Any) -> Iterator[tuple[dict[str, Any], str]]:
    for call in t.walk(node, "FuncCall"):
        names = t.svals(call.get("funcname"))
        if names and names[-1].lower() in NEWER_FUNCTIONS and names[:-1] in ([], ["pg_catalog"]):
            yield call, names[-1].lower()


@rule("pg18_function", nodes=None, prefilter=any_of(*NEWER_FUNCTIONS))
def pg18_function(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """A function PostgreSQL added after version 16, such as `uuidv7()`.

    DSQL is PostgreSQL 16: `uuidv7()` and `uuidv4()` (PostgreSQL 18), `uuid_extract_timestamp()`
    (17) and the like do not exist (42883). `--fix` replaces `uuidv7()` and `uuidv4()` by
    `gen_random_uuid()`, with a warning for `uuidv7()`: its UUIDs are random (version 4), not
    ordered by time. Others need a rewrite by hand.

    Example: `CREATE TABLE events (id uuid DEFAULT uuidv7() PRIMARY KEY);` →
    `CREATE TABLE events (id uuid DEFAULT gen_random_uuid() PRIMARY KEY);`
    """
    assert p.node is not None
    for call, name in _newer_calls(p.node):
        replacement = NEWER_FUNCTIONS[name]
        fixable = replacement is not None and not call.get("args")
        yield Finding(
            f"{name}() is newer than PostgreSQL 16: it does not exist in DSQL",
            f"use {replacement}()" if fixable else "rewrite without it",
            location=call.get("location"),
            status=FixStatus.FIXED_WITH_WARNING if fixable else FixStatus.UNFIXABLE,
            detail=(f"replaced {name}() by {replacement}(): random version-4 UUIDs, not "
                    "time-ordered ones" if fixable else "rewrite without it"))


def _replace_newer_calls(tree: Any) -> None:
    # pglast's visitors import its printers: defined when a fix needs them (start-up)
    from pglast.visitors import Visitor

    class ReplaceNewerCalls(Visitor):
        def visit_FuncCall(self, ancestors: Any, node: ast.FuncCall) -> Any:
            name = node.funcname[-1].sval.lower() if node.funcname else ""
            replacement = NEWER_FUNCTIONS.get(name)
            if replacement is None or node.args:
                return None
            return ast.FuncCall(funcname=(ast.String(replacement),),
                                funcformat=node.funcformat, location=node.location)

    ReplaceNewerCalls()(tree)


@pg18_function.fixer
def _fix_pg18_function(target: FixTarget, ctx: LintContext) -> None:
    _replace_newer_calls(target.tree)


def _virtual_columns(node: Any) -> Iterator[dict[str, Any]]:
    for constraint in t.walk(node, "Constraint"):
        if constraint.get("contype") == "CONSTR_GENERATED" \
                and constraint.get("generated_kind") == "v":
            yield constraint


@rule("virtual_generated_column", nodes=("CreateStmt", "AlterTableStmt"),
      prefilter=any_of("generated"))
def virtual_generated_column(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """A VIRTUAL generated column (PostgreSQL 18), or one without STORED.

    PostgreSQL 18 computes generated columns on read (`VIRTUAL`, its default when neither
    `VIRTUAL` nor `STORED` is written). DSQL is PostgreSQL 16, where a generated column must say
    `STORED` (a syntax error otherwise). `--fix` makes it `STORED`, with a warning: the value is
    computed on write and takes space.

    Example: `CREATE TABLE t (id bigint PRIMARY KEY, a int, b int GENERATED ALWAYS AS (a * 2)
    VIRTUAL);` → `... GENERATED ALWAYS AS (a * 2) STORED);`
    """
    assert p.node is not None
    for constraint in _virtual_columns(p.node):
        yield Finding("VIRTUAL generated columns are PostgreSQL 18; DSQL (PostgreSQL 16) needs "
                      "GENERATED ALWAYS AS (...) STORED", "write STORED",
                      location=constraint.get("location"),
                      status=FixStatus.FIXED_WITH_WARNING,
                      detail="made the generated column STORED: computed on write, stored")


def _store_generated(tree: Any) -> None:
    from pglast.visitors import Visitor

    class StoreGenerated(Visitor):
        def visit_Constraint(self, ancestors: Any, node: ast.Constraint) -> None:
            if node.contype == enums.ConstrType.CONSTR_GENERATED and node.generated_kind == "v":
                node.generated_kind = "s"

    StoreGenerated()(tree)


@virtual_generated_column.fixer
def _fix_virtual_generated(target: FixTarget, ctx: LintContext) -> None:
    _store_generated(target.tree)
