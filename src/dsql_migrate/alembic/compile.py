"""Recorded ops → the planner's ops → a Plan (DESIGN.md §1).

:func:`.record.record` runs the revision function and keeps its ops. :func:`expand` turns them
into what the planner takes, op by op through the coverage registry (:mod:`.coverage`): an
``op.execute`` string is split by the SQL layer and checked by the linter, ``op.bulk_insert``
rows become bounded INSERT batches, every other op is expanded as Alembic's own implementation
would carry it out, or refused (DSQL-illegal changes are refused before anything runs).
:func:`plan_revision` builds the one model of the desired schema (:mod:`.model`) from the live
schema and those ops, once, and plans against it.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import sqltypes

from ..catalog import Snapshot
from ..errors import DsqlMigrateError, ExitCode
from ..lint import LintSettings, Severity, lint_script
from ..lint.fixer import add_async
from ..ops import AwsIamGrantOp, AwsIamRevokeOp, ChangePrimaryKeyOp
from ..plan import Estimate, Plan, StepKind
from ..planner import Context, Options, PlanningError, handles, recreation_check
from ..planner import plan as make_plan
from ..planner._keyset import Keyset, keyset_for
from ..profiles import Capability, Profile
from ..sql import StatementKind, quote_ident, quote_qualified
from ..sql.aws_iam import MalformedIamStatement, parse_iam
from .coverage import ExpandContext, Refusal, coverage_of, expand_op
from .model import desired_metadata, table_key
from .ops import BackfillOp, BulkRowsOp, RawSqlOp, RecreateTableOp, UniqueUsingIndexOp, flatten
from .record import mark, record, where_of

log = logging.getLogger(__name__)
_PG = postgresql.dialect()  # type: ignore[no-untyped-call]


class RevisionRefused(DsqlMigrateError):
    """A revision holds SQL that DSQL would reject; nothing of it was run."""

    exit_code = ExitCode.FAILED


@dataclass
class Compiled:
    ops: list[ops.MigrateOperation]
    warnings: list[str] = field(default_factory=list)


# -- expansion: raw SQL and bulk inserts ---------------------------------------------------------


def expand(recorded: Sequence[ops.MigrateOperation], profile: Profile, *, where: str,
           batch_rows: int) -> Compiled:
    """The planner's ops for what the revision recorded (:mod:`.coverage`): ``op.execute``
    split and linted, ``op.bulk_insert`` cut into bounded batches, every other op expanded as
    Alembic's own implementation would carry it out. Everything DSQL cannot do faithfully is
    refused here, before anything of the revision runs, each problem with its revision line."""
    out = Compiled(ops=[])
    problems: list[str] = []
    ctx = ExpandContext(profile)
    settings = LintSettings.build(profile)
    number = 0
    for operation in flatten(recorded):
        line = where_of(operation)
        at = _at(where, line)
        if isinstance(operation, ops.ExecuteSQLOp):
            number += 1
            label = f"{at}: op.execute #{number}"
            problems.extend(_expand_sql(operation, label, settings, out))
        elif isinstance(operation, ops.BulkInsertOp):
            out.ops.extend(_bulk_rows(operation, batch_rows))
        else:
            try:
                out.ops.extend(mark(o, line) for o in expand_op(operation, ctx))
            except Refusal as exc:
                problems.append(f"{at}: {_op_call(operation)}: {exc}")
    out.warnings.extend(ctx.warnings)
    if problems:
        raise RevisionRefused(
            "DSQL cannot do what this revision asks; nothing of it was run:\n  "
            + "\n  ".join(problems),
            hint="rewrite the statements or ops named above (`dsql-migrate lint --fix` shows "
            "DSQL-safe forms of SQL; docs/alembic.md lists what each op becomes)")
    return out


def _at(where: str, line: str | None) -> str:
    """``r.py:12 in upgrade()`` (or ``where at file:line`` when the op came from another
    file, a helper the revision calls)."""
    if line is None:
        return where
    name, _, function = where.partition(" ")
    if name == line.split(":")[0]:
        return f"{line} in {function}" if function else line
    return f"{where} at {line}"


def _op_call(operation: ops.MigrateOperation) -> str:
    found = coverage_of(type(operation))
    call = found.call.split(",")[0] if found is not None and found.call != "-" else None
    return call or type(operation).__name__


#: lint rules whose fix is the same effect on DSQL, applied to ``op.execute`` SQL: an index
#: built ``ASYNC`` is a job the runner waits for until the index is valid, so after the step
#: the index exists as it would after ``CREATE INDEX CONCURRENTLY`` (prefect's idiom, inside
#: ``autocommit_block()``)
_SAME_EFFECT_FIXES = frozenset({"index_concurrently"})


def _expand_sql(operation: ops.ExecuteSQLOp, label: str, settings: LintSettings,
                out: Compiled) -> list[str]:
    problems: list[str] = []
    text = _sql_text(operation.sqltext, label)
    result = lint_script(text, settings, path=label)
    fix = {d.statement_index for d in result.diagnostics if d.rule in _SAME_EFFECT_FIXES}
    if fix:
        text = ";\n".join(add_async(p.text.strip().rstrip(";")) if i in fix
                          else p.text.strip().rstrip(";")
                          for i, p in enumerate(result.statements))
        out.warnings.append(f"{label}: CREATE INDEX CONCURRENTLY runs as CREATE INDEX ASYNC "
                            "and is waited for until the index is valid (DSQL has no "
                            "CONCURRENTLY: index_concurrently)")
        result = lint_script(text, settings, path=label)
    for d in result.diagnostics:
        line = f"{label}:{d.line}:{d.column}: {d.rule}: {d.message}"
        if d.severity is Severity.ERROR:
            problems.append(line + (f" ({d.suggestion})" if d.suggestion else ""))
        else:
            out.warnings.append(line)
            log.warning("%s", line)
    for parsed in result.statements:
        if parsed.kind is StatementKind.TRANSACTION:
            continue  # every statement runs in its own transaction anyway
        iam = _iam_op(parsed.text)
        if iam is not None:  # planned as op.aws_iam_grant/revoke: the step says it needs admin
            out.ops.append(mark(iam, label))
            continue
        kind = {StatementKind.DDL: "ddl", StatementKind.DML: "dml"}.get(parsed.kind, "other")
        out.ops.append(RawSqlOp(parsed.text.strip().rstrip(";"), kind=kind,
                                node_type=parsed.node_type, is_async=parsed.is_async,
                                where=label))
    return problems


def _iam_op(text: str) -> AwsIamGrantOp | AwsIamRevokeOp | None:
    """``AWS IAM GRANT/REVOKE`` in ``op.execute`` SQL, as the role op (:mod:`..roles`)."""
    try:
        found = parse_iam(text)
    except MalformedIamStatement:
        return None  # sent as written: DSQL says what is wrong with it
    if found is None:
        return None
    return (AwsIamGrantOp if found.grant else AwsIamRevokeOp)(found.role, found.arn)


def _sql_text(sqltext: Any, label: str) -> str:
    """The SQL of an ``op.execute``, bound values rendered as literals (the SQL layer checks
    and splits text, and a plan holds no parameters)."""
    if isinstance(sqltext, str):
        return sqltext
    if isinstance(sqltext, sa.sql.elements.TextClause) and not sqltext._bindparams:
        return sqltext.text  # as written: no ':name' to bind
    statement = sa.sql.visitors.replacement_traverse(sqltext, {}, _typed_bind)
    try:
        return str(statement.compile(dialect=_PG, compile_kwargs={"literal_binds": True}))
    except sa.exc.CompileError as exc:
        raise RevisionRefused(
            f"{label}: cannot render the statement as SQL: {exc}",
            hint="give its columns and values types (sa.column('note', sa.Text)), or pass "
            "op.execute an SQL string") from None


def _typed_bind(element: Any, **kw: Any) -> Any:
    """A bound value of no type (``sa.column('note')`` untyped) typed from its Python value,
    so that it renders as a literal; everything else as it is."""
    if (isinstance(element, sa.sql.elements.BindParameter)
            and isinstance(element.type, sqltypes.NullType) and element.value is not None
            and not element.callable):
        return sa.bindparam(element.key, element.value, unique=element.unique,
                            type_=sa.literal(element.value).type)
    return None


def _bulk_rows(operation: ops.BulkInsertOp, batch_rows: int) -> list[BulkRowsOp]:
    table = operation.table
    rows = list(operation.rows)
    out: list[BulkRowsOp] = []
    for start in range(0, len(rows), batch_rows):
        chunk = rows[start:start + batch_rows]
        statement = sa.insert(table).values(chunk)
        text = str(statement.compile(dialect=_PG, compile_kwargs={"literal_binds": True}))
        out.append(BulkRowsOp(str(table.name), getattr(table, "schema", None), [text],
                              len(chunk)))
    return out


# -- planning ------------------------------------------------------------------------------------


@dataclass
class Planned:
    """A revision's plan and the schema it leads to (the one model of the desired schema,
    built once from the live schema and the revision's ops, and fed to the planner)."""

    plan: Plan
    desired: sa.MetaData


def plan_revision(expanded: Compiled, live: Snapshot, live_md: sa.MetaData, profile: Profile,
                  options: Options, *, source: Mapping[str, Any]) -> Planned:
    expanded = Compiled(ops=conditional_ops(expanded.ops, live, expanded.warnings),
                        warnings=expanded.warnings)
    desired = desired_metadata(live_md, expanded.ops)
    planned = fold_into_new_tables(renames_first(expanded.ops))
    plan = make_plan(planned, live, desired, profile, options, source=source,
                     warnings=expanded.warnings)
    return Planned(plan, desired)


def compile_ops(expanded: Compiled, live: Snapshot, live_md: sa.MetaData, profile: Profile,
                options: Options, *, source: Mapping[str, Any]) -> Plan:
    return plan_revision(expanded, live, live_md, profile, options, source=source).plan


def conditional_ops(recorded: Sequence[ops.MigrateOperation], live: Snapshot,
                    warnings: list[str]) -> list[ops.MigrateOperation]:
    """``recorded`` without the ``if_exists=True`` drops of objects that are not there and the
    ``if_not_exists=True`` creates of objects that are, as PostgreSQL would skip them; decided
    against the live schema and the revision's earlier ops, and said in the plan's warnings."""
    present: dict[tuple[str, str], bool] = {}  # (kind, qualified name) -> there now
    live_names: dict[tuple[str | None, str], str] = {}  # table renamed earlier -> live name

    def there(kind: str, name: str, schema: str | None, table: str | None) -> bool:
        key = (kind, f"{schema or 'public'}.{name}")
        if key not in present:
            live_table = live_names.get((schema, table), table) if table else None
            present[key] = _live_has(live, kind, name, schema, live_table)
        return present[key]

    out: list[ops.MigrateOperation] = []
    for position, given in enumerate(recorded):
        op = given
        if isinstance(op, RawSqlOp):
            # SQL of its own may create or drop anything: what follows runs as written
            return out + list(recorded[position:])
        if isinstance(op, ops.RenameTableOp):
            old = live_names.pop((op.schema, op.table_name), op.table_name)
            live_names[(op.schema, str(op.new_table_name))] = old
        if isinstance(op, ops.DropConstraintOp) and op.constraint_type is None:
            op = _typed_drop(op, live, live_names)
        found = _conditional(op)
        if found is None:
            out.append(op)
            continue
        kind, name, schema, table, creates, conditional = found
        exists = there(kind, name, schema, table)
        if conditional and exists == creates:
            warnings.append(f"{_op_call(op)}({name!r}, "
                            f"{'if_not_exists' if creates else 'if_exists'}=True): the "
                            f"{kind} {'already exists' if creates else 'is not there'}; "
                            "skipped, as PostgreSQL would")
            continue
        present[(kind, f"{schema or 'public'}.{name}")] = creates
        out.append(op)
    return out


def _typed_drop(op: ops.DropConstraintOp, live: Snapshot,
                live_names: Mapping[tuple[str | None, str], str]) -> ops.DropConstraintOp:
    """A drop of a constraint of unknown kind (SQL the revision wrote) that is the live
    table's primary key, as a drop of the primary key: the planner recreates the table
    (DSQL cannot DROP the primary key), as for ``op.drop_constraint(type_="primary")``."""
    table = live.table(live_names.get((op.schema, op.table_name), op.table_name), op.schema)
    found = table.constraint(str(op.constraint_name)) if table is not None else None
    if found is None or found.kind != "primary_key":
        return op
    typed = copy.copy(op)
    typed.constraint_type = "primary"
    return typed


def _conditional(op: ops.MigrateOperation) -> tuple[str, str, str | None, str | None, bool,
                                                     bool] | None:
    """(kind, name, schema, table, creates, conditional) of an op that creates or drops a
    table, an index or a constraint."""
    if isinstance(op, (ops.CreateIndexOp, ops.DropIndexOp)):
        creates = isinstance(op, ops.CreateIndexOp)
        flag = getattr(op, "if_not_exists" if creates else "if_exists", None)
        return ("index", str(op.index_name), op.schema, op.table_name, creates, bool(flag))
    if isinstance(op, (ops.CreateTableOp, ops.DropTableOp)):
        creates = isinstance(op, ops.CreateTableOp)
        flag = getattr(op, "if_not_exists" if creates else "if_exists", None)
        return ("table", op.table_name, op.schema, None, creates, bool(flag))
    if isinstance(op, ops.DropConstraintOp):
        return ("constraint", str(op.constraint_name), op.schema, op.table_name, False,
                bool(getattr(op, "if_exists", None)))
    return None


def _live_has(live: Snapshot, kind: str, name: str, schema: str | None,
              table: str | None) -> bool:
    if kind == "table":
        return live.table(name, schema) is not None
    tables = [live.table(table, schema)] if table else [
        t for t in live.tables.values() if t.schema == (schema or "public")]
    if kind == "index":
        return any(t is not None and t.index(name) is not None for t in tables)
    return any(t is not None and t.constraint(name) is not None for t in tables)


_SHAPE_OPS = (ops.AddColumnOp, ops.DropColumnOp, ops.AlterColumnOp,
              ops.CreateUniqueConstraintOp, ops.CreateCheckConstraintOp,
              ops.CreateForeignKeyOp, ops.DropConstraintOp, RecreateTableOp, UniqueUsingIndexOp,
              ChangePrimaryKeyOp)


def fold_into_new_tables(planned: Sequence[ops.MigrateOperation]) -> list[ops.MigrateOperation]:
    """A table created by the revision is created in its final shape (the planner takes it from
    the revision's target schema), so later column and constraint ops on it, and renames of
    it, are already part of its CREATE TABLE."""
    created: dict[tuple[str | None, str], int] = {}  # table -> position of its creation
    out: list[ops.MigrateOperation] = []
    for operation in planned:
        if isinstance(operation, ops.CreateTableOp):
            created[(operation.schema, operation.table_name)] = len(created)
        elif isinstance(operation, _SHAPE_OPS):
            schema = operation.kw.get("source_schema") if isinstance(
                operation, ops.CreateForeignKeyOp) else getattr(operation, "schema", None)
            table = operation.source_table if isinstance(
                operation, ops.CreateForeignKeyOp) else operation.table_name
            if (schema, table) in created and not _refers_to_later_table(operation, created):
                continue
        elif isinstance(operation, ops.RenameTableOp) and (
                operation.schema, operation.new_table_name) in created:
            continue  # renames_first already pointed the CREATE TABLE at the new name
        out.append(operation)
    return out


def _refers_to_later_table(operation: ops.MigrateOperation,
                           created: Mapping[tuple[str | None, str], int]) -> bool:
    """A foreign key of a new table to a table the revision creates after it (prefect's
    worker_pool -> worker_pool_queue): not part of the first CREATE TABLE, whose referent does
    not exist yet, but added by its own op once it does."""
    if not isinstance(operation, ops.CreateForeignKeyOp):
        return False
    source = created[(operation.kw.get("source_schema"), operation.source_table)]
    referent = created.get((operation.kw.get("referent_schema"), operation.referent_table))
    return referent is not None and referent > source


_TABLE_ATTRS = ("table_name", "source_table", "referent_table", "table")


def renames_first(recorded: Sequence[ops.MigrateOperation]) -> list[ops.MigrateOperation]:
    """The planner runs table renames before everything else and expects the other ops to name
    tables by their new names; a revision may rename after altering, so ops that come before a
    rename are pointed at the new name."""
    out = list(recorded)
    for index, operation in enumerate(recorded):
        if not isinstance(operation, ops.RenameTableOp):
            continue
        old, new = operation.table_name, operation.new_table_name
        for earlier in range(index):
            item = out[earlier]
            if isinstance(item, ops.RenameTableOp):
                continue
            attrs = [a for a in _TABLE_ATTRS if getattr(item, a, None) == old]
            if attrs:
                item = copy.copy(item)
                for attr in attrs:
                    setattr(item, attr, new)
                out[earlier] = item
    return out


@handles(RawSqlOp)
def _plan_raw(operation: RawSqlOp, ctx: Context) -> None:
    summary = f"{operation.where}: {_preview(operation.sql)}"
    if operation.kind == "ddl" and operation.is_async and operation.node_type == "IndexStmt":
        ctx.add(StepKind.ASYNC_INDEX, summary, [operation.sql], table=None,
                notes=["done when the job has completed and the index is valid"])
    elif operation.kind == "ddl" and operation.is_async:
        ctx.add(StepKind.ASYNC_VALIDATE, summary, [operation.sql], table=None)
    elif operation.kind == "ddl":
        ctx.add(StepKind.DDL, summary, [operation.sql], table=None,
                destructive=operation.node_type in ("DropStmt", "TruncateStmt"))
    else:
        ctx.add(StepKind.DML, summary, [operation.sql], table=None,
                destructive=operation.node_type == "DeleteStmt")


@handles(BulkRowsOp)
def _plan_bulk(operation: BulkRowsOp, ctx: Context) -> None:
    ctx.add(StepKind.DML, f"insert {operation.rows} row(s) into {operation.table}",
            operation.statements, table=operation.table)


@recreation_check(RecreateTableOp)
def _recreate_recreates(operation: RecreateTableOp, ctx: Context) -> str | None:
    return operation.reason or "op.recreate_table"


@handles(RecreateTableOp)
def _plan_recreate(operation: RecreateTableOp, ctx: Context) -> None:  # pragma: no cover
    raise AssertionError("op.recreate_table is always planned as a recreation")


@recreation_check(UniqueUsingIndexOp)
def _unique_using_index_recreates(operation: UniqueUsingIndexOp, ctx: Context) -> str | None:
    if not ctx.profile.allows(Capability.ADD_UNIQUE_USING_INDEX):
        return (f"add unique constraint {operation.constraint_name} "
                f"({ctx.profile.name} profile)")
    return None


@handles(UniqueUsingIndexOp)
def _plan_unique_using_index(operation: UniqueUsingIndexOp, ctx: Context) -> None:
    table = operation.table_name
    ctx.add(StepKind.DDL, f"add unique constraint {operation.constraint_name} using index "
            f"{operation.index_name}",
            [f"ALTER TABLE {qual(table, operation.schema)} ADD CONSTRAINT "
             f"{q(operation.constraint_name)} UNIQUE USING INDEX {q(operation.index_name)}"],
            table=table)


@handles(BackfillOp)
def _plan_backfill(operation: BackfillOp, ctx: Context) -> None:
    table, schema = operation.table, operation.schema
    live = ctx.live_table(table, schema)
    keys = _live_keyset(live) if live is not None else _desired_keyset(table, schema, ctx)
    target = qual(table, schema)
    assignments = ", ".join(f"{q(col)} = {pct(expr)}" for col, expr in operation.values.items())
    condition = f" AND ({pct(operation.where)})" if operation.where else ""
    size = max(1, min(operation.batch_size or ctx.batch_size(live),
                      ctx.profile.limits.rows_per_transaction))
    rows = live.rows if live is not None else None
    batches = 1 if rows is None else max(1, math.ceil(rows / size))
    ctx.add(StepKind.BACKFILL,
            f"backfill {table} ({', '.join(operation.values)}) in batches of {size}",
            [f"UPDATE {target} SET {assignments} WHERE {keys.range()}{condition}"],
            table=table, batch=keys.batch(table, target, size),
            estimate=Estimate(rows=rows, batches=batches, transactions=batches),
            notes=["resumable: each batch commits with its cursor"])


def q(name: str) -> str:
    return quote_ident(name)


def qual(table: str, schema: str | None) -> str:
    return quote_qualified(None if schema in (None, "public") else schema, table)


def type_sql(type_: Any) -> str:
    return str(type_.compile(dialect=_PG))


def pct(sql: str) -> str:
    """``%`` escaped: batched statements run with parameters."""
    return sql.replace("%", "%%")


def _live_keyset(live: Any) -> Keyset:
    try:
        return keyset_for(live)
    except PlanningError:
        raise DsqlMigrateError(f"op.backfill({live.name!r}): the table has no primary key",
                               hint="a backfill walks the primary key in batches") from None


def _desired_keyset(table: str, schema: str | None, ctx: Context) -> Keyset:
    desired = ctx.desired.tables.get(table_key(table, schema))
    if desired is None or not len(desired.primary_key.columns):
        raise DsqlMigrateError(f"op.backfill({table!r}): no such table with a primary key")
    columns = list(desired.primary_key.columns)
    return Keyset(key=tuple(c.name for c in columns),
                  types=tuple(type_sql(c.type).lower() for c in columns))


def _preview(sql: str, width: int = 60) -> str:
    one = " ".join(sql.split())
    return one if len(one) <= width else one[:width - 3] + "..."


__all__ = ["Compiled", "Planned", "RevisionRefused", "compile_ops", "expand", "plan_revision",
           "record"]
