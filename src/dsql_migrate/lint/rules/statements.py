"""Statements and clauses DSQL rejects in every profile (DSQL.md §1)."""

from __future__ import annotations

from collections.abc import Iterator

from pglast import enums

from ...sql import ParsedStatement
from .. import _tree as t
from ..core import Finding, FixStatus, LintContext, any_of, rule, table_rule
from ..fixer import FixTarget


def _simple(p: ParsedStatement, message: str, suggestion: str) -> Iterator[Finding]:
    yield Finding(message, suggestion, detail=suggestion)


@rule("truncate", nodes=("TruncateStmt",))
def truncate(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """TRUNCATE is not supported.

    DSQL has no TRUNCATE. Delete the rows in batches that stay under the per-transaction row
    limit (3,000 rows by default), each batch in its own transaction, or drop and recreate the
    table when it is disposable.

    Example: `TRUNCATE events;` → repeat
    `DELETE FROM events WHERE id IN (SELECT id FROM events LIMIT 1000);` until no row is left.
    """
    return _simple(p, "TRUNCATE is not supported in DSQL",
                   "delete in batches of at most 1,000 rows per transaction, or drop and "
                   "recreate the table")


_SAVEPOINT_RULES = {
    "TRANS_STMT_SAVEPOINT": "SAVEPOINT",
    "TRANS_STMT_RELEASE": "RELEASE SAVEPOINT",
    "TRANS_STMT_ROLLBACK_TO": "ROLLBACK TO SAVEPOINT",
}


def _savepoint(p: ParsedStatement, kind: str) -> Iterator[Finding]:
    if t.transaction_kind(p) == kind:
        yield Finding(
            f"{_SAVEPOINT_RULES[kind]} is not supported in DSQL",
            "split the work into separate transactions instead of rolling back part of one",
            detail="restructure the transaction without savepoints",
        )


@rule("unsupported_savepoint", nodes=("TransactionStmt",))
def unsupported_savepoint(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """SAVEPOINT is not supported.

    DSQL transactions cannot be partially rolled back. Make each unit of work that may fail its
    own transaction and retry or compensate at the application level.

    Example: `SAVEPOINT before_load;`
    """
    return _savepoint(p, "TRANS_STMT_SAVEPOINT")


@rule("unsupported_release_savepoint", nodes=("TransactionStmt",))
def unsupported_release_savepoint(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """RELEASE SAVEPOINT is not supported (there are no savepoints).

    Example: `RELEASE SAVEPOINT before_load;`
    """
    return _savepoint(p, "TRANS_STMT_RELEASE")


@rule("unsupported_rollback_to_savepoint", nodes=("TransactionStmt",))
def unsupported_rollback_to_savepoint(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """ROLLBACK TO SAVEPOINT is not supported (there are no savepoints).

    Roll back the whole transaction and retry it instead.

    Example: `ROLLBACK TO SAVEPOINT before_load;`
    """
    return _savepoint(p, "TRANS_STMT_ROLLBACK_TO")


_UNSUPPORTED: dict[str, tuple[str, str, str]] = {
    # node type: (rule id, what, what to do)
    "CreateTrigStmt": ("unsupported_create_trigger", "CREATE TRIGGER",
                       "move the trigger's logic into the application"),
    "CreateEventTrigStmt": ("unsupported_create_trigger", "CREATE EVENT TRIGGER",
                            "move the trigger's logic into the application"),
    "CreateExtensionStmt": ("unsupported_create_extension", "CREATE EXTENSION",
                            "remove it; DSQL has no extensions (gen_random_uuid() is built in)"),
    "CompositeTypeStmt": ("unsupported_create_type", "CREATE TYPE",
                          "use plain columns, or a CHECK constraint / lookup table for enums"),
    "CreateEnumStmt": ("unsupported_create_type", "CREATE TYPE ... AS ENUM",
                       "use TEXT with a CHECK (col IN (...)) constraint or a lookup table"),
    "CreateRangeStmt": ("unsupported_create_type", "CREATE TYPE ... AS RANGE",
                        "store the bounds in two columns"),
    "VacuumStmt": ("unsupported_vacuum", "VACUUM",
                   "remove it; DSQL manages storage (ANALYZE alone is allowed)"),
    "LockStmt": ("unsupported_lock_table", "LOCK TABLE",
                 "rely on optimistic concurrency: retry the transaction on SQLSTATE 40001"),
    "ListenStmt": ("unsupported_listen", "LISTEN", "use a queue or polling outside the database"),
    "UnlistenStmt": ("unsupported_unlisten", "UNLISTEN",
                     "use a queue or polling outside the database"),
    "NotifyStmt": ("unsupported_notify", "NOTIFY", "use a queue outside the database"),
    "CreatedbStmt": ("unsupported_create_database", "CREATE DATABASE",
                     "use the single database 'postgres', with schemas to separate things"),
    "PrepareStmt": ("unsupported_prepare", "SQL-level PREPARE",
                    "use your driver's prepared statements (extended protocol)"),
    "DeclareCursorStmt": ("unsupported_declare_cursor", "DECLARE CURSOR",
                          "page through results with keyset pagination (WHERE key > :last)"),
    "DiscardStmt": ("unsupported_discard", "DISCARD",
                    "remove it; open a new connection for a clean session"),
    "CreateForeignServerStmt": ("unsupported_create_server", "CREATE SERVER (foreign data)",
                                "load the data through the application or COPY FROM STDIN"),
    "CreatePolicyStmt": ("unsupported_create_policy", "CREATE POLICY (row-level security)",
                         "filter rows in the application or through views"),
    "CreateTableSpaceStmt": ("tablespace", "CREATE TABLESPACE", "remove it"),
}


def _unsupported(rule_id: str) -> Iterator[tuple[str, tuple[str, str, str]]]:
    return ((k, v) for k, v in _UNSUPPORTED.items() if v[0] == rule_id)


def _unsupported_check(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    if p.node_type is None:
        return
    entry = _UNSUPPORTED.get(p.node_type)
    if entry is None:
        return
    if p.node_type == "VacuumStmt" and p.node is not None and not p.node.get("is_vacuumcmd"):
        return  # ANALYZE is allowed
    _, what, todo = entry
    yield Finding(f"{what} is not supported in DSQL", todo, detail=todo)


def _register_unsupported(rule_id: str, doc: str) -> None:
    nodes = tuple(k for k, _ in _unsupported(rule_id))

    def check(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
        return _unsupported_check(p, ctx)

    check.__doc__ = doc
    check.__module__ = __name__
    rule(rule_id, nodes=nodes)(check)


_register_unsupported("unsupported_create_trigger", """CREATE TRIGGER is not supported.

    DSQL has no triggers (nor event triggers). Do the work in the application, in the same
    transaction as the write that should have fired the trigger.

    Example: `CREATE TRIGGER audit AFTER UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION log();`
    """)
_register_unsupported("unsupported_create_extension", """CREATE EXTENSION is not supported.

    No extensions can be installed. `gen_random_uuid()` is available without pgcrypto.

    Example: `CREATE EXTENSION IF NOT EXISTS pgcrypto;` → remove the statement.
    """)
_register_unsupported("unsupported_create_type", """CREATE TYPE (enum, composite, range).

    DSQL rejects it.

    Replace an enum with `TEXT` plus `CHECK (col IN ('a', 'b'))` or a lookup table; a composite
    type with plain columns. `CREATE DOMAIN` is supported.

    Example: `CREATE TYPE mood AS ENUM ('happy', 'sad');`
    """)
_register_unsupported("unsupported_vacuum", """VACUUM is not supported.

    DSQL manages storage itself. `ANALYZE table` is allowed.

    Example: `VACUUM FULL orders;` → remove the statement.
    """)
_register_unsupported("unsupported_lock_table", """LOCK TABLE is not supported.

    Concurrency control is optimistic: conflicting transactions fail at COMMIT with SQLSTATE
    40001 and must be retried whole.

    Example: `LOCK TABLE orders IN EXCLUSIVE MODE;`
    """)
_register_unsupported("unsupported_listen", """LISTEN is not supported.

    Use a message queue or polling outside the database.

    Example: `LISTEN order_events;`
    """)
_register_unsupported("unsupported_unlisten", """UNLISTEN is not supported (there is no LISTEN).

    Example: `UNLISTEN order_events;`
    """)
_register_unsupported("unsupported_notify", """NOTIFY is not supported.

    Publish events through a queue outside the database.

    Example: `NOTIFY order_events, 'created';`
    """)
_register_unsupported("unsupported_discard", """DISCARD is not supported.

    Open a new connection when you need a clean session.

    Example: `DISCARD ALL;`
    """)
_register_unsupported("unsupported_create_server", """CREATE SERVER is not supported.

    DSQL has no foreign data wrappers.

    Example: `CREATE SERVER legacy FOREIGN DATA WRAPPER postgres_fdw;`
    """)
_register_unsupported("unsupported_create_database", """CREATE DATABASE is not supported.

    A cluster has exactly one database, `postgres`. Separate applications with schemas.

    Example: `CREATE DATABASE shop;`
    """)
_register_unsupported("unsupported_prepare", """SQL-level PREPARE is not supported.

    Drivers' protocol-level prepared statements work; the SQL `PREPARE` statement does not.

    Example: `PREPARE get_order AS SELECT * FROM orders WHERE id = $1;`
    """)
_register_unsupported("unsupported_declare_cursor", """DECLARE CURSOR is not supported.

    Page through large results with keyset pagination (`WHERE key > :last ORDER BY key LIMIT n`).

    Example: `DECLARE c CURSOR FOR SELECT * FROM orders;`
    """)
_register_unsupported("unsupported_create_policy", """CREATE POLICY is not supported.

    DSQL has no row-level security.

    Enforce row filtering in the application or through views.

    Example: `CREATE POLICY tenant_rows ON orders USING (tenant_id = current_setting('app.t'));`
    """)


@rule("unsupported_materialized_view", nodes=("CreateTableAsStmt", "RefreshMatViewStmt"))
def unsupported_materialized_view(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """Materialized views are not supported.

    Use a regular view, or a table the application refreshes.

    Example: `CREATE MATERIALIZED VIEW daily AS SELECT ...;`
    """
    assert p.node is not None
    if p.node_type == "RefreshMatViewStmt" or p.node.get("objtype") == "OBJECT_MATVIEW":
        todo = "use a regular view, or a table the application refreshes"
        yield Finding("materialized views are not supported in DSQL", todo, detail=todo)


@rule("unsupported_create_function_non_sql", nodes=("CreateFunctionStmt",))
def unsupported_create_function_non_sql(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """Functions must be written in LANGUAGE sql.

    DSQL runs only SQL-language functions: PL/pgSQL, C and other languages are rejected.
    Rewrite the function in SQL or move the logic into the application.

    Example: `CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;`
    → `CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;`
    """
    assert p.node is not None
    if p.node.get("is_procedure"):
        return
    language = t.str_arg(t.options(p.node.get("options")).get("language")).lower()
    if language not in ("", "sql"):
        todo = "rewrite it as LANGUAGE sql, or move the logic into the application"
        yield Finding(f"CREATE FUNCTION in LANGUAGE {language} is not supported in DSQL; only "
                      "LANGUAGE sql", todo, detail=todo)


@rule("unsupported_create_procedure", nodes=("CreateFunctionStmt",))
def unsupported_create_procedure(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """CREATE PROCEDURE is not supported.

    Use a `LANGUAGE sql` function, or run the statements from the application.

    Example: `CREATE PROCEDURE archive() LANGUAGE sql AS $$ DELETE FROM old $$;`
    """
    assert p.node is not None
    if p.node.get("is_procedure"):
        todo = "use a LANGUAGE sql function or run the statements from the application"
        yield Finding("CREATE PROCEDURE is not supported in DSQL", todo, detail=todo)


@rule("create_table_as", nodes=("CreateTableAsStmt", "SelectStmt"),
      prefilter=any_of("into", "create"))
def create_table_as(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """CREATE TABLE ... AS SELECT (and SELECT ... INTO) is not supported.

    Create the table with an explicit definition, then copy the rows with batched
    `INSERT INTO ... SELECT` statements.

    Example: `CREATE TABLE archive AS SELECT * FROM orders;`
    """
    assert p.node is not None
    if p.node_type == "SelectStmt":
        if not p.node.get("intoClause"):
            return
    elif p.node.get("objtype") == "OBJECT_MATVIEW":
        return
    todo = ("create the table with an explicit definition, then copy rows with batched "
            "INSERT INTO ... SELECT")
    yield Finding("CREATE TABLE ... AS SELECT is not supported in DSQL", todo, detail=todo)


@rule("unsupported_set_role", nodes=("VariableSetStmt",), prefilter=any_of("role"))
def unsupported_set_role(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """SET ROLE is not supported.

    Connect as the role you need: with IAM authentication each role gets its own token.

    Example: `SET ROLE app_writer;`
    """
    assert p.node is not None
    if str(p.node.get("name", "")).lower() == "role":
        todo = "connect as that role instead (IAM token for the role)"
        yield Finding("SET ROLE is not supported in DSQL", todo, detail=todo)


@rule("at_unsupported_row_level_security", nodes=("AlterTableStmt",), prefilter=any_of("security"))
def at_unsupported_row_level_security(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """Row-level security cannot be enabled.

    `ALTER TABLE ... ENABLE/FORCE ROW LEVEL SECURITY` is rejected. Filter rows in the
    application, or expose views.

    Example: `ALTER TABLE orders ENABLE ROW LEVEL SECURITY;`
    """
    assert p.node is not None
    for cmd in t.alter_cmds(p.node):
        if cmd.get("subtype") in ("AT_EnableRowSecurity", "AT_ForceRowSecurity"):
            todo = "filter rows in the application or through views"
            yield Finding("row-level security is not supported in DSQL", todo, detail=todo)


@rule("temp_table", nodes=("CreateStmt",), prefilter=any_of("temp"))
def temp_table(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """Temporary tables are not supported.

    Create a regular table (and drop it when done). `--fix` removes `TEMPORARY`; the table then
    outlives the session and is visible to everyone, so the fix carries a warning.

    Example: `CREATE TEMP TABLE staging (id bigint);` → `CREATE TABLE staging (id bigint);`
    """
    assert p.node is not None
    if (p.node.get("relation") or {}).get("relpersistence") == "t":
        yield Finding(
            "temporary tables are not supported in DSQL",
            "create a regular table and drop it when finished",
            location=(p.node.get("relation") or {}).get("location"),
            status=FixStatus.FIXED_WITH_WARNING,
            detail="removed TEMPORARY: the table is now permanent and shared; drop it yourself "
            "when finished",
        )


@temp_table.fixer
def _fix_temp_table(target: FixTarget, ctx: LintContext) -> None:
    target.tree.relation.relpersistence = "p"
    target.tree.oncommit = enums.OnCommitAction.ONCOMMIT_NOOP


@rule("partition_by", nodes=("CreateStmt",), prefilter=any_of("partition"))
def partition_by(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """Table partitioning (PARTITION BY) is not supported.

    DSQL distributes data itself. `--fix` drops `PARTITION BY` (with a warning: queries that
    relied on partition pruning or partition-wise maintenance change). See also
    `unsupported_partition_of`.

    Example: `CREATE TABLE events (at timestamptz, ...) PARTITION BY RANGE (at);`
    """
    assert p.node is not None
    if p.node.get("partspec"):
        yield Finding("PARTITION BY is not supported in DSQL",
                      "remove the partitioning clause; DSQL distributes data automatically",
                      status=FixStatus.FIXED_WITH_WARNING,
                      detail="removed PARTITION BY: the table is no longer partitioned")


_PARTITION_CMDS = frozenset({"AT_AttachPartition", "AT_DetachPartition",
                             "AT_DetachPartitionFinalize"})


@rule("unsupported_partition_of", nodes=("CreateStmt", "AlterTableStmt"),
      prefilter=any_of("partition"))
def unsupported_partition_of(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """CREATE TABLE ... PARTITION OF, ATTACH PARTITION and DETACH PARTITION are not supported.

    There are no partitions: create an ordinary table, or merge the partition's rows into the
    parent table (`dsql-migrate convert` folds a pg_dump's partitions into their parent, rows
    included). pg_dump creates each partition as a table and then attaches it with
    `ALTER TABLE ONLY parent ATTACH PARTITION child ...`: `--fix` removes those statements (and
    DETACH PARTITION), as it removes the parent's `PARTITION BY` (`partition_by`), with a
    warning: the former partition stays a separate, ordinary table, and its rows are not in the
    parent.

    Example: `ALTER TABLE ONLY events ATTACH PARTITION events_2026 FOR VALUES FROM (...) TO
    (...);`
    """
    assert p.node is not None
    if p.node_type == "AlterTableStmt":
        for cmd in t.alter_cmds(p.node):
            if cmd.get("subtype") in _PARTITION_CMDS:
                child = t.relname(((cmd.get("def") or {}).get("PartitionCmd") or {})
                                  .get("name"))
                parent = t.relname(p.node.get("relation"))
                if cmd["subtype"] == "AT_AttachPartition":
                    yield Finding(
                        "ATTACH PARTITION is not supported in DSQL", "remove it; move the rows "
                        f"of {child} into {parent} (INSERT INTO {parent} SELECT * FROM {child})",
                        status=FixStatus.FIXED_WITH_WARNING,
                        detail=f"removed ATTACH PARTITION {child}: it stays a separate table; "
                        f"its rows are not in {parent} (copy them with INSERT INTO {parent} "
                        f"SELECT * FROM {child}, or use dsql-migrate convert)")
                else:
                    yield Finding("DETACH PARTITION is not supported in DSQL",
                                  "remove it: DSQL has no partitions",
                                  status=FixStatus.FIXED_WITH_WARNING,
                                  detail=f"removed DETACH PARTITION {child}: DSQL has no "
                                  "partitions to detach")
        return
    if p.node.get("partbound"):
        todo = "create an ordinary table, or merge the rows into the parent table"
        yield Finding("CREATE TABLE ... PARTITION OF is not supported in DSQL", todo, detail=todo)


@unsupported_partition_of.fixer
def _fix_partition_cmds(target: FixTarget, ctx: LintContext) -> None:
    tree = target.tree
    if not hasattr(tree, "cmds"):
        return  # PARTITION OF: nothing to fix automatically
    kept = tuple(c for c in tree.cmds or () if getattr(c, "subtype", None) not in (
        enums.AlterTableType.AT_AttachPartition, enums.AlterTableType.AT_DetachPartition,
        enums.AlterTableType.AT_DetachPartitionFinalize))
    if kept:
        tree.cmds = kept
    else:
        target.replacement = []


@partition_by.fixer
def _fix_partition_by(target: FixTarget, ctx: LintContext) -> None:
    target.tree.partspec = None


@rule("inherits", nodes=("CreateStmt",), prefilter=any_of("inherits"))
def inherits(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """Table inheritance (INHERITS) is not supported.

    `--fix` removes the clause, with a warning: the parent's columns are no longer inherited and
    queries on the parent no longer see the child's rows.

    Example: `CREATE TABLE managers (level int) INHERITS (employees);`
    """
    assert p.node is not None
    if p.node.get("inhRelations") and not p.node.get("partbound"):
        yield Finding("INHERITS is not supported in DSQL",
                      "copy the parent's columns into the table definition",
                      status=FixStatus.FIXED_WITH_WARNING,
                      detail="removed INHERITS: the parent's columns are not inherited any more; "
                      "add them to the table explicitly")


@inherits.fixer
def _fix_inherits(target: FixTarget, ctx: LintContext) -> None:
    target.tree.inhRelations = None


@rule("tablespace", nodes=("CreateStmt", "IndexStmt", "CreateTableSpaceStmt"),
      prefilter=any_of("tablespace"))
def tablespace(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """Tablespaces are not supported.

    `--fix` removes `TABLESPACE name` from CREATE TABLE / CREATE INDEX (storage placement is
    managed by DSQL). `CREATE TABLESPACE` itself must be removed by hand.

    Example: `CREATE TABLE t (id bigint PRIMARY KEY) TABLESPACE fast;`
    """
    assert p.node is not None
    if p.node_type == "CreateTableSpaceStmt":
        yield Finding("CREATE TABLESPACE is not supported in DSQL", "remove the statement",
                      detail="remove the statement")
    elif p.node.get("tablespacename") or p.node.get("tableSpace"):
        yield Finding("TABLESPACE is not supported in DSQL", "remove the TABLESPACE clause",
                      status=FixStatus.FIXED, detail="removed the TABLESPACE clause")


@tablespace.fixer
def _fix_tablespace(target: FixTarget, ctx: LintContext) -> None:
    node = target.tree
    if hasattr(node, "tablespacename"):
        node.tablespacename = None
    if hasattr(node, "tableSpace"):
        node.tableSpace = None


@rule("unsupported_create_table_with_storage_parameters", nodes=("CreateStmt",),
      prefilter=any_of("with"))
def unsupported_create_table_with_storage_parameters(
    p: ParsedStatement, ctx: LintContext
) -> Iterator[Finding]:
    """Storage parameters (`WITH (...)`) on CREATE TABLE are not supported.

    `--fix` removes the clause; DSQL manages storage itself.

    Example: `CREATE TABLE t (id bigint PRIMARY KEY) WITH (fillfactor = 70);`
    """
    assert p.node is not None
    if p.node.get("options"):
        yield Finding("CREATE TABLE ... WITH (storage parameters) is not supported in DSQL",
                      "remove the WITH (...) clause", status=FixStatus.FIXED,
                      detail="removed the WITH (...) storage parameters")


@unsupported_create_table_with_storage_parameters.fixer
def _fix_storage(target: FixTarget, ctx: LintContext) -> None:
    target.tree.options = None


@rule("exclusion_constraint", nodes=("CreateStmt", "AlterTableStmt"), prefilter=any_of("exclude"))
def exclusion_constraint(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """Exclusion constraints are not supported.

    Enforce the rule in the application (check for overlaps in the same transaction as the
    write; optimistic concurrency makes the check safe against concurrent writers).

    Example: `CREATE TABLE booking (room int, during tstzrange, EXCLUDE USING gist (...));`
    """
    assert p.node is not None
    if p.node_type == "CreateStmt":
        cons = list(t.table_constraints(p.node))
    else:
        cons = [c for c in map(t.added_constraint, t.alter_cmds(p.node)) if c]
    for c in cons:
        if c.get("contype") == "CONSTR_EXCLUSION":
            todo = "enforce the exclusion in the application"
            yield Finding("exclusion constraints are not supported in DSQL", todo,
                          location=c.get("location"), detail=todo)


@rule("unsupported_copy_from_file", nodes=("CopyStmt",), prefilter=any_of("'"))
def unsupported_copy_from_file(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """COPY to or from a server-side file or program is not supported.

    `COPY ... FROM STDIN` / `TO STDOUT` work (psql's `\\copy` uses them).

    Example: `COPY orders FROM '/data/orders.csv' CSV;` → `\\copy orders FROM 'orders.csv' CSV`
    """
    assert p.node is not None
    if p.node.get("filename") or p.node.get("is_program"):
        todo = "use COPY ... FROM STDIN (psql's \\copy) or load through the application"
        yield Finding("COPY with a server-side file or program is not supported in DSQL", todo,
                      detail=todo)


@rule("unsupported_temp_view", nodes=("ViewStmt",), prefilter=any_of("temp"))
def unsupported_temp_view(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """Temporary views are not supported (there are no temporary objects).

    Example: `CREATE TEMP VIEW recent AS SELECT ...;` → `CREATE VIEW recent AS SELECT ...;`
    """
    assert p.node is not None
    if (p.node.get("view") or {}).get("relpersistence") == "t":
        todo = "create a regular view (and drop it when done)"
        yield Finding("temporary views are not supported in DSQL", todo, detail=todo)


_DROP_KINDS = {
    "OBJECT_TYPE": ("unsupported_drop_type", "DROP TYPE"),
    "OBJECT_POLICY": ("unsupported_drop_policy", "DROP POLICY"),
    "OBJECT_MATVIEW": ("unsupported_drop_materialized_view", "DROP MATERIALIZED VIEW"),
}


def _drop_of(p: ParsedStatement, rule_id: str) -> Iterator[Finding]:
    assert p.node is not None
    entry = _DROP_KINDS.get(str(p.node.get("removeType", "")))
    if entry is not None and entry[0] == rule_id:
        todo = "remove it: DSQL has no such objects"
        yield Finding(f"{entry[1]} is not supported in DSQL", todo, detail=todo)


@rule("unsupported_drop_type", nodes=("DropStmt",), prefilter=any_of("type"))
def unsupported_drop_type(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """DROP TYPE is not supported (DSQL has no user-defined types; see DROP DOMAIN).

    Example: `DROP TYPE IF EXISTS mood;`
    """
    return _drop_of(p, "unsupported_drop_type")


@rule("unsupported_drop_trigger", nodes=("DropStmt",), prefilter=any_of("trigger"))
def unsupported_drop_trigger(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """DROP TRIGGER without IF EXISTS always fails (DSQL has no triggers).

    DSQL accepts `DROP TRIGGER IF EXISTS name ON table` (there is nothing to drop, so it does
    nothing: scripts written for PostgreSQL keep working), but a plain `DROP TRIGGER` fails with
    42704 because no trigger can exist. Add `IF EXISTS`, or remove the statement.

    Example: `DROP TRIGGER audit ON orders;` → `DROP TRIGGER IF EXISTS audit ON orders;`
    """
    todo = "add IF EXISTS, or remove the statement: DSQL has no triggers"
    yield Finding("DROP TRIGGER without IF EXISTS always fails in DSQL (there are no triggers)",
                  todo, detail=todo)


@rule("unsupported_drop_policy", nodes=("DropStmt",), prefilter=any_of("policy"))
def unsupported_drop_policy(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """DROP POLICY is not supported (DSQL has no row-level security).

    Example: `DROP POLICY tenant_rows ON orders;`
    """
    return _drop_of(p, "unsupported_drop_policy")


@rule("unsupported_drop_materialized_view", nodes=("DropStmt",),
      prefilter=any_of("materialized"))
def unsupported_drop_materialized_view(
    p: ParsedStatement, ctx: LintContext
) -> Iterator[Finding]:
    """DROP MATERIALIZED VIEW is not supported (DSQL has no materialized views).

    Example: `DROP MATERIALIZED VIEW daily;`
    """
    return _drop_of(p, "unsupported_drop_materialized_view")


@rule("unsupported_alter_type", nodes=("AlterEnumStmt", "AlterTableStmt"),
      prefilter=any_of("type"))
def unsupported_alter_type(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """ALTER TYPE is not supported (DSQL has no enum or composite types).

    Example: `ALTER TYPE mood ADD VALUE 'meh';`
    """
    if p.node_type == "AlterTableStmt" and '"objtype":"OBJECT_TYPE"' not in (p.json or ""):
        return
    todo = "use a CHECK constraint or a lookup table instead of a type"
    yield Finding("ALTER TYPE is not supported in DSQL", todo, detail=todo)


@rule("unsupported_alter_policy", nodes=("AlterPolicyStmt",))
def unsupported_alter_policy(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """ALTER POLICY is not supported (DSQL has no row-level security).

    Example: `ALTER POLICY tenant_rows ON orders USING (true);`
    """
    todo = "filter rows in the application or through views"
    yield Finding("ALTER POLICY is not supported in DSQL", todo, detail=todo)


table_rule("unsupported_two_phase_commit", """Two-phase commit is not supported.

    `PREPARE TRANSACTION`, `COMMIT PREPARED` and `ROLLBACK PREPARED` are rejected: commit each
    transaction on its own and make the work idempotent so that a retry is safe.

    Example: `PREPARE TRANSACTION 'tx1';`
    """, __name__)
table_rule("unsupported_create_language", """CREATE LANGUAGE is not supported.

    Functions can only be written in `LANGUAGE sql`. (`CREATE LANGUAGE name` without a handler
    is PostgreSQL's old spelling of CREATE EXTENSION: see `unsupported_create_extension`.)

    Example: `CREATE LANGUAGE plsample HANDLER plsample_call_handler;`
    """, __name__)
table_rule("unsupported_do", """DO blocks are not supported.

    A `DO` block runs procedural code (PL/pgSQL), which DSQL does not have. Run the statements
    from the application, or write a `LANGUAGE sql` function.

    Example: `DO $$ BEGIN PERFORM 1; END $$;`
    """, __name__)
table_rule("unsupported_create_rule", """CREATE RULE is not supported.

    Query rewrite rules are, like triggers, not available: do the work in the application.

    Example: `CREATE RULE keep AS ON DELETE TO orders DO INSTEAD NOTHING;`
    """, __name__)
table_rule("unsupported_statistics", """CREATE/ALTER/DROP STATISTICS needs the `current` profile.

    Extended statistics arrived in DSQL on 2026-08-27. In the `classic` profile remove the
    statement (DSQL maintains ordinary statistics itself; `ANALYZE table` is allowed).

    Example (classic): `CREATE STATISTICS orders_stats (dependencies) ON customer_id, region
    FROM orders;`
    """, __name__)
