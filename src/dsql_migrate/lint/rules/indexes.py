"""CREATE INDEX: ASYNC, key options, and what each profile accepts (DSQL.md §1, §3, §4)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pglast import enums

from ...profiles import Capability
from ...sql import ParsedStatement
from .. import _tree as t
from ..core import Finding, FixStatus, LintContext, any_of, rule
from ..fixer import FixTarget

_ASYNC_WARNING = (
    "the index now builds in the background: the statement returns a job_id at once and the "
    "index is not usable (and a UNIQUE build may still fail on duplicates) until the job "
    "completes; wait with CALL sys.wait_for_job(job_id)"
)


@rule("index_async", nodes=("IndexStmt",))
def index_async(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """CREATE INDEX needs ASYNC.

    DSQL builds every index as an asynchronous job, even on an empty table, and rejects
    `CREATE INDEX` without `ASYNC`. `--fix` adds it, with a warning: the statement returns a
    `job_id` before the index exists, so wait for the job (`CALL sys.wait_for_job(...)`) before
    relying on the index or on a UNIQUE guarantee.

    Example: `CREATE INDEX ix_orders_customer ON orders (customer_id);` →
    `CREATE INDEX ASYNC ix_orders_customer ON orders (customer_id);`
    """
    if p.is_async or (p.json is not None and '"concurrent":true' in p.json):
        return
    assert p.node is not None
    if not p.node.get("concurrent"):
        name = p.node.get("idxname")
        yield Finding(
            f"CREATE INDEX{' ' + name if name else ''} without ASYNC is not supported in DSQL",
            "use CREATE INDEX ASYNC and wait for the job",
            status=FixStatus.FIXED_WITH_WARNING, detail=f"added ASYNC: {_ASYNC_WARNING}",
        )


@rule("index_concurrently", nodes=("IndexStmt",))
def index_concurrently(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """CREATE INDEX CONCURRENTLY is not supported; DSQL's equivalent is ASYNC.

    `--fix` replaces CONCURRENTLY with ASYNC, with a warning: unlike CONCURRENTLY, ASYNC returns
    before the index is built.

    Example: `CREATE INDEX CONCURRENTLY ix ON t (a);` → `CREATE INDEX ASYNC ix ON t (a);`
    """
    if p.json is not None and '"concurrent":true' not in p.json:
        return
    assert p.node is not None
    if p.node.get("concurrent"):
        yield Finding("CREATE INDEX CONCURRENTLY is not supported in DSQL",
                      "use CREATE INDEX ASYNC", status=FixStatus.FIXED_WITH_WARNING,
                      detail=f"replaced CONCURRENTLY with ASYNC: {_ASYNC_WARNING}")


def _fix_async(target: FixTarget, ctx: LintContext) -> None:
    target.is_async = True
    if target._tree is not None:
        target.tree.concurrent = False


index_async.fixer(_fix_async)
index_concurrently.fixer(_fix_async)

_USING = re.compile(r"\bON\s+(?:ONLY\s+)?(?:\"(?:[^\"]|\"\")*\"|[\w$.\"]+)+\s+USING\s+(\w+)",
                    re.IGNORECASE)


@rule("index_using", nodes=("IndexStmt",), prefilter=any_of("using"))
def index_using(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """`USING <method>` on CREATE INDEX is not supported.

    DSQL has one index method. `--fix` removes `USING btree` (no change) and turns `USING hash`
    into the default method (with a warning); GIN, GiST, BRIN and SP-GiST indexes have no
    equivalent and must be redesigned by hand.

    Example: `CREATE INDEX ASYNC ix ON t USING btree (a);` → `CREATE INDEX ASYNC ix ON t (a);`
    """
    assert p.node is not None
    method = str(p.node.get("accessMethod", "btree")).lower()
    if method == "btree" and not _USING.search(p.text):
        return
    if method == "btree":
        yield Finding("USING btree is not supported in DSQL (it is the only method anyway)",
                      "remove the USING clause", status=FixStatus.FIXED,
                      detail="removed USING btree")
    elif method == "hash":
        yield Finding("USING hash is not supported in DSQL", "remove the USING clause",
                      status=FixStatus.FIXED_WITH_WARNING,
                      detail="removed USING hash: the index is built with DSQL's default method")
    else:
        todo = (f"DSQL has no {method} indexes: index plain columns, or search outside the "
                "database")
        yield Finding(f"USING {method} is not supported in DSQL", todo, detail=todo)


@index_using.fixer
def _fix_index_using(target: FixTarget, ctx: LintContext) -> None:
    target.tree.accessMethod = "btree"  # pglast prints no USING clause for btree


def _elems(p: ParsedStatement) -> list[t.Node]:
    assert p.node is not None
    return [e["IndexElem"] for e in p.node.get("indexParams") or () if "IndexElem" in e]


@rule("index_sort_direction", nodes=("IndexStmt",), prefilter=any_of("asc", "desc"))
def index_sort_direction(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """ASC/DESC on index keys is not supported.

    `--fix` removes the direction: silently for ASC (the default), with a warning for DESC
    (queries ordering by the key descending may sort instead of reading the index backwards).
    `NULLS FIRST/LAST` is accepted.

    Example: `CREATE INDEX ASYNC ix ON t (created_at DESC);` →
    `CREATE INDEX ASYNC ix ON t (created_at);`
    """
    for elem in _elems(p):
        ordering = elem.get("ordering")
        if ordering in ("SORTBY_ASC", "SORTBY_DESC"):
            word = "ASC" if ordering == "SORTBY_ASC" else "DESC"
            yield Finding(
                f"index key sort direction {word} is not supported in DSQL",
                f"remove {word}",
                status=FixStatus.FIXED if word == "ASC" else FixStatus.FIXED_WITH_WARNING,
                detail="removed ASC (the default)" if word == "ASC"
                else "removed DESC: the key is indexed in ascending order",
            )


@index_sort_direction.fixer
def _fix_sort(target: FixTarget, ctx: LintContext) -> None:
    for elem in target.tree.indexParams or ():
        elem.ordering = enums.SortByDir.SORTBY_DEFAULT


@rule("index_opclass", nodes=("IndexStmt",))
def index_opclass(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """Operator classes on index keys are not supported.

    `--fix` removes the operator class, with a warning: queries that relied on it (for example
    `LIKE 'abc%'` with `text_pattern_ops`) may no longer use the index.

    Example: `CREATE INDEX ASYNC ix ON t (name text_pattern_ops);` →
    `CREATE INDEX ASYNC ix ON t (name);`
    """
    if p.json is not None and '"opclass"' not in p.json:
        return  # no operator class anywhere in the tree
    for elem in _elems(p):
        if elem.get("opclass"):
            name = ".".join(t.svals(elem["opclass"]))
            yield Finding(f"operator class {name} on an index key is not supported in DSQL",
                          "remove the operator class", status=FixStatus.FIXED_WITH_WARNING,
                          detail=f"removed operator class {name}: queries that depended on it "
                          "may not use the index")


@index_opclass.fixer
def _fix_opclass(target: FixTarget, ctx: LintContext) -> None:
    for elem in target.tree.indexParams or ():
        elem.opclass = None
        elem.opclassopts = None


@rule("index_expression", nodes=("IndexStmt",),
      prefilter=any_of("("), unless=Capability.EXPRESSION_INDEX)
def index_expression(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """Expression indexes need the `current` profile.

    The `classic` profile indexes plain columns only. Store the expression's value in a column
    the application maintains and index that, or target the `current` profile (immutable
    functions only).

    Example (classic): `CREATE INDEX ASYNC ix ON users (lower(email));`
    """
    if ctx.profile.allows(Capability.EXPRESSION_INDEX):
        return
    if any(e.get("expr") for e in _elems(p)):
        todo = "index a column that stores the expression's value"
        yield Finding(f"expression indexes are not supported in the {ctx.profile.name} profile",
                      todo, detail=todo)


@rule("index_partial", nodes=("IndexStmt",),
      prefilter=any_of("where"), unless=Capability.PARTIAL_INDEX)
def index_partial(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """Partial indexes (`WHERE ...`) need the `current` profile.

    In the `classic` profile, index the whole table; a partial UNIQUE index has no direct
    replacement (it would constrain all rows).

    Example (classic): `CREATE INDEX ASYNC ix ON orders (id) WHERE shipped = false;`
    """
    if ctx.profile.allows(Capability.PARTIAL_INDEX):
        return
    assert p.node is not None
    if p.node.get("whereClause"):
        todo = "index the whole table, or target the current profile"
        yield Finding(f"partial indexes are not supported in the {ctx.profile.name} profile",
                      todo, detail=todo)


@rule("index_key_columns", nodes=("IndexStmt", "CreateStmt", "AlterTableStmt"))
def index_key_columns(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """An index, primary key or UNIQUE constraint has more than 8 key columns.

    DSQL limits keys to 8 columns (error 54011; the limit is `key_columns_per_index` in the
    profile). Move extra columns into `INCLUDE (...)`, or key on fewer columns.

    Example: `CREATE INDEX ASYNC ix ON t (a, b, c, d, e, f, g, h, i);` →
    `CREATE INDEX ASYNC ix ON t (a, b, c, d, e, f, g, h) INCLUDE (i);`
    """
    limit = ctx.limits.key_columns_per_index
    if p.lower.count(",") < limit:
        return  # more than ``limit`` keys need at least ``limit`` commas: no tree needed
    if p.node_type != "IndexStmt" and not re.search(
        rf"(?:primary\s+key|unique)\s*\((?:[^()]*,){{{limit}}}", p.lower
    ):
        return  # no PRIMARY KEY / UNIQUE column list long enough
    assert p.node is not None
    if p.node_type == "IndexStmt":
        counts = [(len(_elems(p)), "index")]
    elif p.node_type == "CreateStmt":
        counts = [(len(c.get("keys") or ()), "constraint") for c in t.table_constraints(p.node)]
    else:
        counts = [(len(c.get("keys") or ()), "constraint")
                  for c in map(t.added_constraint, t.alter_cmds(p.node)) if c]
    for n, what in counts:
        if n > limit:
            todo = f"key on at most {limit} columns; put the others in INCLUDE (...)"
            yield Finding(f"{what} has {n} key columns; DSQL allows at most {limit}", todo,
                          detail=todo)


# Not IMMUTABLE in PostgreSQL's catalog, so not allowed in index expressions or predicates.
_NOT_IMMUTABLE = frozenset({
    "now", "random", "gen_random_uuid", "uuid_generate_v4", "clock_timestamp",
    "statement_timestamp", "transaction_timestamp", "timeofday", "nextval", "currval",
    "lastval", "setval", "txid_current", "pg_current_xact_id", "age", "to_char", "to_date",
    "to_timestamp", "current_setting", "current_schema", "current_user", "session_user",
})


@rule("index_volatile_function", nodes=("IndexStmt",), prefilter=any_of("("),
      only_if=Capability.EXPRESSION_INDEX)
def index_volatile_function(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """An index expression or predicate calls a function that is not IMMUTABLE.

    Expression and partial indexes (current profile) may only use immutable functions: the
    value must not depend on time, settings or randomness. `now()`, `CURRENT_DATE`,
    `random()`, `to_char()` and the like are rejected.

    Example: `CREATE INDEX ASYNC ix ON orders (id) WHERE created_at > now() - interval '1 day';`
    """
    if p.json is not None and '"expr"' not in p.json and '"whereClause"' not in p.json:
        return  # plain column keys and no predicate: nothing to call a function
    assert p.node is not None
    parts = [e.get("expr") for e in _elems(p) if e.get("expr")]
    if p.node.get("whereClause"):
        parts.append(p.node["whereClause"])
    if not parts:
        return
    for call in t.walk(parts, "FuncCall"):
        name = t.func_name(call).rsplit(".", 1)[-1]
        if name in _NOT_IMMUTABLE:
            todo = "index a stored column instead, or use an immutable expression"
            yield Finding(f"{name}() is not IMMUTABLE and cannot be used in an index",
                          todo, location=call.get("location"), detail=todo)
    for value_fn in t.walk(parts, "SQLValueFunction"):
        op = str(value_fn.get("op", "")).removeprefix("SVFOP_").replace("_N", "").lower()
        todo = "index a stored column instead, or use an immutable expression"
        yield Finding(f"{op.upper()} is not IMMUTABLE and cannot be used in an index", todo,
                      location=value_fn.get("location"), detail=todo)

