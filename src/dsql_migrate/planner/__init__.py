"""Ops → DSQL-safe steps, per capability profile (DESIGN.md §1, DSQL.md §6).

The planner is pure: it reads the ops of a diff, the live :class:`~dsql_migrate.catalog.Snapshot`
(row estimates, current types, index validity) and the desired ``MetaData`` (the full target
definition of a table that must be recreated), and returns a :class:`~dsql_migrate.plan.Plan`.
No I/O.

Each op family lives in its own module and registers its handlers with :func:`handles`
(``tables``, ``columns``, ``indexes``, ``constraints``); a handler either emits steps or asks for
the table to be recreated (``recreate``), in which case every op on that table is folded into one
recreation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic.operations import ops

from ..catalog import Snapshot
from ..catalog import Table as LiveTable
from ..errors import ConfigError, DsqlMigrateError, ExitCode
from ..plan import Batch, Estimate, Plan, Step, StepKind
from ..profiles import STATE_ROWS_PER_BATCH, Capability, Profile

WRITES_PAUSE = "pause"
WRITES_RESYNC = "resync"
#: copy, then re-sync the keys a CDC stream says changed; a short write freeze for the cut-over
WRITES_CDC = "cdc"
#: every --writes choice, in the order --help lists them
WRITES_CHOICES = (WRITES_PAUSE, WRITES_RESYNC, WRITES_CDC)
NOT_NULL_RECREATE = "recreate"
NOT_NULL_CHECK = "check"
DEFAULT_BATCH_ROWS = 1000


class PlanningError(DsqlMigrateError):
    """A change that cannot be planned for the profile."""

    exit_code = ExitCode.FAILED


@dataclass(frozen=True)
class Options:
    """How to plan: write handling during copies, NOT NULL strategy, batch size."""

    writes: str = WRITES_PAUSE  # "pause" | "resync" | "cdc"
    not_null: str = NOT_NULL_RECREATE  # "recreate" | "check" (current profile only)
    batch_rows: int | None = None  # default: min(1000, the profile's row limit)

    def batch_size(self, profile: Profile, *, copy: bool = False) -> int:
        """Rows per batch: ``batch_rows``, else 1,000 for changes to live rows, and for a copy
        into a new table (which nothing else writes to, so no batch can conflict with the
        application) the most a transaction allows next to the runner's state rows."""
        limit = profile.limits.rows_per_transaction
        default = limit - STATE_ROWS_PER_BATCH if copy else DEFAULT_BATCH_ROWS
        return max(1, min(self.batch_rows or default, limit))


@dataclass
class Context:
    profile: Profile
    live: Snapshot
    desired: sa.MetaData
    options: Options
    all_ops: Sequence[ops.MigrateOperation] = ()
    steps: list[Step] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: the ops planned so far, in plan order (a recreation asks which keys are dropped already)
    planned_ops: list[ops.MigrateOperation] = field(default_factory=list)
    #: the tables recreated so far, (schema, table), in plan order
    recreated: list[tuple[str | None, str]] = field(default_factory=list)

    def add(self, kind: StepKind, summary: str, sql: Sequence[str], *, table: str | None,
            destructive: bool = False, reversible: bool = True, batch: Batch | None = None,
            details: Mapping[str, Any] | None = None, estimate: Estimate | None = None,
            notes: Iterable[str] = ()) -> Step:
        if estimate is None:
            estimate = Estimate(async_jobs=1 if kind.is_async else 0)
        step = Step(id=len(self.steps) + 1, kind=kind, summary=summary, sql=tuple(sql),
                    table=table, destructive=destructive, reversible=reversible, batch=batch,
                    details=dict(details or {}), estimate=estimate, notes=tuple(notes))
        self.steps.append(step)
        return step

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def batch_size(self, live: LiveTable | None = None, *, statements: int = 1,
                   copy: bool = False) -> int:
        """Rows per batch: the option (default: see :meth:`Options.batch_size`), at most the
        profile's row limit, and
        small enough that ``statements`` writes of that many rows of ``live`` (average width
        from the statistics, plus an index entry per index) stay under half the byte limit."""
        size = self.options.batch_size(self.profile, copy=copy)
        size = max(1, min(size, self.profile.limits.rows_per_transaction // statements))
        if live is not None and live.row_bytes:
            per_row = live.row_bytes * (1 + len(live.indexes)) * statements
            size = max(1, min(size, self.profile.limits.bytes_per_transaction // 2 // per_row))
        return size

    def live_table(self, name: str, schema: str | None = None) -> LiveTable | None:
        return self.live.table(name, schema)

    def desired_table(self, name: str, schema: str | None = None) -> sa.Table | None:
        key = f"{schema}.{name}" if schema else name
        return self.desired.tables.get(key)

    def batch_estimate(self, rows: int | None, size: int) -> Estimate:
        batches = 1 if rows is None else max(1, math.ceil(rows / size))
        return Estimate(rows=rows, batches=batches, transactions=batches)


Handler = Callable[[Any, Context], None]
_HANDLERS: dict[type[ops.MigrateOperation], Handler] = {}
_O = TypeVar("_O", bound=ops.MigrateOperation)


def handles(*op_types: type[_O]) -> Callable[[Callable[[_O, Context], None]],
                                              Callable[[_O, Context], None]]:
    """Register the function as the planner of ``op_types``."""
    def register(fn: Callable[[_O, Context], None]) -> Callable[[_O, Context], None]:
        for op_type in op_types:
            _HANDLERS[op_type] = fn
        return fn
    return register


def op_table(op: ops.MigrateOperation) -> tuple[str | None, str | None]:
    """(schema, table) an op works on."""
    if isinstance(op, ops.CreateForeignKeyOp):
        return op.kw.get("source_schema"), op.source_table
    return getattr(op, "schema", None), getattr(op, "table_name", None)


def plan(
    op_list: Sequence[ops.MigrateOperation],
    live: Snapshot,
    desired: sa.MetaData,
    profile: Profile,
    options: Options | None = None,
    *,
    source: Mapping[str, Any] | None = None,
    warnings: Sequence[str] = (),
) -> Plan:
    """Compile ``op_list`` into a Plan for ``profile``."""
    from . import columns, constraints, indexes, recreate, roles, tables  # noqa: F401 - registration

    options = options or Options()
    if options.not_null == NOT_NULL_CHECK and not (
            profile.allows(Capability.CHECK_NOT_VALID)
            and profile.allows(Capability.VALIDATE_CONSTRAINT_ASYNC)):
        raise ConfigError(
            f"--not-null=check needs CHECK ... NOT VALID and async validation, which the "
            f"{profile.name} profile does not have", hint="use --not-null=recreate")
    ctx = Context(profile=profile, live=live, desired=desired, options=options,
                  all_ops=list(op_list))
    for warning in warnings:
        ctx.warn(warning)
    to_recreate = _tables_to_recreate(op_list, ctx)
    recreated: set[tuple[str | None, str]] = set()
    dropped = {op_table(op) for op in op_list if isinstance(op, ops.DropTableOp)}
    deferred = _keys_to_new_tables(op_list, to_recreate, live)
    early = _added_before_data_changes(op_list, to_recreate, ctx)
    deferred |= early  # planned in place, at their own position
    for op in _ordered(op_list, to_recreate, live, desired, early):
        key = op_table(op)
        if isinstance(op, ops.DropIndexOp) and key in dropped:
            ctx.planned_ops.append(op)
            continue  # dropping the table drops its indexes
        if key in to_recreate and key[1] is not None and not isinstance(
                op, ops.RenameTableOp) and id(op) not in deferred:
            if key not in recreated:
                recreated.add((key[0], key[1]))
                recreate.recreate_table(key[1], key[0], to_recreate[key], ctx)
                ctx.recreated.append((key[0], key[1]))
            ctx.planned_ops.append(op)
            continue
        _dispatch(op, ctx)
        ctx.planned_ops.append(op)
        if id(op) in early and isinstance(op, ops.AddColumnOp):
            ctx.live = _with_column(ctx.live, op)  # the later recreation copies it
    ctx.live = live
    premise, promise = _premise_and_promise(op_list, ctx, to_recreate)
    _promise_passing(promise, [op for op in op_list if id(op) in early])
    return Plan(profile=profile.name, steps=tuple(ctx.steps), source=dict(source or {}),
                warnings=tuple(ctx.warnings), premise=premise, promise=promise)


def _premise_and_promise(op_list: Sequence[ops.MigrateOperation], ctx: Context,
                         to_recreate: Mapping[tuple[str | None, str | None], list[str]],
                         ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """What the plan assumes and promises about the tables it touches (DESIGN.md §3.2a);
    none for a plan without steps."""
    from .columns import not_null_by_check
    from .promise import premise, promise

    if not ctx.steps:
        return None, None
    before = premise(op_list, [step.table for step in ctx.steps], ctx.live)
    after, unchecked = promise(
        op_list, before, ctx.desired, not_null_by_check=not_null_by_check(ctx),
        recreated={(schema, name) for schema, name in to_recreate if name is not None},
        foreign_keys=ctx.profile.allows(Capability.FOREIGN_KEYS),
        statements=[statement for step in ctx.steps for statement in step.sql])
    for note in unchecked:
        ctx.warn(f"end state not checked: {note}")
    return before, after


def _promise_passing(promise: dict[str, Any] | None,
                     added: Sequence[ops.MigrateOperation]) -> None:
    """The columns added in place before a data change, as they are until the recreation
    changes them (:data:`~dsql_migrate.fingerprint.PASSING`): the plan's own state part-way."""
    from ..fingerprint import PASSING
    from .promise import expected_column, table_key

    for op in added:
        if not isinstance(op, ops.AddColumnOp) or promise is None:
            continue
        table = promise.get(table_key(op.table_name, op.schema))
        if isinstance(table, dict):
            passing = table.setdefault(PASSING, {}).setdefault("columns", {})
            passing[op.column.name] = expected_column(op.column)


def recreations(
    op_list: Sequence[ops.MigrateOperation],
    live: Snapshot,
    desired: sa.MetaData,
    profile: Profile,
    options: Options | None = None,
) -> dict[tuple[str | None, str | None], list[str]]:
    """The tables :func:`plan` would recreate for ``op_list``, ``(schema, table)`` → the
    reasons, without planning anything (the autogenerate rewriter writes these as
    ``op.recreate_table`` blocks)."""
    from . import columns, constraints, indexes, recreate, roles, tables  # noqa: F401 - registration

    ctx = Context(profile=profile, live=live, desired=desired, options=options or Options(),
                  all_ops=list(op_list))
    return _tables_to_recreate(op_list, ctx)


def _ordered(op_list: Sequence[ops.MigrateOperation],
             to_recreate: Mapping[tuple[str | None, str | None], list[str]],
             live: Snapshot, desired: sa.MetaData,
             early: Collection[int] = ()) -> list[ops.MigrateOperation]:
    """The ops in :func:`ranking` order; among recreations, a referenced table before the
    tables that reference it (a new table's foreign keys need the new referenced columns).
    A table with ``early`` ops (see :func:`_added_before_data_changes`) keeps all its ops in
    the revision's order, after the data change."""
    from .recreate import recreation_order

    rank = ranking(op_list, to_recreate, live)
    deferred = _keys_to_new_tables(op_list, to_recreate, live)
    in_order = {op_table(op) for op in op_list if id(op) in early}
    order = recreation_order(list(to_recreate), op_list, live, desired)
    return sorted(op_list, key=lambda op: (
        3 if id(op) in deferred or op_table(op) in in_order else rank(op),
        order.get(op_table(op), 0)))  # stable


def _changes_data(op: ops.MigrateOperation) -> bool:
    """An op that reads or writes rows: the revision's own data change between schema ops.
    The Alembic plugin's ops are named, not imported: the plugin imports the planner."""
    kind = getattr(op, "kind", None)
    return (type(op).__name__ in ("RawSqlOp", "BulkRowsOp", "BackfillOp") and kind != "ddl") \
        or isinstance(op, (ops.ExecuteSQLOp, ops.BulkInsertOp))


def _added_before_data_changes(op_list: Sequence[ops.MigrateOperation],
                               to_recreate: Mapping[tuple[str | None, str | None], list[str]],
                               ctx: Context) -> set[int]:
    """``id()`` of the ``add_column`` ops of a recreated table that come before a data change
    of the revision (an ``UPDATE`` in ``op.execute``, say), which comes before the ops that
    recreate the table: the common "add a nullable column, fill it, make it NOT NULL". Folded
    into the recreation, the column would be new to it and the data change would run after
    it (its pre-check sees the rows unfilled); added in place first (they need no
    recreation), the data change runs, and then the recreation copies the filled column.
    Only when every op of the table before the data change is such an ``add_column``: the
    planner predicts the live table after those alone."""
    out: set[int] = set()
    for key in to_recreate:
        positions = [i for i, op in enumerate(op_list) if op_table(op) == key]
        reasons = [i for i in positions if _recreates(op_list[i], ctx)]
        if not reasons:
            continue
        changes = [i for i, op in enumerate(op_list) if _changes_data(op) and i < reasons[0]]
        if not changes:
            continue
        before = [i for i in positions if i < changes[-1]]
        if before and all(isinstance(op_list[i], ops.AddColumnOp) for i in before):
            out.update(id(op_list[i]) for i in before)
    return out


def _recreates(op: ops.MigrateOperation, ctx: Context) -> bool:
    check = _RECREATION_CHECKS.get(type(op))
    return check is not None and check(op, ctx) is not None


def _with_column(live: Snapshot, op: ops.AddColumnOp) -> Snapshot:
    """``live`` with the column ``op`` adds (in place, earlier in the plan)."""
    import dataclasses

    from ..catalog import Column as LiveColumn
    from ._sql import default_sql, type_sql

    table = live.table(op.table_name, op.schema)
    if table is None:
        return live
    column = LiveColumn(name=op.column.name, type=type_sql(op.column.type).lower(),
                        nullable=bool(op.column.nullable), default=default_sql(op.column),
                        position=len(table.columns) + 1)
    tables = dict(live.tables)
    tables[table.qualified] = dataclasses.replace(table, columns=(*table.columns, column))
    return dataclasses.replace(live, tables=tables)


def _keys_to_new_tables(op_list: Sequence[ops.MigrateOperation],
                        to_recreate: Mapping[tuple[str | None, str | None], list[str]],
                        live: Snapshot) -> set[int]:
    """``id()`` of the ``create_foreign_key`` ops of recreated tables that reference a table
    the plan creates: recreations run before new tables are created (a new table may reference
    a recreated one), so the new table of the recreation is created without the key
    (:func:`.tables._added_later`), and the op adds it once its referent exists, as for a key
    between two new tables; folded into the recreation, it would be lost."""
    created = {(op.schema, op.table_name) for op in op_list if isinstance(op, ops.CreateTableOp)}
    return {id(op) for op in op_list
            if isinstance(op, ops.CreateForeignKeyOp) and op_table(op) in to_recreate
            and (op.kw.get("referent_schema"), op.referent_table) in created
            and live.table(op.referent_table, op.kw.get("referent_schema")) is None}


def ranking(op_list: Sequence[ops.MigrateOperation],
            to_recreate: Mapping[tuple[str | None, str | None], list[str]],
            live: Snapshot) -> Callable[[ops.MigrateOperation], int]:
    """The order :func:`plan` runs ops in, as a sort key (the sort is stable): renames first;
    then what removes a foreign key to a recreated table (the drop of that key, or all the ops
    of a table that is dropped), since the key would keep the recreated table's backup from
    being dropped; then recreations (so that new tables reference the recreated ones); then
    everything else in the diff's order. Before all of them, the data changes the ops open
    with (nothing of the schema changes before them, so first is where the revision has
    them; after a rename, a ``DELETE FROM`` of the old name would fail)."""
    dropped_tables, dropped_keys = _references_to_remove(op_list, to_recreate, live)
    opening = set()  # the data changes the revision opens with: first, as written
    for op in op_list:
        if not _changes_data(op):
            break
        opening.add(id(op))

    def rank(op: ops.MigrateOperation) -> int:
        if id(op) in opening:
            return -1
        if isinstance(op, ops.RenameTableOp):
            return 0
        key = op_table(op)
        if key in dropped_tables or (isinstance(op, ops.DropConstraintOp) and (
                key, op.constraint_name) in dropped_keys):
            return 1  # not the re-add of a dropped key: that one goes after the recreation
        if key in to_recreate:
            return 2
        return 3

    return rank


def _references_to_remove(op_list: Sequence[ops.MigrateOperation],
                          to_recreate: Mapping[tuple[str | None, str | None], list[str]],
                          live: Snapshot) -> tuple[set[tuple[str | None, str | None]],
                                                   set[tuple[tuple[str | None, str | None],
                                                             str | None]]]:
    """Tables dropped, and foreign keys dropped, that reference a recreated table. The ops
    name a table renamed earlier in ``op_list`` by its new name; the live schema by its old."""
    live_names: dict[tuple[str | None, str], str] = {}  # (schema, name in the ops) → live name
    for op in op_list:
        if isinstance(op, ops.RenameTableOp):
            old = live_names.pop((op.schema, op.table_name), op.table_name)
            live_names[(op.schema, str(op.new_table_name))] = old

    def live_table(name: str, schema: str | None) -> LiveTable | None:
        return live.table(live_names.get((schema, name), name), schema)

    recreated = set()
    for schema, name in to_recreate:
        table = live_table(name, schema) if name is not None else None
        if table is not None:
            recreated.add(table.qualified)
    tables: set[tuple[str | None, str | None]] = set()
    keys: set[tuple[tuple[str | None, str | None], str | None]] = set()
    for op in op_list:
        key = op_table(op)
        if key in to_recreate or not isinstance(op, (ops.DropTableOp, ops.DropConstraintOp)):
            continue
        table = live_table(op.table_name, op.schema)
        if table is None:
            continue
        references = {c.name for c in table.constraints
                      if c.kind == "foreign_key" and c.ref_table in recreated}
        if isinstance(op, ops.DropTableOp) and references:
            tables.add(key)
        elif isinstance(op, ops.DropConstraintOp) and op.constraint_name in references:
            keys.add((key, op.constraint_name))
    return tables, keys


def _dispatch(op: ops.MigrateOperation, ctx: Context) -> None:
    for op_type in type(op).__mro__:
        handler = _HANDLERS.get(op_type)
        if handler is not None:
            handler(op, ctx)
            return
    raise PlanningError(f"no planner for {type(op).__name__}")


def _tables_to_recreate(op_list: Sequence[ops.MigrateOperation],
                        ctx: Context) -> dict[tuple[str | None, str | None], list[str]]:
    """Tables that need recreating, with the reasons; a dry run of each handler."""
    reasons: dict[tuple[str | None, str | None], list[str]] = {}
    for op in op_list:
        check = _RECREATION_CHECKS.get(type(op))
        reason = check(op, ctx) if check is not None else None
        if reason is not None:
            reasons.setdefault(op_table(op), []).append(reason)
    return reasons


RecreationCheck = Callable[[Any, Context], "str | None"]
_RECREATION_CHECKS: dict[type[ops.MigrateOperation], RecreationCheck] = {}


def recreation_check(*op_types: type[_O]) -> Callable[[Callable[[_O, Context], str | None]],
                                                      Callable[[_O, Context], str | None]]:
    """Register a function that says why an op needs its table recreated (or None)."""
    def register(fn: Callable[[_O, Context], str | None]) -> Callable[[_O, Context], str | None]:
        for op_type in op_types:
            _RECREATION_CHECKS[op_type] = fn
        return fn
    return register


__all__ = ["Context", "Options", "PlanningError", "handles", "op_table", "plan", "ranking",
           "recreation_check", "recreations"]
