"""Transaction blocks and isolation (DSQL.md §2)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ...sql import Block, ParsedStatement, transaction_blocks
from .. import _tree as t
from ..core import Finding, FixStatus, LintContext, any_of, rule, script_rule
from ..fixer import FixTarget


def _blocks(ctx: LintContext) -> list[Block]:
    cached = ctx.options.get("_blocks")
    if cached is None:
        cached = transaction_blocks(ctx.statements)
        ctx.options["_blocks"] = cached
    return list(cached)


_SPLIT_DETAIL = (
    "split the block: each DDL statement now runs in its own transaction and the DML runs in "
    "separate transactions, so the block is no longer atomic (a failure part-way leaves the "
    "earlier parts applied)"
)


@script_rule("multi_ddl_transaction")
def multi_ddl_transaction(ctx: LintContext) -> Iterator[tuple[ParsedStatement, Finding]]:
    """A transaction block holds more than one DDL statement.

    A DSQL transaction may contain at most one DDL statement. `--fix` removes the block and
    runs each DDL statement on its own (a warning: the block is no longer atomic). A block that
    ends in ROLLBACK, or never ends, is not fixed.

    Example: `BEGIN; CREATE TABLE a (...); CREATE TABLE b (...); COMMIT;` →
    `CREATE TABLE a (...); CREATE TABLE b (...);`
    """
    for block in _blocks(ctx):
        n = len(block.ddl)
        if n > 1:
            yield block.begin, _split_finding(
                block, f"transaction block holds {n} DDL statements; DSQL allows one per "
                "transaction")


@script_rule("mixed_ddl_dml_transaction")
def mixed_ddl_dml_transaction(ctx: LintContext) -> Iterator[tuple[ParsedStatement, Finding]]:
    """A transaction block mixes DDL and DML.

    DSQL rejects DDL and DML in the same transaction (`ddl and dml are not supported in the
    same transaction`). `--fix` splits the block: each DDL statement alone, each run of DML in
    its own `BEGIN ... COMMIT` (a warning: no longer atomic).

    Example: `BEGIN; ALTER TABLE t ADD COLUMN c int; UPDATE t SET c = 0; COMMIT;` →
    `ALTER TABLE t ADD COLUMN c int; BEGIN; UPDATE t SET c = 0; COMMIT;`
    """
    for block in _blocks(ctx):
        if block.ddl and block.dml:
            yield block.begin, _split_finding(
                block, f"transaction block mixes DDL ({len(block.ddl)}) and DML "
                f"({len(block.dml)}); DSQL does not allow both in one transaction")


def _split_later(target: FixTarget, ctx: LintContext) -> None:
    """Blocks are split by the engine after every per-statement fix (which may add statements
    to a block), so there is nothing to do per statement."""


multi_ddl_transaction.fixer(_split_later)
mixed_ddl_dml_transaction.fixer(_split_later)


def _split_finding(block: Block, message: str) -> Finding:
    if block.committed:
        return Finding(message, "run each DDL statement in its own transaction",
                       status=FixStatus.FIXED_WITH_WARNING, detail=_SPLIT_DETAIL)
    todo = "run each DDL statement in its own transaction (the block is not committed)"
    return Finding(message, todo, detail=todo)


@script_rule("wait_for_job_in_transaction")
def wait_for_job_in_transaction(ctx: LintContext) -> Iterator[tuple[ParsedStatement, Finding]]:
    """`CALL sys.wait_for_job(...)` inside a transaction block.

    Waiting for an asynchronous job must happen outside any transaction block. Move the call
    after COMMIT.

    Example: `BEGIN; CALL sys.wait_for_job('j1'); COMMIT;` → `CALL sys.wait_for_job('j1');`
    """
    for block in _blocks(ctx):
        for s in block.body:
            if s.node_type in ("CallStmt", "SelectStmt") and "wait_for_job" in s.text.lower():
                todo = "call it outside BEGIN ... COMMIT"
                yield s, Finding("sys.wait_for_job must run outside a transaction block", todo,
                                 detail=todo)


_LEVEL = re.compile(
    r"(ISOLATION\s+LEVEL\s+)(SERIALIZABLE|READ\s+COMMITTED|READ\s+UNCOMMITTED)", re.IGNORECASE
)
_VALUE = re.compile(r"('?)(serializable|read\s+committed|read\s+uncommitted)('?)", re.IGNORECASE)


def _isolation_values(p: ParsedStatement) -> Iterator[str]:
    node = p.node or {}
    if p.node_type == "TransactionStmt":
        defs = node.get("options")
    elif p.node_type == "VariableSetStmt":
        name = str(node.get("name", "")).lower()
        if name in ("default_transaction_isolation", "transaction_isolation"):
            for arg in node.get("args") or ():
                yield str(((arg.get("A_Const") or {}).get("sval") or {}).get("sval", ""))
            return
        defs = node.get("args")
    else:
        return
    iso = t.options(defs).get("transaction_isolation")
    if iso is not None:
        yield str((((iso.get("arg") or {}).get("A_Const") or {}).get("sval") or {}).get("sval"))


@rule("transaction_isolation", nodes=("TransactionStmt", "VariableSetStmt"),
      prefilter=any_of("isolation"))
def transaction_isolation(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """Isolation levels other than REPEATABLE READ are not supported.

    DSQL always runs at REPEATABLE READ (snapshot isolation) with optimistic concurrency.
    `--fix` rewrites the level to REPEATABLE READ, with a warning: code that relied on
    SERIALIZABLE's guarantees or on READ COMMITTED's fresh snapshots must be reviewed.

    Example: `BEGIN ISOLATION LEVEL SERIALIZABLE;` → `BEGIN ISOLATION LEVEL REPEATABLE READ;`
    """
    for value in _isolation_values(p):
        if value.lower() != "repeatable read":
            yield Finding(f"isolation level {value.upper()} is not supported in DSQL; only "
                          "REPEATABLE READ", "use REPEATABLE READ (or leave the level out)",
                          status=FixStatus.FIXED_WITH_WARNING,
                          detail=f"changed {value.upper()} to REPEATABLE READ: review code that "
                          "relied on the old level's guarantees")


@transaction_isolation.fixer
def _fix_isolation(target: FixTarget, ctx: LintContext) -> None:
    text = target.parsed.text
    fixed = _LEVEL.sub(r"\1REPEATABLE READ", text)
    if fixed == text:
        fixed = _VALUE.sub(r"\1repeatable read\3", text)
    target.replacement = [fixed]
