"""What the plugin does with every Alembic op, per profile: expand it into what the planner
takes, or refuse it (before anything of the revision runs).

Every operation class of ``alembic.operations.ops`` (and our own, :mod:`.ops`) has an entry in
:data:`COVERAGE`: an expander that returns the ops the planner compiles (the op itself, or the
same change spelled as the planner's ops, mirroring what Alembic's own ``toimpl`` emits on
PostgreSQL), and one line per profile for the op coverage table of ``docs/alembic.md`` (a test
checks that the table lists every class). An expander raises :class:`Refusal` for what DSQL
cannot do faithfully; an op of a class with no entry is refused too: no op is ever ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import sqltypes

from ..lint import LintSettings, Severity, lint_script
from ..ops import (
    AwsIamGrantOp,
    AwsIamRevokeOp,
    ChangePrimaryKeyOp,
    CreateRoleOp,
    DropRoleOp,
    GrantOp,
    RevokeOp,
    ValidateConstraintOp,
)
from ..profiles import Capability, Profile
from ..sql import quote_literal, quote_qualified
from .names import NAMING, settle_table
from .ops import (
    ROLE_OPS,
    BackfillOp,
    BulkRowsOp,
    CommentOp,
    CreateIndexAsyncOp,
    RawSqlOp,
    RecreateTableOp,
    UniqueUsingIndexOp,
    ValidateConstraintAsyncOp,
)

_PG = postgresql.dialect()  # type: ignore[no-untyped-call]


class Refusal(Exception):
    """The op cannot be compiled faithfully; the message says why (with the DSQL rule)."""


@dataclass
class ExpandContext:
    profile: Profile
    warnings: list[str] = field(default_factory=list)


Expander = Callable[[Any, ExpandContext], "list[ops.MigrateOperation]"]


@dataclass(frozen=True)
class Coverage:
    """One row of the op coverage table: what the plugin does with the op on each profile."""

    op: type[ops.MigrateOperation]
    call: str  # how a revision asks for it
    current: str
    classic: str
    expand: Expander | None  # None: a base class or a container (never recorded as such)


COVERAGE: dict[type[ops.MigrateOperation], Coverage] = {}


def covers(op: type[ops.MigrateOperation], call: str, *, current: str,
           classic: str | None = None) -> Callable[[Expander], Expander]:
    def register(fn: Expander) -> Expander:
        COVERAGE[op] = Coverage(op, call, current, classic or current, fn)
        return fn
    return register


def structural(op: type[ops.MigrateOperation], call: str, what: str) -> None:
    COVERAGE[op] = Coverage(op, call, what, what, None)


def coverage_of(op_type: type[Any]) -> Coverage | None:
    for base in op_type.__mro__:
        found = COVERAGE.get(base)
        if found is not None:
            return found
    return None


def expand_op(operation: ops.MigrateOperation, ctx: ExpandContext) -> list[ops.MigrateOperation]:
    """The planner's ops for ``operation``; :class:`Refusal` if it cannot be done faithfully."""
    found = COVERAGE.get(type(operation)) or coverage_of(type(operation))
    if found is None or found.expand is None:
        raise Refusal(f"{type(operation).__name__}: the plugin has no compiler for this op, "
                      "and an op is never skipped")
    return found.expand(operation, ctx)


def _same(operation: ops.MigrateOperation, ctx: ExpandContext) -> list[ops.MigrateOperation]:
    return [operation]


# -- indexes: DSQL's index rules, checked on the SQL Alembic itself would emit ------------------

#: lint rules that do not apply to the SQL of an index the planner builds ASYNC and waits for
_PLANNED_AWAY = {"index_async", "index_concurrently"}


def index_refusals(index: sa.Index, profile: Profile) -> list[str]:
    """Why DSQL cannot build ``index`` as the revision wrote it: ASC/DESC keys, opclasses,
    ``USING`` a method, and (classic) expression and partial indexes. The SQL stock Alembic
    would send on PostgreSQL is linted, so the reasons are the linter's rules."""
    _stub_included_columns(index)
    try:
        text = str(sa.schema.CreateIndex(index).compile(dialect=_PG))
    except sa.exc.SQLAlchemyError as exc:
        return [f"cannot render the index as SQL: {exc}"]
    text = re.sub(r"^CREATE (UNIQUE )?INDEX ", r"CREATE \1INDEX ASYNC ", text.strip())
    using = _using(index)
    if using is not None and using.lower() == "btree":
        # DSQL's indexes are btree: USING btree is what the planner builds (without the clause)
        text = re.sub(r" USING btree ", " ", text, flags=re.IGNORECASE)
    result = lint_script(text, LintSettings.build(profile), path="index")
    return [f"{d.rule}: {d.message}" for d in result.diagnostics
            if d.severity is Severity.ERROR and d.rule not in _PLANNED_AWAY]


def _stub_included_columns(index: sa.Index) -> None:
    """``postgresql_include`` columns on the stub table of ``op.create_index`` (as Alembic's
    impl adds them), else rendering the index fails with ``KeyError``."""
    table = index.table
    if table is None:
        return
    for dialect in ("auroradsql", "postgresql"):
        if dialect not in index.dialect_options:
            continue
        for column in index.dialect_options[dialect].get("include") or ():
            if isinstance(column, str) and column not in table.c:
                table.append_column(sa.Column(column, sqltypes.NullType()))


def _using(index: sa.Index) -> str | None:
    for dialect in ("auroradsql", "postgresql"):
        if dialect in index.dialect_options:
            value = index.dialect_options[dialect].get("using")
            if value:
                return str(value)
    return None


def _refuse_index(index: sa.Index, ctx: ExpandContext) -> None:
    reasons = index_refusals(index, ctx.profile)
    if reasons:
        raise Refusal(f"index {index.name}: " + "; ".join(reasons))


@covers(ops.CreateIndexOp, "op.create_index, batch_op.create_index",
        current="CREATE [UNIQUE] INDEX ASYNC, waited for until valid (a unique one after a "
        "duplicates pre-check); partial and expression indexes kept",
        classic="as current; partial and expression indexes refused (classic has neither)")
def _create_index(operation: ops.CreateIndexOp, ctx: ExpandContext) -> list[ops.MigrateOperation]:
    _refuse_index(operation.to_index(), ctx)
    return [operation]


COVERAGE[CreateIndexAsyncOp] = Coverage(
    CreateIndexAsyncOp, "op.create_index_async", COVERAGE[ops.CreateIndexOp].current,
    COVERAGE[ops.CreateIndexOp].classic, _create_index)

covers(ops.DropIndexOp, "op.drop_index, batch_op.drop_index", current="DROP INDEX")(_same)


# -- tables --------------------------------------------------------------------------------------


def _comment_sql(target: str, comment: str | None) -> RawSqlOp:
    value = "NULL" if comment is None else quote_literal(comment)
    return RawSqlOp(f"COMMENT ON {target} IS {value}", kind="ddl", node_type="CommentStmt",
                    is_async=False)


def _table_sql(name: str, schema: str | None) -> str:
    return quote_qualified(None if schema in (None, "public") else schema, name)


def _refuse_native_enums(table: str, columns: list[tuple[str, Any]]) -> None:
    """A native ``sa.Enum`` needs ``CREATE TYPE ... AS ENUM`` on PostgreSQL, which DSQL
    rejects in every profile (DSQL.md §1)."""
    native = [name for name, type_ in columns if isinstance(type_, sa.Enum)
              and type_.native_enum and not isinstance(type_, postgresql.DOMAIN)]
    if native:
        raise Refusal(
            f"{table}.{', '.join(native)}: a native enum type needs CREATE TYPE ... AS ENUM, "
            "which DSQL rejects in every profile (DSQL.md §1: CREATE TYPE (enum/composite)); "
            "use sa.Enum(..., native_enum=False, create_constraint=True): a VARCHAR with a "
            "CHECK of the values")


def _refuse_foreign_keys(table: str, fks: list[str], ctx: ExpandContext) -> None:
    if fks and not ctx.profile.allows(Capability.FOREIGN_KEYS):
        raise Refusal(
            f"foreign key(s) {', '.join(fks)} on {table}: the {ctx.profile.name} profile has no "
            "foreign keys at all (DSQL.md §1: foreign keys rejected in classic); enforce them "
            "in the application and take them out of the revision, or use the current profile")


@covers(ops.CreateTableOp, "op.create_table",
        current="CREATE TABLE with its columns, primary key, unique, CHECK (also an Enum's) and "
        "foreign-key constraints (column-level sa.ForeignKey too); each sa.Index / index=True "
        "becomes CREATE INDEX ASYNC, waited for; comments as COMMENT ON",
        classic="as current; a foreign key is refused (classic has none)")
def _create_table(operation: ops.CreateTableOp, ctx: ExpandContext) -> list[ops.MigrateOperation]:
    table = operation.to_table()
    _refuse_native_enums(table.name, [(c.name, c.type) for c in table.columns])
    _refuse_foreign_keys(table.name, [_fk_label(fk) for fk in table.foreign_key_constraints], ctx)
    for index in table.indexes:
        _refuse_index(index, ctx)
    out: list[ops.MigrateOperation] = [operation]
    out.extend(ops.CreateIndexOp.from_index(index) for index in
               sorted(table.indexes, key=lambda i: str(i.name)))
    qualified = _table_sql(table.name, table.schema)
    if table.comment is not None:
        out.append(_comment_sql(f"TABLE {qualified}", table.comment))
    for column in table.columns:
        if column.comment is not None:
            out.append(_comment_sql(f"COLUMN {qualified}.{quote_qualified(None, column.name)}",
                                    column.comment))
    return out


def _fk_label(fk: sa.ForeignKeyConstraint) -> str:
    columns = ", ".join(str(c) for c in fk.column_keys)
    target = fk.elements[0].target_fullname.rsplit(".", 1)[0] if fk.elements else "?"
    return f"{fk.name or '(unnamed)'} ({columns}) -> {target}"


covers(ops.DropTableOp, "op.drop_table", current="DROP TABLE (destructive)")(_same)
covers(ops.RenameTableOp, "op.rename_table", current="ALTER TABLE ... RENAME TO")(_same)


@covers(ops.CreateTableCommentOp, "op.create_table_comment",
        current="COMMENT ON TABLE")
def _table_comment(operation: ops.CreateTableCommentOp,
                   ctx: ExpandContext) -> list[ops.MigrateOperation]:
    return [_comment_sql(f"TABLE {_table_sql(operation.table_name, operation.schema)}",
                         operation.comment)]


@covers(ops.DropTableCommentOp, "op.drop_table_comment", current="COMMENT ON TABLE ... IS NULL")
def _drop_table_comment(operation: ops.DropTableCommentOp,
                        ctx: ExpandContext) -> list[ops.MigrateOperation]:
    return [_comment_sql(f"TABLE {_table_sql(operation.table_name, operation.schema)}", None)]


# -- columns -------------------------------------------------------------------------------------


def _column_items(table_name: str, column: sa.Column[Any], schema: str | None,
                  convention: dict[str, Any] | None = None,
                  ) -> tuple[sa.Column[Any], list[ops.MigrateOperation]]:
    """``column`` without what SQLAlchemy attaches to its table (foreign keys, unique, index,
    an Enum's CHECK), and those as the ops Alembic's ``add_column`` emits after the column,
    named as stock Alembic names them (the context's naming convention, :mod:`.names`)."""
    md = sa.MetaData(naming_convention=convention) if convention else sa.MetaData()
    table = settle_table(sa.Table(table_name, md, column._copy(), schema=schema))
    copied = table.c[column.name]
    extra: list[ops.MigrateOperation] = []
    for constraint in sorted(table.constraints, key=lambda c: str(c.name or "")):
        if isinstance(constraint, sa.PrimaryKeyConstraint):
            continue
        if isinstance(constraint, sa.ForeignKeyConstraint):
            referent, remote = constraint.elements[0].target_fullname.rsplit(".", 1)
            ref_schema, _, ref_table = referent.rpartition(".")
            extra.append(ops.CreateForeignKeyOp(
                _name(constraint.name, f"{table_name}_{column.name}_fkey"), table_name,
                ref_table, [column.name], [remote], source_schema=schema,
                referent_schema=ref_schema or None, ondelete=constraint.ondelete,
                onupdate=constraint.onupdate))
        elif isinstance(constraint, sa.UniqueConstraint):
            extra.append(ops.CreateUniqueConstraintOp(
                _name(constraint.name, f"{table_name}_{column.name}_key"), table_name,
                [column.name], schema=schema))
        elif isinstance(constraint, sa.CheckConstraint):
            extra.append(_check_op(constraint, table_name, column.name, schema))
    for index in table.indexes:
        extra.append(ops.CreateIndexOp(
            _name(index.name, f"ix_{table_name}_{column.name}"), table_name, [column.name],
            schema=schema, unique=bool(index.unique)))
    plain = sa.Column(copied.name, copied.type, *([copied.server_default]
                                                 if copied.server_default is not None else []),
                      *([copied.identity] if copied.identity is not None else []),
                      nullable=copied.nullable, primary_key=copied.primary_key,
                      comment=copied.comment, autoincrement=copied.autoincrement)
    if isinstance(copied.type, sqltypes.SchemaType):
        plain.type = _without_constraint(copied.type)
    return plain, extra


def _name(name: Any, default: str) -> str:
    return name if isinstance(name, str) else default


def _without_constraint(type_: Any) -> Any:
    """A copy of a schema type (Enum, Boolean) that attaches no CHECK of its own: the CHECK is
    an op of its own, so the model and the planner see it once."""
    copied = type_.copy()
    if hasattr(copied, "create_constraint"):
        copied.create_constraint = False
    return copied


def check_sql(constraint: sa.CheckConstraint) -> str:
    """The condition of a CHECK as PostgreSQL gets it in DDL (column names unqualified)."""
    compiler = _PG.ddl_compiler(_PG, sa.schema.CreateTable(sa.Table("_", sa.MetaData())))
    return str(compiler.sql_compiler.process(constraint.sqltext, include_table=False,
                                             literal_binds=True))


def _check_op(constraint: sa.CheckConstraint, table: str, column: str,
              schema: str | None) -> ops.CreateCheckConstraintOp:
    condition = check_sql(constraint)
    return ops.CreateCheckConstraintOp(_name(constraint.name, f"{table}_{column}_check"), table,
                                       sa.text(condition), schema=schema)


def _type_checks(table: str, column: str, type_: Any, schema: str | None,
                 convention: dict[str, Any] | None = None) -> list[ops.CreateCheckConstraintOp]:
    """The CHECK constraints an Enum / Boolean column type creates on PostgreSQL (a
    non-native Enum with ``create_constraint=True``), as Alembic's impl adds them, named by
    the context's naming convention as stock Alembic names them (:mod:`.names`)."""
    md = sa.MetaData(naming_convention=convention) if convention else sa.MetaData()
    t = settle_table(sa.Table(table, md, sa.Column(column, type_), schema=schema))
    compiler = _PG.ddl_compiler(_PG, sa.schema.CreateTable(t))
    out = []
    for constraint in t.constraints:
        if not isinstance(constraint, sa.CheckConstraint):
            continue
        rule = getattr(constraint, "_create_rule", None)
        if rule is None or rule(compiler):
            out.append(_check_op(constraint, table, column, schema))
    return out


@covers(ops.AddColumnOp, "op.add_column, batch_op.add_column",
        current="ADD COLUMN (own transaction); a default: SET DEFAULT + batched backfill; NOT "
        "NULL: recreation (or a validated CHECK with --not-null=check); column-level foreign "
        "key, unique, index and an Enum's CHECK as their own ops, as Alembic does",
        classic="as current, but a default or NOT NULL recreates the table; a foreign key is "
        "refused")
def _add_column(operation: ops.AddColumnOp, ctx: ExpandContext) -> list[ops.MigrateOperation]:
    _refuse_native_enums(operation.table_name, [(operation.column.name, operation.column.type)])
    column, extra = _column_items(operation.table_name, operation.column, operation.schema,
                                  getattr(operation, NAMING, None))
    _refuse_foreign_keys(operation.table_name, [
        f"{e.constraint_name}" for e in extra if isinstance(e, ops.CreateForeignKeyOp)], ctx)
    added = ops.AddColumnOp(operation.table_name, column, schema=operation.schema,
                            **operation.kw)
    out: list[ops.MigrateOperation] = [added, *extra]
    if column.comment is not None:
        column.comment = None
        out.append(_comment_sql(
            f"COLUMN {_table_sql(operation.table_name, operation.schema)}."
            f"{quote_qualified(None, column.name)}", operation.column.comment))
    return out


covers(ops.DropColumnOp, "op.drop_column, batch_op.drop_column",
       current="DROP COLUMN (destructive); a primary-key column: recreation",
       classic="recreation (classic has no DROP COLUMN)")(_same)


@covers(ops.AlterColumnOp, "op.alter_column, batch_op.alter_column",
        current="rename: RENAME COLUMN; default: SET/DROP DEFAULT; nullable=True: DROP NOT "
        "NULL; nullable=False and a real type change: recreation (or a validated CHECK with "
        "--not-null=check); an equivalent type spelling (FLOAT(53) = DOUBLE PRECISION, ...) is "
        "no change; an Enum/Boolean type's CHECK is dropped and re-added as Alembic does; "
        "comment: COMMENT ON COLUMN",
        classic="as current, but a default change and DROP NOT NULL recreate the table")
def _alter_column(operation: ops.AlterColumnOp, ctx: ExpandContext) -> list[ops.MigrateOperation]:
    if operation.modify_type is not None:
        operation.modify_type = sqltypes.to_instance(operation.modify_type)
        _refuse_native_enums(operation.table_name,
                             [(operation.column_name, operation.modify_type)])
    existing = operation.existing_type
    if existing is not None:
        operation.existing_type = existing = sqltypes.to_instance(existing)
    table, schema = operation.table_name, operation.schema
    before: list[ops.MigrateOperation] = []
    after: list[ops.MigrateOperation] = []
    if existing is not None and operation.modify_type is not None:
        # Alembic's alter_column: the old type's constraints go, the new type's come
        before = [ops.DropConstraintOp(c.constraint_name, table, type_="check", schema=schema)
                  for c in _type_checks(table, operation.column_name, existing, schema,
                                        getattr(operation, NAMING, None))]
        name = operation.modify_name or operation.column_name
        after = list(_type_checks(table, name, operation.modify_type, schema,
                                  getattr(operation, NAMING, None)))
        if isinstance(operation.modify_type, sqltypes.SchemaType):
            operation.modify_type = _without_constraint(operation.modify_type)
    comment = operation.modify_comment
    if comment is not False:
        operation.modify_comment = False
        name = operation.modify_name or operation.column_name
        after.append(_comment_sql(
            f"COLUMN {_table_sql(table, schema)}.{quote_qualified(None, name)}",
            comment if isinstance(comment, str) else None))
    changes = (operation.modify_type, operation.modify_name, operation.modify_server_default,
               operation.modify_nullable)
    main: list[ops.MigrateOperation] = [operation] if (
        changes[0] is not None or changes[1] or changes[2] is not False
        or changes[3] is not None) else []
    return [*before, *main, *after]


# -- constraints ---------------------------------------------------------------------------------


@covers(ops.CreatePrimaryKeyOp, "op.create_primary_key, batch_op.create_primary_key",
        current="a primary-key change: the table is recreated with the new key (copy, verify, "
        "swap; DSQL cannot ADD PRIMARY KEY)")
def _create_pk(operation: ops.CreatePrimaryKeyOp, ctx: ExpandContext,
               ) -> list[ops.MigrateOperation]:
    change = ChangePrimaryKeyOp(operation.table_name, [str(c) for c in operation.columns],
                                schema=operation.schema)
    change.constraint_name = operation.constraint_name  # type: ignore[attr-defined]
    return [change]


covers(ops.CreateUniqueConstraintOp,
       "op.create_unique_constraint, batch_op.create_unique_constraint",
       current="duplicates pre-check, CREATE UNIQUE INDEX ASYNC, waited for, then ADD "
       "CONSTRAINT ... UNIQUE USING INDEX",
       classic="recreation (classic cannot attach a unique index)")(_same)
covers(ops.CreateCheckConstraintOp, "op.create_check_constraint, batch_op.create_check_constraint",
       current="pre-check, ADD CONSTRAINT ... CHECK ... NOT VALID, then ALTER TABLE ASYNC ... "
       "VALIDATE CONSTRAINT, waited for",
       classic="recreation (classic has no CHECK ... NOT VALID)")(_same)


@covers(ops.CreateForeignKeyOp, "op.create_foreign_key, batch_op.create_foreign_key",
        current="orphans pre-check, ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID, then async "
        "validation, waited for",
        classic="refused: classic has no foreign keys")
def _create_fk(operation: ops.CreateForeignKeyOp, ctx: ExpandContext,
               ) -> list[ops.MigrateOperation]:
    _refuse_foreign_keys(operation.source_table, [str(operation.constraint_name)], ctx)
    return [operation]


covers(ops.DropConstraintOp, "op.drop_constraint, batch_op.drop_constraint",
       current="DROP CONSTRAINT; the primary key: recreation (with op.create_primary_key, the "
       "new key)", classic="recreation (classic has no DROP CONSTRAINT)")(_same)


# -- SQL and data --------------------------------------------------------------------------------

COVERAGE[ops.ExecuteSQLOp] = Coverage(
    ops.ExecuteSQLOp, "op.execute", "split into statements and linted: DSQL-illegal SQL is "
    "refused; each statement its own transaction (async index builds waited for), after the "
    "ops above it (they run first, as a part); nothing but ALTER TABLE ... DROP CONSTRAINT "
    "[IF EXISTS]: recorded as op.drop_constraint",
    "as current, with classic's rules", None)
COVERAGE[ops.BulkInsertOp] = Coverage(
    ops.BulkInsertOp, "op.bulk_insert", "INSERT in batches within the row limit",
    "as current", None)

# -- containers and base classes: never recorded themselves -------------------------------------

structural(ops.MigrateOperation, "-", "base class: an op of an unknown class is refused")
structural(ops.AlterTableOp, "-", "base class of the table ops above")
structural(ops.AddConstraintOp, "-", "base class of the constraint ops above")
structural(ops.OpContainer, "-", "its ops are compiled one by one")
structural(ops.ModifyTableOps, "autogenerate", "its ops are compiled one by one")
structural(ops.UpgradeOps, "autogenerate", "its ops are compiled one by one")
structural(ops.DowngradeOps, "autogenerate", "its ops are compiled one by one")
structural(ops.MigrationScript, "autogenerate", "a revision file, not an op of a revision")


# -- our own ops ---------------------------------------------------------------------------------

covers(BackfillOp, "op.backfill", current="UPDATE in resumable keyset batches")(_same)
covers(RecreateTableOp, "op.recreate_table",
       current="the table is recreated with the changes inside")(_same)
covers(UniqueUsingIndexOp, "op.create_unique_constraint_using_index",
       current="ADD CONSTRAINT ... UNIQUE USING INDEX",
       classic="recreation (classic cannot attach a unique index)")(_same)
covers(ValidateConstraintAsyncOp, "op.validate_constraint_async",
       current="ALTER TABLE ASYNC ... VALIDATE CONSTRAINT, waited for",
       classic="no step: classic has no NOT VALID constraints (a CHECK is added by "
       "recreation, validated by the copy), so there is nothing left to validate")(_same)
covers(ValidateConstraintOp, "-", current="as op.validate_constraint_async",
       classic=COVERAGE[ValidateConstraintAsyncOp].classic)(_same)
covers(ChangePrimaryKeyOp, "-", current="recreation with the new key")(_same)
covers(RawSqlOp, "-", current="one statement of op.execute")(_same)
covers(BulkRowsOp, "-", current="one batch of op.bulk_insert")(_same)
structural(CommentOp, "autogenerate", "a comment in a generated revision: nothing to run")
for _role_op, _what in ((CreateRoleOp, "CREATE ROLE (admin or CREATEROLE)"),
                        (DropRoleOp, "DROP ROLE (admin or CREATEROLE; destructive)"),
                        (GrantOp, "GRANT ... ON TABLE/SCHEMA"),
                        (RevokeOp, "REVOKE ... ON TABLE/SCHEMA"),
                        (AwsIamGrantOp, "AWS IAM GRANT (admin only)"),
                        (AwsIamRevokeOp, "AWS IAM REVOKE (admin only; destructive)")):
    covers(_role_op, f"op.{ROLE_OPS[_role_op]}", current=_what)(_same)
del _role_op, _what


def alembic_op_classes() -> Iterator[type[ops.MigrateOperation]]:
    """Every operation class Alembic defines in ``alembic.operations.ops``."""
    for value in vars(ops).values():
        if (isinstance(value, type) and issubclass(value, ops.MigrateOperation)
                and value.__module__ == ops.__name__):
            yield value


def markdown_table() -> str:
    """The op coverage table of docs/alembic.md."""
    rows = ["| Op class | Called as | `current` profile | `classic` profile |",
            "|---|---|---|---|"]
    order = sorted(alembic_op_classes(), key=lambda c: c.__name__)
    for op_type in order:
        entry = COVERAGE[op_type]
        rows.append(f"| `{op_type.__name__}` | {entry.call} | {entry.current} | "
                    f"{entry.classic} |")
    return "\n".join(rows)


__all__ = ["COVERAGE", "Coverage", "ExpandContext", "Refusal", "alembic_op_classes",
           "coverage_of", "expand_op", "index_refusals", "markdown_table"]
