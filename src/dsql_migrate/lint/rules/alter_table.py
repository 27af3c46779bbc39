"""ALTER TABLE forms and constraints (DSQL.md §1, §6)."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import Any

from pglast import enums

from ...profiles import Capability
from ...sql import ParsedStatement, quote_ident, quote_qualified
from .. import _tree as t
from ..core import Finding, FixStatus, LintContext, any_of, rule
from ..fixer import FixTarget, render_tree

_ALTER = ("AlterTableStmt",)


def _table_sql(tree: Any) -> str:
    rel = tree.relation
    return quote_qualified(rel.schemaname, rel.relname)


def _constraint_name(table: str, *parts: str) -> str:
    name = "_".join((table.rsplit(".", 1)[-1], *parts))
    while len(name.encode("utf-8")) > 63:
        name = name[:-1]
    return name


def _validate(table_sql: str, name: str) -> str:
    return f"ALTER TABLE ASYNC {table_sql} VALIDATE CONSTRAINT {quote_ident(name)}"


def _cmds(p: ParsedStatement, subtype: str) -> Iterator[t.Node]:
    assert p.node is not None
    for cmd in t.alter_cmds(p.node):
        if cmd.get("subtype") == subtype:
            yield cmd


# --- ADD COLUMN with inline constraints ------------------------------------------------------

_FIXABLE_INLINE = {"CONSTR_DEFAULT", "CONSTR_NOTNULL", "CONSTR_CHECK", "CONSTR_FOREIGN",
                   "CONSTR_NULL"}


def _add_column_plan(col: t.Node, ctx: LintContext) -> tuple[list[str], bool]:
    """(names of inline parts, fixable) for an ADD COLUMN's constraints."""
    kinds = [c.get("contype", "") for c in t.column_constraints(col)]
    if col.get("collClause"):
        kinds.append("COLLATE")
    current = ctx.profile.allows(Capability.CHECK_NOT_VALID)
    fixable = all(k in _FIXABLE_INLINE for k in kinds)
    if any(k in ("CONSTR_NOTNULL", "CONSTR_CHECK") for k in kinds) and not current:
        fixable = False
    if "CONSTR_FOREIGN" in kinds and not ctx.profile.allows(Capability.FOREIGN_KEYS):
        fixable = False
    return kinds, fixable


_INLINE_WORDS = any_of("default", "null", "check", "references", "unique", "primary",
                       "generated", "collate", "constraint", "identity")

_KIND_WORDS = {"CONSTR_DEFAULT": "DEFAULT", "CONSTR_NOTNULL": "NOT NULL", "CONSTR_CHECK": "CHECK",
               "CONSTR_FOREIGN": "REFERENCES", "CONSTR_UNIQUE": "UNIQUE",
               "CONSTR_PRIMARY": "PRIMARY KEY", "CONSTR_IDENTITY": "GENERATED AS IDENTITY",
               "CONSTR_GENERATED": "GENERATED ALWAYS AS", "CONSTR_NULL": "NULL",
               "COLLATE": "COLLATE"}


@rule("add_column_constraint", nodes=_ALTER,
      prefilter=lambda lower: "add" in lower and _INLINE_WORDS(lower))
def add_column_constraint(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """ADD COLUMN with a DEFAULT or any inline constraint is not supported.

    DSQL adds only bare columns (`ADD COLUMN name type`). `--fix` splits the statement
    (DSQL.md §6): the bare `ADD COLUMN`; for a DEFAULT an `UPDATE ... SET col = <default>
    WHERE col IS NULL` backfill (run it in batches of at most 3,000 rows on big tables; the
    planner does) and, in the `current` profile, `ALTER COLUMN ... SET DEFAULT`; for NOT NULL,
    CHECK and REFERENCES (`current` profile) a `NOT VALID` constraint followed by
    `ALTER TABLE ASYNC ... VALIDATE CONSTRAINT`. The fix carries a warning: NOT NULL becomes a
    CHECK constraint, the classic profile keeps no default for new rows, and the backfill is a
    data change. UNIQUE, PRIMARY KEY, identity and generated columns are not fixable: recreate
    the table.

    Example (current): `ALTER TABLE t ADD COLUMN status text NOT NULL DEFAULT 'new';` →
    `ALTER TABLE t ADD COLUMN status text;`
    `UPDATE t SET status = 'new' WHERE status IS NULL;`
    `ALTER TABLE t ALTER COLUMN status SET DEFAULT 'new';`
    `ALTER TABLE t ADD CONSTRAINT t_status_not_null CHECK (status IS NOT NULL) NOT VALID;`
    `ALTER TABLE ASYNC t VALIDATE CONSTRAINT t_status_not_null;`
    """
    if p.json is not None and '"AT_AddColumn"' not in p.json:
        return
    assert p.node is not None
    for cmd in t.alter_cmds(p.node):
        col = t.added_column(cmd)
        if col is None or not (col.get("constraints") or col.get("collClause")):
            continue
        kinds, fixable = _add_column_plan(col, ctx)
        words = ", ".join(dict.fromkeys(_KIND_WORDS.get(k, k) for k in kinds))
        name = col.get("colname")
        if fixable:
            how = ["added the bare column"]
            if "CONSTR_DEFAULT" in kinds:
                how.append("an UPDATE backfill of the default (a data change; batch it on "
                           "tables over 3,000 rows)")
                if ctx.profile.allows(Capability.ALTER_COLUMN_DEFAULT):
                    how.append("SET DEFAULT")
                else:
                    how.append("no default for new rows (the classic profile cannot SET "
                               "DEFAULT): insert the value explicitly")
            if any(k in ("CONSTR_NOTNULL", "CONSTR_CHECK", "CONSTR_FOREIGN") for k in kinds):
                how.append("NOT VALID constraints validated by ALTER TABLE ASYNC (NOT NULL "
                           "becomes CHECK (col IS NOT NULL))")
            yield Finding(f"ADD COLUMN {name} with inline {words} is not supported in DSQL",
                          "add the bare column, backfill it, then add defaults and constraints "
                          "separately", location=col.get("location"),
                          status=FixStatus.FIXED_WITH_WARNING, detail="; ".join(how))
        else:
            todo = (f"add the bare column and handle {words} separately; UNIQUE/PRIMARY KEY/"
                    "identity/NOT NULL (classic) need a table recreation")
            yield Finding(f"ADD COLUMN {name} with inline {words} is not supported in DSQL",
                          todo, location=col.get("location"), detail=todo)


@add_column_constraint.fixer
def _fix_add_column(target: FixTarget, ctx: LintContext) -> None:
    tree = target.tree
    table = _table_sql(tree)
    bare = tree.relation.relname
    for cmd in tree.cmds or ():
        if cmd.subtype != enums.AlterTableType.AT_AddColumn:
            continue
        col = cmd.def_
        cons = list(col.constraints or ())
        if not cons:
            continue
        kinds = [c.contype.name for c in cons]
        if col.collClause is not None:
            kinds.append("COLLATE")
        if not _add_column_plan({"constraints": [{"Constraint": {"contype": k}} for k in kinds
                                                 if k != "COLLATE"],
                                 "collClause": "COLLATE" in kinds or None}, ctx)[1]:
            continue
        colname = quote_ident(col.colname)
        col.constraints = None
        for c in cons:
            if c.contype == enums.ConstrType.CONSTR_DEFAULT:
                expr = render_tree(c.raw_expr)
                target.after.append(
                    f"UPDATE {table} SET {colname} = {expr} WHERE {colname} IS NULL")
                if ctx.profile.allows(Capability.ALTER_COLUMN_DEFAULT):
                    target.after.append(
                        f"ALTER TABLE {table} ALTER COLUMN {colname} SET DEFAULT {expr}")
        for c in cons:
            if c.contype == enums.ConstrType.CONSTR_NOTNULL:
                cname = _constraint_name(bare, col.colname, "not_null")
                check = f"CHECK ({colname} IS NOT NULL)"
            elif c.contype == enums.ConstrType.CONSTR_CHECK:
                cname = c.conname or _constraint_name(bare, col.colname, "check")
                check = f"CHECK ({render_tree(c.raw_expr)})"
            elif c.contype == enums.ConstrType.CONSTR_FOREIGN:
                cname = c.conname or _constraint_name(bare, col.colname, "fkey")
                c.fk_attrs = None
                c.conname = None
                check = f"FOREIGN KEY ({colname}) " + render_tree(c).strip()
            else:
                continue
            target.after.append(
                f"ALTER TABLE {table} ADD CONSTRAINT {quote_ident(cname)} {check} NOT VALID")
            target.after.append(_validate(table, cname))


# --- forms rejected in every profile ----------------------------------------------------------


@rule("at_unsupported_alter_column_set_type", nodes=_ALTER, prefilter=any_of("type"))
def at_unsupported_alter_column_set_type(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """ALTER COLUMN ... TYPE is not supported.

    Changing a column's type needs a table recreation: create the new table, copy the rows in
    batches with the cast, verify, swap (`dsql-migrate plan` does this).

    Example: `ALTER TABLE t ALTER COLUMN amount TYPE numeric(12,2);`
    """
    for cmd in _cmds(p, "AT_AlterColumnType"):
        todo = "recreate the table with the new type and copy the rows in batches"
        yield Finding(f"ALTER COLUMN {cmd.get('name')} TYPE is not supported in DSQL", todo,
                      detail=todo)


@rule("at_unsupported_alter_column_set_not_null", nodes=_ALTER, prefilter=any_of("null"))
def at_unsupported_alter_column_set_not_null(
    p: ParsedStatement, ctx: LintContext
) -> Iterator[Finding]:
    """ALTER COLUMN ... SET NOT NULL is not supported.

    In the `current` profile `--fix` adds `CHECK (col IS NOT NULL) NOT VALID` and validates it
    with `ALTER TABLE ASYNC ... VALIDATE CONSTRAINT` (a warning: it is a CHECK constraint, not
    the column's NOT NULL attribute). In `classic`, recreate the table.

    Example (current): `ALTER TABLE t ALTER COLUMN email SET NOT NULL;` →
    `ALTER TABLE t ADD CONSTRAINT t_email_not_null CHECK (email IS NOT NULL) NOT VALID;`
    `ALTER TABLE ASYNC t VALIDATE CONSTRAINT t_email_not_null;`
    """
    fixable = ctx.profile.allows(Capability.CHECK_NOT_VALID)
    for cmd in _cmds(p, "AT_SetNotNull"):
        if fixable:
            yield Finding(f"ALTER COLUMN {cmd.get('name')} SET NOT NULL is not supported in "
                          "DSQL", "use CHECK (col IS NOT NULL) NOT VALID and validate it",
                          status=FixStatus.FIXED_WITH_WARNING,
                          detail="replaced by a NOT VALID CHECK (col IS NOT NULL) constraint "
                          "validated asynchronously; the column itself stays nullable in the "
                          "catalog")
        else:
            todo = "recreate the table with the column NOT NULL"
            yield Finding(f"ALTER COLUMN {cmd.get('name')} SET NOT NULL is not supported in "
                          "DSQL", todo, detail=todo)


@at_unsupported_alter_column_set_not_null.fixer
def _fix_set_not_null(target: FixTarget, ctx: LintContext) -> None:
    tree = target.tree
    table = _table_sql(tree)
    out: list[str] = []
    kept = []
    for cmd in tree.cmds or ():
        if cmd.subtype == enums.AlterTableType.AT_SetNotNull:
            cname = _constraint_name(tree.relation.relname, cmd.name, "not_null")
            out.append(f"ALTER TABLE {table} ADD CONSTRAINT {quote_ident(cname)} "
                       f"CHECK ({quote_ident(cmd.name)} IS NOT NULL) NOT VALID")
            out.append(_validate(table, cname))
        else:
            kept.append(cmd)
    if kept:
        tree.cmds = tuple(kept)
        target.after.extend(out)
    else:
        target.replacement = out


_FOLD_STOPS = ("CreateStmt", "DropStmt", "RenameStmt")
_LOADS = ("InsertStmt", "CopyStmt", "UpdateStmt", "MergeStmt")


def _same_table(a: str, b: str) -> bool:
    return a.removeprefix("public.") == b.removeprefix("public.")


def _fold_into(p: ParsedStatement, ctx: LintContext, contype: str) -> ParsedStatement | None:
    """The earlier CREATE TABLE of this ALTER TABLE's table, if the constraint can move there."""
    table = t.statement_relation(p)
    # only these statements can end the backward scan: walk them, not every statement
    candidates = ctx.indices_of(_FOLD_STOPS)
    for i in reversed(candidates[: bisect.bisect_left(candidates, p.statement.index)]):
        q = ctx.statements[i]
        if q.node_type == "CreateStmt" and _same_table(t.statement_relation(q), table):
            if contype == "CONSTR_PRIMARY" and q.node is not None and any(
                c.get("contype") == "CONSTR_PRIMARY"
                for c in [*t.table_constraints(q.node),
                          *(k for col in t.column_defs(q.node) for k in t.column_constraints(col))]
            ):
                return None  # it already has a primary key
            return q
        if q.node_type in ("DropStmt", "RenameStmt") and table.rsplit(".", 1)[-1] in q.lower:
            return None
    return None


def _loaded_between(ctx: LintContext, create: ParsedStatement, p: ParsedStatement) -> bool:
    name = t.statement_relation(p).rsplit(".", 1)[-1]
    loads = ctx.indices_of(_LOADS)
    first = bisect.bisect_right(loads, create.statement.index)
    last = bisect.bisect_left(loads, p.statement.index)
    return any(name in ctx.statements[i].lower for i in loads[first:last])


def _fold_finding(p: ParsedStatement, ctx: LintContext, contype: str, what: str,
                  todo: str) -> Finding:
    create = _fold_into(p, ctx, contype)
    message = f"ALTER TABLE ADD {what} is not supported in DSQL"
    if create is None:
        return Finding(message, todo, detail=todo)
    if _loaded_between(ctx, create, p):
        return Finding(message, f"declare the {what} in the CREATE TABLE",
                       status=FixStatus.FIXED_WITH_WARNING,
                       detail=f"moved the {what} into CREATE TABLE (line {create.line}): it now "
                       "exists while the rows are loaded, so a duplicate fails the load instead "
                       "of this statement")
    return Finding(message, f"declare the {what} in the CREATE TABLE", status=FixStatus.FIXED,
                   detail=f"moved the {what} into CREATE TABLE (line {create.line})")


def _fold_fixer(contype_name: str) -> Any:
    def fix(target: FixTarget, ctx: LintContext) -> None:
        contype = getattr(enums.ConstrType, contype_name)
        create = _fold_into(target.parsed, ctx, contype_name)
        if create is None:
            return
        tree = target.tree
        moved = [c for c in tree.cmds or ()
                 if c.subtype == enums.AlterTableType.AT_AddConstraint
                 and c.def_.contype == contype and not c.def_.indexname]
        if not moved:
            return
        ctree = ctx.fix_target(create).tree
        ctree.tableElts = (*(ctree.tableElts or ()), *(c.def_ for c in moved))
        kept = tuple(c for c in tree.cmds if all(c is not m for m in moved))
        if kept:
            tree.cmds = kept
        else:
            target.replacement = []

    return fix


@rule("at_unsupported_add_primary_key", nodes=_ALTER, prefilter=any_of("primary"))
def at_unsupported_add_primary_key(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """ADD PRIMARY KEY is not supported; a table's primary key is fixed at CREATE TABLE.

    When the table is created earlier in the same script (the `pg_dump` layout), `--fix`
    moves the key into the CREATE TABLE (`fixed`; `fixed_with_warning` when rows are loaded in
    between, since the key then checks them during the load). Otherwise recreate the table with
    the key.

    Example: `CREATE TABLE a (id bigint NOT NULL);`
    `ALTER TABLE ONLY a ADD CONSTRAINT a_pkey PRIMARY KEY (id);` →
    `CREATE TABLE a (id bigint NOT NULL, CONSTRAINT a_pkey PRIMARY KEY (id));`
    """
    for cmd in _cmds(p, "AT_AddConstraint"):
        con = t.added_constraint(cmd) or {}
        if con.get("contype") == "CONSTR_PRIMARY" and not con.get("indexname"):
            yield _fold_finding(p, ctx, "CONSTR_PRIMARY", "PRIMARY KEY",
                                "declare the primary key in CREATE TABLE (recreate the table)")


at_unsupported_add_primary_key.fixer(_fold_fixer("CONSTR_PRIMARY"))


@rule("at_unsupported_add_unique", nodes=_ALTER, prefilter=any_of("unique"))
def at_unsupported_add_unique(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """ADD CONSTRAINT ... UNIQUE (cols) is not supported.

    When the table is created earlier in the same script, `--fix` moves the constraint into the
    CREATE TABLE. Otherwise create the index first, wait for it, then attach it (current
    profile): `CREATE UNIQUE INDEX ASYNC ux ON t (a);` → `CALL sys.wait_for_job('<job_id>');` →
    `ALTER TABLE t ADD CONSTRAINT ux UNIQUE USING INDEX ux;`. In the `classic` profile a unique
    index (without a constraint) is the only option. That path is not automated: the wait
    needs the job id returned at run time.

    Example: `ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);`
    """
    using_index_ok = ctx.profile.allows(Capability.ADD_UNIQUE_USING_INDEX)
    for cmd in _cmds(p, "AT_AddConstraint"):
        con = t.added_constraint(cmd) or {}
        if con.get("contype") != "CONSTR_UNIQUE":
            continue
        if con.get("indexname"):
            continue  # see at_unsupported_unique_using_index
        todo = ("CREATE UNIQUE INDEX ASYNC, wait for the job, then ADD CONSTRAINT ... UNIQUE "
                "USING INDEX" if using_index_ok else "create a UNIQUE INDEX ASYNC instead")
        yield _fold_finding(p, ctx, "CONSTR_UNIQUE", "UNIQUE constraint", todo)


at_unsupported_add_unique.fixer(_fold_fixer("CONSTR_UNIQUE"))


@rule("at_unsupported_unique_using_index", nodes=_ALTER, prefilter=any_of("using"),
      unless=Capability.ADD_UNIQUE_USING_INDEX)
def at_unsupported_unique_using_index(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """ADD CONSTRAINT ... UNIQUE USING INDEX needs the `current` profile.

    In `classic`, keep the unique index without attaching it as a constraint (it enforces
    uniqueness all the same).

    Example (classic): `ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX ux;`
    """
    for con in _added(p, "CONSTR_UNIQUE"):
        if con.get("indexname"):
            todo = "keep the unique index without a constraint"
            yield Finding("ADD CONSTRAINT ... UNIQUE USING INDEX is not supported in the "
                          f"{ctx.profile.name} profile", todo, detail=todo)


# --- CHECK / FOREIGN KEY: NOT VALID + async validation (current profile) -----------------------


def _added(p: ParsedStatement, contype: str) -> Iterator[t.Node]:
    for cmd in _cmds(p, "AT_AddConstraint"):
        con = t.added_constraint(cmd) or {}
        if con.get("contype") == contype:
            yield con


_NOT_VALID_DETAIL = (
    "added NOT VALID and an ALTER TABLE ASYNC ... VALIDATE CONSTRAINT job: existing rows are "
    "checked in the background after the statement returns, and a failed validation leaves the "
    "constraint NOT VALID"
)


@rule("check_not_valid", nodes=_ALTER, prefilter=any_of("check"),
      only_if=Capability.CHECK_NOT_VALID)
def check_not_valid(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """ADD CONSTRAINT ... CHECK must be NOT VALID, then validated asynchronously.

    In the `current` profile DSQL accepts `ADD CONSTRAINT c CHECK (...) NOT VALID` followed by
    `ALTER TABLE ASYNC t VALIDATE CONSTRAINT c` (a background job). `--fix` rewrites to exactly
    that (naming the constraint if it had no name), with a warning: existing rows are checked
    after the statement returns. (In `classic` see `at_unsupported_add_check`.)

    Example (current): `ALTER TABLE t ADD CONSTRAINT amount_pos CHECK (amount > 0);` →
    `ALTER TABLE t ADD CONSTRAINT amount_pos CHECK (amount > 0) NOT VALID;`
    `ALTER TABLE ASYNC t VALIDATE CONSTRAINT amount_pos;`
    """
    current = ctx.profile.allows(Capability.CHECK_NOT_VALID)
    raw = p.json or ""
    if current and raw.count('"skip_validation":true') >= raw.count('"CONSTR_CHECK"'):
        return  # every CHECK in the statement is NOT VALID already
    for con in _added(p, "CONSTR_CHECK"):
        if current and not con.get("skip_validation"):
            yield Finding("ADD CONSTRAINT ... CHECK without NOT VALID is not supported in DSQL",
                          "add NOT VALID, then ALTER TABLE ASYNC ... VALIDATE CONSTRAINT",
                          location=con.get("location"), status=FixStatus.FIXED_WITH_WARNING,
                          detail=_NOT_VALID_DETAIL)


@rule("at_unsupported_add_check", nodes=_ALTER, prefilter=any_of("check"),
      unless=Capability.CHECK_NOT_VALID)
def at_unsupported_add_check(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """ADD CONSTRAINT ... CHECK needs the `current` profile.

    In `classic` a CHECK constraint can only be declared in CREATE TABLE: recreate the table
    with it, or check the rule in the application.

    Example (classic): `ALTER TABLE t ADD CONSTRAINT amount_pos CHECK (amount > 0) NOT VALID;`
    """
    for con in _added(p, "CONSTR_CHECK"):
        todo = "declare the CHECK in CREATE TABLE (recreate the table)"
        yield Finding(f"ALTER TABLE ADD CONSTRAINT ... CHECK is not supported in the "
                      f"{ctx.profile.name} profile", todo, location=con.get("location"),
                      detail=todo)


@rule("foreign_key_not_valid", nodes=_ALTER,
      prefilter=any_of("foreign"), only_if=Capability.FOREIGN_KEYS)
def foreign_key_not_valid(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """ADD FOREIGN KEY must be NOT VALID, then validated asynchronously (current profile).

    `--fix` adds NOT VALID and an `ALTER TABLE ASYNC ... VALIDATE CONSTRAINT`, with a warning.
    (In the `classic` profile foreign keys do not exist: see `foreign_key`.)

    Example (current): `ALTER TABLE o ADD CONSTRAINT o_c_fk FOREIGN KEY (c) REFERENCES c (id);`
    → `... NOT VALID;` then `ALTER TABLE ASYNC o VALIDATE CONSTRAINT o_c_fk;`
    """
    if not ctx.profile.allows(Capability.FOREIGN_KEYS):
        return
    for con in _added(p, "CONSTR_FOREIGN"):
        if not con.get("skip_validation"):
            yield Finding("ADD FOREIGN KEY without NOT VALID is not supported in DSQL",
                          "add NOT VALID, then ALTER TABLE ASYNC ... VALIDATE CONSTRAINT",
                          location=con.get("location"), status=FixStatus.FIXED_WITH_WARNING,
                          detail=_NOT_VALID_DETAIL)


def _fix_not_valid(target: FixTarget, ctx: LintContext) -> None:
    tree = target.tree
    table = _table_sql(tree)
    for cmd in tree.cmds or ():
        con = cmd.def_ if cmd.subtype == enums.AlterTableType.AT_AddConstraint else None
        if con is None or con.contype not in (enums.ConstrType.CONSTR_CHECK,
                                              enums.ConstrType.CONSTR_FOREIGN):
            continue
        if con.skip_validation:
            continue
        if (con.contype == enums.ConstrType.CONSTR_FOREIGN
                and not ctx.profile.allows(Capability.FOREIGN_KEYS)):
            continue
        if not con.conname:
            if con.contype == enums.ConstrType.CONSTR_FOREIGN:
                cols = [a.sval for a in con.fk_attrs or ()]
                con.conname = _constraint_name(tree.relation.relname, *cols[:1], "fkey")
            else:
                con.conname = _constraint_name(tree.relation.relname, "check")
        con.skip_validation = True
        con.initially_valid = False
        if not _validated_later(ctx, target.parsed, con.conname):
            target.after.append(_validate(table, con.conname))


def _validated_later(ctx: LintContext, p: ParsedStatement, name: str) -> bool:
    """Whether the script already validates constraint ``name`` after statement ``p``."""
    for later in ctx.statements[p.statement.index + 1 :]:
        if later.node_type == "AlterTableStmt" and any(
            c.get("subtype") == "AT_ValidateConstraint" and c.get("name") == name
            for c in t.alter_cmds(later.node or {})
        ):
            return True
    return False


check_not_valid.fixer(_fix_not_valid)
foreign_key_not_valid.fixer(_fix_not_valid)


@rule("foreign_key", nodes=("CreateStmt", "AlterTableStmt"),
      prefilter=any_of("references"), unless=Capability.FOREIGN_KEYS)
def foreign_key(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """Foreign keys need the `current` profile.

    In the `classic` profile DSQL has no foreign keys at all. `--fix` removes them, with a
    warning: referential integrity must be checked by the application (parent exists before
    insert, no dependents before delete).

    Example (classic): `CREATE TABLE o (id bigint PRIMARY KEY, c bigint REFERENCES c (id));`
    → `CREATE TABLE o (id bigint PRIMARY KEY, c bigint);`
    """
    if ctx.profile.allows(Capability.FOREIGN_KEYS):
        return
    assert p.node is not None
    found: list[t.Node] = []
    if p.node_type == "CreateStmt":
        found.extend(c for c in t.table_constraints(p.node) if c.get("contype") == "CONSTR_FOREIGN")
        for col in t.column_defs(p.node):
            found.extend(c for c in t.column_constraints(col)
                         if c.get("contype") == "CONSTR_FOREIGN")
    else:
        found.extend(_added(p, "CONSTR_FOREIGN"))
    for con in found:
        yield Finding(f"foreign keys are not supported in the {ctx.profile.name} profile",
                      "remove the foreign key and check references in the application",
                      location=con.get("location"), status=FixStatus.FIXED_WITH_WARNING,
                      detail="removed the foreign key: the application must now keep "
                      "references consistent")


@foreign_key.fixer
def _fix_foreign_key(target: FixTarget, ctx: LintContext) -> None:
    tree = target.tree

    def not_fk(node: Any) -> bool:
        return not (type(node).__name__ == "Constraint"
                    and node.contype == enums.ConstrType.CONSTR_FOREIGN)

    if type(tree).__name__ == "CreateStmt":
        tree.tableElts = tuple(e for e in tree.tableElts or () if not_fk(e))
        for elt in tree.tableElts:
            if type(elt).__name__ == "ColumnDef" and elt.constraints:
                elt.constraints = tuple(c for c in elt.constraints if not_fk(c)) or None
        return
    kept = tuple(c for c in tree.cmds or ()
                 if not (c.subtype == enums.AlterTableType.AT_AddConstraint and not not_fk(c.def_)))
    if kept:
        tree.cmds = kept
    else:
        target.replacement = []


# --- forms only the current profile accepts ----------------------------------------------------

_CURRENT_ONLY = {
    "AT_DropColumn": (Capability.DROP_COLUMN, "DROP COLUMN",
                      "recreate the table without the column"),
    "AT_ColumnDefault": (Capability.ALTER_COLUMN_DEFAULT, "ALTER COLUMN SET/DROP DEFAULT",
                         "supply the value in INSERTs, or recreate the table"),
    "AT_DropNotNull": (Capability.DROP_NOT_NULL, "ALTER COLUMN DROP NOT NULL",
                       "recreate the table with the column nullable"),
    "AT_DropConstraint": (Capability.DROP_CONSTRAINT, "DROP CONSTRAINT",
                          "recreate the table without the constraint"),
}


def _current_only(p: ParsedStatement, ctx: LintContext, subtype: str) -> Iterator[Finding]:
    capability, what, todo = _CURRENT_ONLY[subtype]
    if ctx.profile.allows(capability):
        return
    for _ in _cmds(p, subtype):
        yield Finding(f"{what} is not supported in the {ctx.profile.name} profile", todo,
                      detail=todo)


@rule("at_unsupported_drop_column", nodes=_ALTER,
      prefilter=any_of("drop"), unless=Capability.DROP_COLUMN)
def at_unsupported_drop_column(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """DROP COLUMN needs the `current` profile.

    In `classic`, recreate the table without the column. (In `current` a primary-key column
    still cannot be dropped.)

    Example (classic): `ALTER TABLE t DROP COLUMN legacy;`
    """
    return _current_only(p, ctx, "AT_DropColumn")


@rule("at_unsupported_alter_column_default", nodes=_ALTER,
      prefilter=any_of("default"), unless=Capability.ALTER_COLUMN_DEFAULT)
def at_unsupported_alter_column_default(
    p: ParsedStatement, ctx: LintContext
) -> Iterator[Finding]:
    """ALTER COLUMN SET DEFAULT / DROP DEFAULT need the `current` profile.

    Example (classic): `ALTER TABLE t ALTER COLUMN status SET DEFAULT 'new';`
    """
    return _current_only(p, ctx, "AT_ColumnDefault")


@rule("at_unsupported_drop_not_null", nodes=_ALTER,
      prefilter=any_of("drop"), unless=Capability.DROP_NOT_NULL)
def at_unsupported_drop_not_null(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """ALTER COLUMN DROP NOT NULL needs the `current` profile.

    Example (classic): `ALTER TABLE t ALTER COLUMN note DROP NOT NULL;`
    """
    return _current_only(p, ctx, "AT_DropNotNull")


@rule("at_unsupported_drop_constraint", nodes=_ALTER,
      prefilter=any_of("drop"), unless=Capability.DROP_CONSTRAINT)
def at_unsupported_drop_constraint(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """DROP CONSTRAINT needs the `current` profile (and never drops the primary key).

    Example (classic): `ALTER TABLE t DROP CONSTRAINT t_amount_check;`
    """
    return _current_only(p, ctx, "AT_DropConstraint")


@rule("validate_constraint_async", nodes=_ALTER, prefilter=any_of("validate"))
def validate_constraint_async(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """VALIDATE CONSTRAINT must be run as `ALTER TABLE ASYNC` (current profile).

    Validation is a background job in DSQL. `--fix` adds ASYNC, with a warning: the statement
    returns a job id before validation finishes. In `classic` there is nothing to validate
    (NOT VALID constraints cannot be added).

    Example (current): `ALTER TABLE t VALIDATE CONSTRAINT c;` →
    `ALTER TABLE ASYNC t VALIDATE CONSTRAINT c;`
    """
    allowed = ctx.profile.allows(Capability.VALIDATE_CONSTRAINT_ASYNC)
    if allowed and p.is_async:
        return
    for cmd in _cmds(p, "AT_ValidateConstraint"):
        if not allowed:
            todo = "remove it; the classic profile has no NOT VALID constraints"
            yield Finding(f"VALIDATE CONSTRAINT is not supported in the {ctx.profile.name} "
                          "profile", todo, detail=todo)
        elif not p.is_async:
            yield Finding(f"VALIDATE CONSTRAINT {cmd.get('name')} must use ALTER TABLE ASYNC",
                          "write ALTER TABLE ASYNC t VALIDATE CONSTRAINT c",
                          status=FixStatus.FIXED_WITH_WARNING,
                          detail="added ASYNC: validation runs as a background job; wait for it "
                          "with CALL sys.wait_for_job(job_id)")


@validate_constraint_async.fixer
def _fix_validate_async(target: FixTarget, ctx: LintContext) -> None:
    target.is_async = True


@rule("alter_table_async", nodes=_ALTER)
def alter_table_async(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """ALTER TABLE ASYNC only takes VALIDATE CONSTRAINT.

    DSQL's `ASYNC` form of ALTER TABLE exists for constraint validation alone, one constraint
    per statement.

    Example: `ALTER TABLE ASYNC t ADD COLUMN c int;` → `ALTER TABLE t ADD COLUMN c int;`
    """
    if not p.is_async:
        return  # decided without decoding the tree
    raw = p.json or ""
    if raw.count('"AlterTableCmd"') == 1 and '"AT_ValidateConstraint"' in raw:
        return
    assert p.node is not None
    subtypes = [c.get("subtype") for c in t.alter_cmds(p.node)]
    if subtypes != ["AT_ValidateConstraint"]:
        todo = "use ALTER TABLE ASYNC t VALIDATE CONSTRAINT c alone; other changes without ASYNC"
        yield Finding("ALTER TABLE ASYNC supports only a single VALIDATE CONSTRAINT", todo,
                      detail=todo)


_AT_UNSUPPORTED = {
    "AT_ReplicaIdentity": ("at_unsupported_replica_identity", "REPLICA IDENTITY",
                           "remove it; DSQL has no logical replication settings"),
    "AT_AddIdentity": ("at_unsupported_alter_column_add_generated",
                       "ALTER COLUMN ... ADD GENERATED AS IDENTITY",
                       "declare the identity column in CREATE TABLE (recreate the table)"),
}


def _at_unsupported(p: ParsedStatement, subtype: str) -> Iterator[Finding]:
    _, what, todo = _AT_UNSUPPORTED[subtype]
    for _ in _cmds(p, subtype):
        yield Finding(f"ALTER TABLE ... {what} is not supported in DSQL", todo, detail=todo)


@rule("at_unsupported_replica_identity", nodes=_ALTER, prefilter=any_of("replica"))
def at_unsupported_replica_identity(p: ParsedStatement, ctx: LintContext) -> Iterator[Finding]:
    """ALTER TABLE ... REPLICA IDENTITY is not supported.

    Example: `ALTER TABLE orders REPLICA IDENTITY FULL;`
    """
    return _at_unsupported(p, "AT_ReplicaIdentity")


@rule("at_unsupported_alter_column_add_generated", nodes=_ALTER, prefilter=any_of("generated"))
def at_unsupported_alter_column_add_generated(
    p: ParsedStatement, ctx: LintContext
) -> Iterator[Finding]:
    """ALTER COLUMN ... ADD GENERATED AS IDENTITY is not supported.

    An identity column is declared in CREATE TABLE; changing an existing column into one needs
    a table recreation.

    Example: `ALTER TABLE t ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY;`
    """
    return _at_unsupported(p, "AT_AddIdentity")


@rule("at_unsupported_primary_key_using_index", nodes=_ALTER, prefilter=any_of("primary"))
def at_unsupported_primary_key_using_index(
    p: ParsedStatement, ctx: LintContext
) -> Iterator[Finding]:
    """ADD PRIMARY KEY USING INDEX is not supported.

    The primary key is fixed when the table is created.

    Example: `ALTER TABLE t ADD CONSTRAINT t_pkey PRIMARY KEY USING INDEX t_id_idx;`
    """
    for con in _added(p, "CONSTR_PRIMARY"):
        if con.get("indexname"):
            todo = "declare the primary key in CREATE TABLE (recreate the table)"
            yield Finding("ADD PRIMARY KEY USING INDEX is not supported in DSQL", todo,
                          detail=todo)
