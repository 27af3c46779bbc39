"""Table recreation: how DSQL does what it cannot do in place (DSQL.md §6).

Each stage is its own resumable step (one DDL statement per step):

1. data pre-checks (casts that would fail, NULLs, duplicates) that change nothing;
2. ``CREATE TABLE <t>__new`` with the target definition (constraints inline, so every copied row
   is checked) and the old table's storage parameters; a primary-key or unique constraint whose
   name the old table still holds gets a temporary ``__new`` name (index names are unique per
   schema), so the live table keeps every name until the swap;
3. what is attached to the old table, put on the new one: comments on the table and its
   columns, and privileges on both (GRANTs to every role: ``AWS IAM GRANT`` maps IAM to roles,
   so the mappings stay valid);
4. a keyset-batched copy on the old primary key, with the casts;
5. verify: row counts and checksums per key range; with writes paused (the default) any
   difference fails the step and so blocks the swap; with ``--writes=resync`` the differing
   ranges are copied again until two passes agree;
6. foreign keys of other tables that still reference ``<t>`` at this point of the plan (also
   keys the plan drops later, and keys of tables recreated earlier in it) are dropped; identity
   sequences restarted after both the copied values and the old sequence; views that read
   ``<t>`` (and views on those views) dropped, dependents first;
7. swap by renames, keeping the old table as ``<t>__old`` (never dropped before verification);
   the old table's constraint and index names move to ``__old`` and the new table takes the
   original names; views created again against the new table (in dependency order, with their
   grants and comments); extended statistics moved; foreign keys added again, ``NOT VALID``,
   against the new table and validated by async jobs (rows written between the drop and the
   re-add are checked too);
8. secondary indexes created ASYNC and waited for;
9. constraints confirmed validated (they were created with the table, so the copy checked
   every row);
10. the backup dropped, as a separate destructive step.

Names that a recreation creates (``<t>__new``, ``<t>__old``, ``<name>__new``, ``<name>__old``)
must be free: a plan abandoned part-way leaves them behind, and planning over them is refused
with a message that says what is left and what to do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import sqlalchemy as sa
from alembic.operations import ops

from ..catalog import Constraint, Grant, Snapshot, View
from ..catalog import Table as LiveTable
from ..plan import Estimate, StepKind
from ..profiles import Capability, Profile
from . import WRITES_CDC, WRITES_RESYNC, Context, PlanningError
from ._keyset import Keyset, keyset_for, pct
from ._sql import (
    MAX_IDENTIFIER,
    cast_failure_predicate,
    cols,
    default_sql,
    expr_sql,
    literal,
    normalize_type,
    q,
    qual,
    suffixed,
    type_sql,
)
from .columns import live_name
from .constraints import duplicates_query, validate_async
from .indexes import async_index_step, index_options, index_sql

NEW_SUFFIX = "__new"
OLD_SUFFIX = "__old"


def _column_renames(ctx: Context, table: str) -> dict[str, str]:
    """new column name → old (live) name, from the rename ops of ``table``."""
    return {str(op.modify_name): op.column_name for op in ctx.all_ops
            if isinstance(op, ops.AlterColumnOp) and op.table_name == table and op.modify_name}


def _replaced_columns(ctx: Context, table: str) -> set[str]:
    """Columns of ``table`` the ops drop and then add again under the same name: new columns
    (PostgreSQL drops the old one with its values, default and owned sequence)."""
    dropped: set[str] = set()
    out: set[str] = set()
    for op in ctx.all_ops:
        if getattr(op, "table_name", None) != table:
            continue
        if isinstance(op, ops.DropColumnOp):
            dropped.add(op.column_name)
        elif isinstance(op, ops.AddColumnOp) and op.column.name in dropped:
            out.add(op.column.name)
    return out


def recreate_table(table: str, schema: str | None, reasons: list[str], ctx: Context) -> None:
    desired = ctx.desired_table(table, schema)
    live = ctx.live_table(live_name(ctx, table), schema)
    if desired is None or live is None:
        raise PlanningError(f"cannot recreate {table}: it must exist in the live schema and in "
                            "the target")
    if live.reloptions:
        # DSQL rejects CREATE TABLE ... WITH (storage parameters): the new table cannot have
        # them, and a recreation must not drop them silently (only a PostgreSQL-born table,
        # e.g. on the emulator's raw server, can have any)
        raise PlanningError(
            f"cannot recreate {table}: it has storage parameters "
            f"({', '.join(live.reloptions)}), which DSQL does not support (CREATE TABLE ... "
            "WITH (storage parameters) is rejected), so the new table could not keep them",
            hint=f"reset them first (ALTER TABLE {qual(live.name, schema)} RESET "
            f"({', '.join(o.split('=', 1)[0] for o in live.reloptions)})), then plan again")
    # an explicit op.recreate_table carries the reasons of the ops inside it, joined
    why = "; ".join(dict.fromkeys(part for reason in reasons for part in reason.split("; ")))
    src = qual(table, schema)
    new_name = suffixed(table, NEW_SUFFIX)
    old_name = suffixed(table, OLD_SUFFIX)
    new = qual(new_name, schema)
    renames = _column_renames(ctx, table)
    back = {old: new_col for new_col, old in renames.items()}
    keys = keyset_for(live)
    rows = live.rows
    views = ctx.live.dependent_views(live.qualified)
    if views and live.name != table:
        raise PlanningError(
            f"cannot recreate {table} (renamed from {live.name} in this change): views read it "
            f"({', '.join(v.name for v in views)}), and their definitions name {live.name}; "
            "rename the table in a change of its own first, then plan this one")
    _refuse_broken_views(views, live, desired, back, table)
    names = constraint_names(desired, live, back)
    temporary = _temporary_names(desired, live, names)
    _refuse_leftovers(ctx, live, table, schema, [new_name, old_name, *temporary.values(),
                                                 *_old_names(desired, live, names).values()])

    # source expression of every target column that gets a value from the old table
    targets: list[str] = []
    exprs: list[str] = []
    compared: list[tuple[str, str]] = []  # (target column, source expression) in checksums
    needs_override = False
    prechecks: list[tuple[str, str]] = []
    replaced = _replaced_columns(ctx, table)
    for column in desired.columns:
        source_name = renames.get(column.name, column.name)
        live_col = None if column.name in replaced else live.column(source_name)
        default = default_sql(column)
        if live_col is None:
            if default is not None and column.identity is None:
                targets.append(column.name)
                exprs.append(pct(default))
            elif not column.nullable and column.identity is None:
                prechecks.append((f"{table} is empty (new NOT NULL column {column.name} has "
                                  "no default)", f"SELECT {cols(keys.key)} FROM {src} LIMIT 20"))
            continue
        expr = q(source_name)
        new_type = type_sql(column.type)
        if normalize_type(live_col.type) != normalize_type(new_type):
            failing = cast_failure_predicate(source_name, live_col.type, new_type)
            if failing is not None:
                prechecks.append((
                    f"every {table}.{source_name} casts to {new_type}",
                    f"SELECT {cols(keys.key)}, {q(source_name)} FROM {src} WHERE "
                    f"{q(source_name)} IS NOT NULL AND {failing} LIMIT 20"))
            expr = f"CAST({expr} AS {new_type})"
        if not column.nullable and live_col.nullable:
            if default is not None:
                expr = f"COALESCE({expr}, {pct(default)})"
            else:
                prechecks.append((f"no NULL in {table}.{source_name}",
                                  f"SELECT {cols(keys.key)} FROM {src} WHERE "
                                  f"{q(source_name)} IS NULL LIMIT 20"))
        if column.identity is not None:
            needs_override = True
        targets.append(column.name)
        exprs.append(expr)
        compared.append((column.name, expr))
    prechecks.extend(_unique_prechecks(desired, live, renames, table, schema))

    for summary, query in prechecks:
        ctx.add(StepKind.VERIFY, f"pre-check: {summary}", [query], table=table,
                details={"expect": "no rows"},
                notes=["reports the offending rows; nothing is changed"])

    from .tables import create_table_sql

    # the live columns whose values the copy leaves behind: the reviewer must see them named
    carried = {renames.get(c.name, c.name) for c in desired.columns if c.name not in replaced}
    lost = [c.name for c in live.columns if c.name not in carried]
    plural = len(lost) > 1
    lost_note = ([f"the copy leaves out column{'s' if plural else ''} {', '.join(lost)} "
                  f"(dropped by the target): {'their' if plural else 'its'} values are kept "
                  f"only in the backup {old_name}"] if lost else [])
    ctx.add(StepKind.DDL, f"create {new_name} with the target definition of {table}",
            [create_table_sql(desired, ctx, name=new_name,
                              constraint_names={**names, **temporary},
                              reloptions=live.reloptions,
                              identity_caches=_live_identity_caches(desired, live, renames))],
            table=table,
            notes=[f"recreating {table}: {why}", *lost_note]
            + ([f"{', '.join(sorted(temporary.values()))}: temporary names while the old "
                f"table holds the originals; renamed right after the swap"]
               if temporary else []))
    _carry_comments(ctx, desired, live, back, new, table)
    _carry_grants(ctx, live.grants, back, set(desired.columns.keys()), new, table,
                  what=f"privileges on {table}")

    override = " OVERRIDING SYSTEM VALUE" if needs_override else ""
    size = ctx.batch_size(live, copy=True)
    batch = keys.batch(table, src, size)
    cdc = ctx.options.writes == WRITES_CDC
    ctx.add(StepKind.COPY, f"copy {table} into {new_name} in keyset batches",
            [f"INSERT INTO {new} ({cols(targets)}){override} SELECT {', '.join(exprs)} "
             f"FROM {src} WHERE {keys.range()}"],
            table=table, batch=batch, estimate=ctx.batch_estimate(rows, size),
            details={"writes": WRITES_CDC} if cdc else None,
            # no ON CONFLICT DO NOTHING: the runner commits each batch with its cursor, so no
            # batch runs twice, and a row that is somehow there already should stop the copy
            # loudly rather than be skipped (it also cost ~75% more per batch)
            notes=["resumable: each batch commits in the same transaction as its cursor, so "
                   "no batch is applied twice"]
            + ([f"--writes=cdc: before the first batch, the runner records the moment the "
                "copy began and reads the CDC stream from a margin before it, so every change "
                f"to {table} committed during the copy is seen"] if cdc else []))

    verify = _verify_step(ctx, live=live, table=table, src=src, new=new, keys=keys, renames=renames,
                          desired=desired, targets=targets, exprs=exprs, compared=compared,
                          rows=rows, replaced=replaced, backup=qual(old_name, schema))
    referencing = moved_keys(ctx, live, table, schema)
    for child, child_schema, constraint in referencing:
        ctx.add(StepKind.DDL, f"drop foreign key {constraint.name} of {child} (it references "
                f"{table}) before the swap",
                [f"ALTER TABLE {qual(child, child_schema)} DROP CONSTRAINT {q(constraint.name)}"],
                table=child,
                notes=[f"a foreign key follows its table through a rename: kept, it would "
                       f"reference the backup {old_name} and keep it from being dropped",
                       "added again against the new table right after the swap; rows of "
                       f"{child} written in between are checked by its validation",
                       "if the swap then refuses (the source changed), the key stays dropped "
                       "until the plan is resumed or planned again"])
    _restart_identities(ctx, desired, live, renames, targets, new, table)
    for view in reversed(views):
        ctx.add(StepKind.DDL, f"drop view {view.name} (it reads {table}) before the swap",
                [f"DROP VIEW {qual(view.name, view.schema)}"], table=table,
                notes=["a view is bound to the table itself, not to its name: kept, it would "
                       f"read the backup {old_name}; created again right after the swap"])
    if cdc:
        _cdc_cut_over(ctx, table, schema, src, new, old_name, verify)
    else:
        ctx.add(StepKind.SWAP, f"swap: keep {table} as backup {old_name}",
                [f"ALTER TABLE {src} RENAME TO {q(old_name)}"], table=table,
                details={"verified_by": verify, "writes": ctx.options.writes},
                notes=["re-runs the verification first and refuses to swap if the source "
                       "changed",
                       "with --writes=resync, writes between that last pass and this rename "
                       "are not copied: pause writes for the swap itself"])
        ctx.add(StepKind.DDL, f"swap: put {new_name} in place as {table}",
                [f"ALTER TABLE {new} RENAME TO {q(table)}"], table=table)
    _restore_names(ctx, desired, live, names, temporary, table, schema, old_name)
    for view in views:
        _create_view_again(ctx, view, table)
    _move_statistics(ctx, live, back, set(desired.columns.keys()), table, schema)
    # keys on the new table's primary key or unique constraints (created with the table) are
    # added at once; a key on a unique index waits for that index's async build
    keyed = {frozenset(c.name for c in k.columns) for k in desired.constraints
             if isinstance(k, (sa.UniqueConstraint, sa.PrimaryKeyConstraint)) and len(k.columns)}
    at_once = [r for r in referencing
               if frozenset(back.get(c, c) for c in r[2].ref_columns) in keyed]
    later = [r for r in referencing if r not in at_once]
    _add_references_again(ctx, at_once, table, schema, back)
    for index in sorted(desired.indexes, key=lambda i: str(i.name)):
        sql = index_sql(index, ctx, table_name=table)
        if sql is not None:
            async_index_step(ctx, str(index.name), table, schema, sql)
    _add_references_again(ctx, later, table, schema, back)
    ctx.add(StepKind.VERIFY, f"verify {table}: every constraint is validated",
            [f"SELECT conname FROM pg_constraint WHERE conrelid = {literal(src)}::regclass "
             "AND NOT convalidated"], table=table, details={"expect": "no rows"},
            notes=["the constraints were created with the table, so the copy checked every "
                   "row; this confirms none is left NOT VALID"])
    _move_owned_sequences(ctx, live, back, set(desired.columns.keys()) - replaced, table,
                          schema)
    ctx.add(StepKind.DDL, f"drop backup {old_name}", [f"DROP TABLE {qual(old_name, schema)}"],
            table=table, destructive=True, reversible=False, estimate=Estimate(rows=rows),
            notes=["the backup of the old table; drop it once the application works on the "
                   "new one"]
            + ([f"it holds the only copy of the values of dropped column{'s' if plural else ''}"
                f" {', '.join(lost)}"] if lost else []))


def _cdc_cut_over(ctx: Context, table: str, schema: str | None, src: str, new: str,
                  old_name: str, verify: int) -> None:
    """The cut-over of ``--writes=cdc``: the swap inside a short write freeze (the runner's
    :mod:`~dsql_migrate.runner.cdc` does the freeze, the drain and the verification under it,
    and gives the privileges back right after the second rename)."""
    new_name = suffixed(table, NEW_SUFFIX)
    ctx.add(StepKind.SWAP, f"cut-over: freeze writes on {table}, drain the stream, verify, "
            f"swap: keep {table} as backup {old_name}",
            [f"ALTER TABLE {src} RENAME TO {q(old_name)}"], table=table,
            details={"verified_by": verify, "writes": WRITES_CDC, "source": src,
                     "backup": qual(old_name, schema)},
            notes=[f"re-syncs the keys of {table} that the CDC stream reports changed until "
                   "the backlog is small",
                   f"freezes writes: REVOKE INSERT, UPDATE, DELETE on {table} from every role "
                   "that holds them (read from the catalog and recorded in the state tables "
                   "first, so a resumed run always restores them)",
                   f"drains the stream, renames {table} to its backup (a write transaction "
                   "still open on it ends first: no write can reach it after), then, before "
                   "the next step, verifies every key range of the backup against the new "
                   "table (counts and checksums) and re-copies the ranges that differ, so "
                   "correctness never rests on the stream alone",
                   "while frozen the application's writes fail with permission denied "
                   "(SQLSTATE 42501), between the renames with undefined table (42P01)"])
    ctx.add(StepKind.DDL, f"swap: put {new_name} in place as {table}, then unfreeze",
            [f"ALTER TABLE {new} RENAME TO {q(table)}"], table=table,
            details={"writes": WRITES_CDC, "unfreeze": src},
            notes=[f"the new {table} has the grants already, so writes go on at once; then "
                   f"the recorded grants are restored on the backup {old_name} and the freeze "
                   "ends; the freeze time is printed"])


def _move_owned_sequences(ctx: Context, live: LiveTable, back: Mapping[str, str],
                          targets: set[str], table: str, schema: str | None) -> None:
    """A sequence the old table's column owns (a SERIAL's) feeds the new column's default too:
    it moves to the new column before the backup is dropped, or the drop would fail (2BP01, a
    default depends on it) and the sequence would belong to the backup."""
    for column in live.columns:
        new_name = back.get(column.name, column.name)
        if column.owned_sequence is None or new_name not in targets:
            continue
        ctx.add(StepKind.DDL, f"move sequence {column.owned_sequence} to {table}.{new_name}",
                [f"ALTER SEQUENCE {column.owned_sequence} OWNED BY "
                 f"{qual(table, schema)}.{q(new_name)}"], table=table,
                notes=[f"{column.owned_sequence} belonged to the old {table}.{column.name}"])


# -- names -----------------------------------------------------------------------------------


def pg_default_name(table: str, columns: Sequence[str], label: str) -> str:
    """The name PostgreSQL gives an unnamed constraint of ``table`` (``makeObjectName``:
    ``<table>_<col>_<col>_<label>``, the longer part shortened to fit 63 bytes)."""
    name1, name2 = table, "_".join(columns)
    room = MAX_IDENTIFIER - len(label) - 1 - (1 if name2 else 0)
    while len(name1.encode()) + len(name2.encode()) > room:
        if len(name1.encode()) > len(name2.encode()):
            name1 = name1[:-1]
        else:
            name2 = name2[:-1]
    return "_".join(part for part in (name1, name2, label) if part)


def constraint_names(desired: sa.Table, live: LiveTable,
                     back: Mapping[str, str]) -> dict[int, str]:
    """The name of each constraint of the recreated table, by ``id()`` of the SQLAlchemy
    constraint: its own name; unnamed, the name of the live constraint it stands for (same kind
    and columns: a recreation keeps names, as an in-place change on PostgreSQL would); else the
    name PostgreSQL would give it on ``<table>`` (never the ``<table>__new`` it is created
    as). Unnamed CHECKs are left to PostgreSQL."""
    out: dict[int, str] = {}
    table = desired.name

    def live_match(kind: str, columns: list[str], ref: str | None = None) -> str | None:
        for constraint in live.constraints:
            if constraint.kind != kind or [back.get(c, c) for c in constraint.columns] != columns:
                continue
            if ref is None or (constraint.ref_table or "").split(".")[-1] == ref:
                return constraint.name
        return None

    for constraint in desired.constraints:
        columns = [c.name for c in getattr(constraint, "columns", ())]
        if isinstance(constraint.name, str):
            out[id(constraint)] = constraint.name
        elif isinstance(constraint, sa.PrimaryKeyConstraint):
            if columns:
                pk = live.primary_key
                out[id(constraint)] = pk.name if pk is not None else suffixed(table, "_pkey")
        elif isinstance(constraint, sa.UniqueConstraint):
            out[id(constraint)] = live_match("unique", columns) or pg_default_name(
                table, columns, "key")
        elif isinstance(constraint, sa.ForeignKeyConstraint):
            ref = constraint.elements[0].column.table.name if constraint.elements else None
            out[id(constraint)] = live_match("foreign_key", columns, ref) or pg_default_name(
                table, columns, "fkey")
    _name_unnamed_checks(desired, out)
    return out


def _name_unnamed_checks(desired: sa.Table, names: dict[int, str]) -> None:
    """PostgreSQL names an unnamed CHECK ``<table>_<column>_check`` when it reads one column,
    else ``<table>_check``, numbered when taken (``ChooseConstraintName``)."""
    from .tables import is_type_check

    unnamed = sorted(((expr_sql(c.sqltext), c) for c in desired.constraints
                      if isinstance(c, sa.CheckConstraint) and not isinstance(c.name, str)
                      and not is_type_check(c)), key=lambda pair: pair[0])
    taken = {str(c.name) for c in desired.constraints if isinstance(c.name, str)}
    taken |= set(names.values())
    for text, check in unnamed:
        read = _columns_read(text) & set(desired.columns.keys())
        base = pg_default_name(desired.name, sorted(read) if len(read) == 1 else [], "check")
        name, number = base, 0
        while name in taken:
            number += 1
            name = suffixed(base, str(number))
        taken.add(name)
        names[id(check)] = name


def _columns_read(expression: str) -> set[str]:
    """The column names an SQL expression refers to (empty if it does not parse)."""
    import json

    from pglast import parser

    try:
        tree = json.loads(parser.parse_sql_json(f"SELECT {expression}"))
    except parser.ParseError:
        return set()
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            ref = node.get("ColumnRef")
            if isinstance(ref, dict):
                parts = [f.get("String", {}).get("sval") for f in ref.get("fields", [])]
                if parts and isinstance(parts[-1], str):
                    found.add(parts[-1])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(tree)
    return found


def _relation_constraints(
        desired: sa.Table,
        names: Mapping[int, str]) -> list[sa.PrimaryKeyConstraint | sa.UniqueConstraint]:
    """The constraints whose name is also an index name (unique per schema): the primary key,
    then the unique constraints by name (``Table.constraints`` is a set: sorted, so that the
    same inputs give the same plan)."""
    found = [c for c in desired.constraints
             if isinstance(c, (sa.PrimaryKeyConstraint, sa.UniqueConstraint)) and len(c.columns)]
    return sorted(found, key=lambda c: (not isinstance(c, sa.PrimaryKeyConstraint),
                                        names.get(id(c), ""),
                                        [col.name for col in c.columns]))


def _temporary_names(desired: sa.Table, live: LiveTable,
                     names: Mapping[int, str]) -> dict[int, str]:
    """``<name>__new`` for each PK/unique constraint whose name an index of the old table
    holds (it is free again only after the swap)."""
    taken = {name for name, _ in _old_relations(live)}
    return {id(c): suffixed(names[id(c)], NEW_SUFFIX)
            for c in _relation_constraints(desired, names)
            if id(c) in names and names[id(c)] in taken}


def _old_names(desired: sa.Table, live: LiveTable,
               names: Mapping[int, str]) -> dict[str, str]:
    """The old table's index names the new table needs (PK, unique constraints, indexes) →
    the ``__old`` names they move to after the swap."""
    wanted = {names[id(c)] for c in _relation_constraints(desired, names) if id(c) in names}
    wanted |= {str(i.name) for i in desired.indexes if i.name}
    return {name: suffixed(constraint or name, OLD_SUFFIX)
            for name, constraint in _old_relations(live) if name in wanted}


def _old_relations(live: LiveTable) -> list[tuple[str, str | None]]:
    """The old table's index names (unique per schema), with the constraint each backs."""
    out = [(i.name, i.constraint) for i in live.indexes]
    listed = {name for name, _ in out}
    out += [(c.index or c.name, c.name) for c in live.constraints
            if c.kind in ("primary_key", "unique") and (c.index or c.name) not in listed]
    return out


def _restore_names(ctx: Context, desired: sa.Table, live: LiveTable, names: Mapping[int, str],
                   temporary: Mapping[int, str], table: str, schema: str | None,
                   old_name: str) -> None:
    """After the swap: the backup's names move to ``__old``, then the new table's temporary
    names become the original ones (each rename its own step)."""
    old = qual(old_name, schema)
    moving = _old_names(desired, live, names)
    for name, constraint in _old_relations(live):
        moved = moving.get(name)
        if moved is None:
            continue
        if constraint is not None:
            ctx.add(StepKind.DDL, f"free the name {constraint} (the backup's constraint)",
                    [f"ALTER TABLE {old} RENAME CONSTRAINT {q(constraint)} TO {q(moved)}"],
                    table=table)
        else:
            ctx.add(StepKind.DDL, f"free the name {name} (the backup's index)",
                    [f"ALTER INDEX {qual(name, schema)} RENAME TO {q(moved)}"], table=table)
    for key in _relation_constraints(desired, names):
        temp = temporary.get(id(key))
        if temp is not None:
            final = names[id(key)]
            ctx.add(StepKind.DDL, f"name constraint {final} of {table} as before",
                    [f"ALTER TABLE {qual(table, schema)} RENAME CONSTRAINT {q(temp)} TO "
                     f"{q(final)}"], table=table)


def _refuse_leftovers(ctx: Context, live: LiveTable, table: str, schema: str | None,
                      names: Iterable[str]) -> None:
    """Refuse to plan over the leftovers of a recreation that did not finish: the names this
    one creates must be free (else ``<t>__old`` would become ``<t>__old__old``, or a step
    would fail half-way)."""
    taken = _relation_names(ctx.live, live.schema)
    clash = sorted({n for n in names if n in taken})
    if clash:
        raise PlanningError(
            f"cannot recreate {table}: {', '.join(clash)} already exist(s) in schema "
            f"{live.schema}, left by an earlier recreation of {table} that did not finish "
            "(a plan interrupted or abandoned part-way). Resume that plan (`dsql-migrate "
            "apply` with the same plan), or check what is left and drop or rename it yourself "
            f"(a {suffixed(table, OLD_SUFFIX)} table is the backup of the original rows), then "
            "plan again")


def _relation_names(snapshot: Snapshot, schema: str) -> set[str]:
    names = {t.name for t in snapshot.tables.values() if t.schema == schema}
    names |= {i.name for t in snapshot.tables.values() if t.schema == schema for i in t.indexes}
    names |= {v.name for v in snapshot.views if v.schema == schema}
    names |= {s.name for s in snapshot.sequences if s.schema == schema}
    return names


# -- what is attached to the table -----------------------------------------------------------


def _refuse_broken_views(views: Sequence[View], live: LiveTable, desired: sa.Table,
                         back: Mapping[str, str], table: str) -> None:
    """A view that reads a column the recreation drops or renames cannot be created again
    from its definition: refused, as PostgreSQL refuses to drop a column a view reads."""
    for view in views:
        for relation, column in view.columns_used:
            if relation != live.qualified:
                continue
            after = back.get(column, column)
            if after not in desired.columns:
                raise PlanningError(
                    f"cannot recreate {table}: view {view.name} reads {table}.{column}, which "
                    "this change drops (PostgreSQL refuses this too: other objects depend on "
                    "it); drop or change the view first")
            if after != column:
                raise PlanningError(
                    f"cannot recreate {table}: view {view.name} reads {table}.{column}, which "
                    f"this change renames to {after}; the view cannot be created again from "
                    "its definition: drop the view first and create it again after the change")


def _carry_comments(ctx: Context, desired: sa.Table, live: LiveTable, back: Mapping[str, str],
                    new: str, table: str) -> None:
    """Comments of the target (when it states them), else those of the live table, unless an
    op of the plan drops them."""
    dropped_table = any(isinstance(op, ops.DropTableCommentOp) and op.table_name == table
                        for op in ctx.all_ops)
    dropped_columns = {op.column_name for op in ctx.all_ops
                       if isinstance(op, ops.AlterColumnOp) and op.table_name == table
                       and op.modify_comment is None}
    comment = desired.comment if desired.comment is not None else (
        None if dropped_table else live.comment)
    if comment is not None:
        ctx.add(StepKind.DDL, f"comment on {table} (as before)",
                [f"COMMENT ON TABLE {new} IS {literal(comment)}"], table=table)
    for live_column in live.columns:
        name = back.get(live_column.name, live_column.name)
        target = desired.columns.get(name)
        if target is None:
            continue
        text = target.comment if target.comment is not None else (
            None if live_column.name in dropped_columns or name in dropped_columns
            else live_column.comment)
        if text is not None:
            ctx.add(StepKind.DDL, f"comment on {table}.{name} (as before)",
                    [f"COMMENT ON COLUMN {new}.{q(name)} IS {literal(text)}"], table=table)
    sources = {back.get(c.name, c.name) for c in live.columns}
    for column in desired.columns:
        if column.comment is not None and column.name not in sources:
            ctx.add(StepKind.DDL, f"comment on {table}.{column.name}",
                    [f"COMMENT ON COLUMN {new}.{q(column.name)} IS {literal(column.comment)}"],
                    table=table)


def grant_statements(grants: Iterable[Grant], target: str, *, back: Mapping[str, str] = {},
                     columns: set[str] | None = None) -> list[str]:
    """``GRANT`` statements giving ``grants`` again on ``target``, one per grantee and grant
    option (column privileges of columns renamed by ``back``, those in no longer in
    ``columns`` left out, as PostgreSQL drops them with the column)."""
    grouped: dict[tuple[str, bool], list[str]] = {}
    for grant in grants:
        item = grant.privilege
        if grant.column is not None:
            column = back.get(grant.column, grant.column)
            if columns is not None and column not in columns:
                continue
            item = f"{grant.privilege} ({q(column)})"
        grouped.setdefault((grant.grantee, grant.grantable), []).append(item)
    out = []
    for (grantee, grantable), items in sorted(grouped.items()):
        who = "PUBLIC" if grantee == "PUBLIC" else q(grantee)
        option = " WITH GRANT OPTION" if grantable else ""
        out.append(f"GRANT {', '.join(items)} ON TABLE {target} TO {who}{option}")
    return out


def _carry_grants(ctx: Context, grants: Sequence[Grant], back: Mapping[str, str],
                  columns: set[str] | None, target: str, table: str, *, what: str) -> None:
    for statement in grant_statements(grants, target, back=back, columns=columns):
        grantee = statement.rsplit(" TO ", 1)[1].removesuffix(" WITH GRANT OPTION")
        ctx.add(StepKind.DDL, f"{what} for {grantee} (as before)", [statement], table=table,
                notes=["a new table has no privileges but its owner's: without this the "
                       "application roles (and the IAM identities mapped to them) lose access"])


def _live_identity_caches(desired: sa.Table, live: LiveTable,
                          renames: Mapping[str, str]) -> dict[str, int]:
    """Identity CACHE of the live columns where the target's identity states none (Alembic
    does not compare it): kept, not reset to the default."""
    out = {}
    for column in desired.columns:
        live_col = live.column(renames.get(column.name, column.name))
        if column.identity is not None and column.identity.cache is None and \
                live_col is not None and live_col.identity_cache is not None:
            out[column.name] = live_col.identity_cache
    return out


def _restart_identities(ctx: Context, desired: sa.Table, live: LiveTable,
                        renames: Mapping[str, str], targets: Sequence[str], new: str,
                        table: str) -> None:
    """Identity sequences of the new table continue after the copied values and after the
    old sequence (ids handed out and deleted are not given again); run just before the swap,
    after the last copy."""
    for column in desired.columns:
        if column.identity is None or column.name not in targets:
            continue
        start = f"coalesce(max({q(column.name)}), 0) + 1"
        old = _old_sequence(ctx.live, live, renames.get(column.name, column.name))
        increment = column.identity.increment or 1
        if old is not None and increment > 0:
            start = (f"greatest({start}, (SELECT CASE WHEN is_called THEN last_value + "
                     f"{increment} ELSE last_value END FROM {old}))")
        ctx.add(StepKind.DML, f"restart identity {table}.{column.name} after the copied "
                "values and the old sequence",
                [f"SELECT setval(pg_get_serial_sequence({literal(new)}, "
                 f"{literal(column.name)}), {start}, false) FROM {new}"], table=table)


def _old_sequence(snapshot: Snapshot, live: LiveTable, column: str) -> str | None:
    live_col = live.column(column)
    if live_col is None or live_col.identity is None:
        return None
    for sequence in snapshot.sequences:
        if sequence.schema == live.schema and sequence.owned_by == f"{live.name}.{column}":
            return qual(sequence.name, sequence.schema)
    return None


def _create_view_again(ctx: Context, view: View, table: str) -> None:
    name = qual(view.name, view.schema)
    definition = view.definition.strip().rstrip(";").strip()
    options = f" WITH ({', '.join(view.options)})" if view.options else ""
    ctx.add(StepKind.DDL, f"create view {view.name} again, reading the new {table}",
            [f"CREATE VIEW {name}{options} AS {definition}"], table=table)
    if view.comment is not None:
        ctx.add(StepKind.DDL, f"comment on view {view.name} (as before)",
                [f"COMMENT ON VIEW {name} IS {literal(view.comment)}"], table=table)
    _carry_grants(ctx, view.grants, {}, None, name, table, what=f"privileges on {view.name}")


def _move_statistics(ctx: Context, live: LiveTable, back: Mapping[str, str],
                     columns: set[str], table: str, schema: str | None) -> None:
    """Extended statistics (planner hints, no data) move to the new table: dropped from the
    backup and created again (both idempotent, so a resumed step runs them again safely)."""
    for stat in live.statistics:
        name = qual(stat.name, stat.schema)
        new_columns = [back.get(c, c) for c in stat.columns]
        if any(c not in columns for c in new_columns):
            ctx.warn(f"extended statistics {stat.name} on {table}: a column it covers is "
                     "dropped, so it is dropped with it (as PostgreSQL does)")
            ctx.add(StepKind.DDL, f"drop statistics {stat.name} of the backup",
                    [f"DROP STATISTICS IF EXISTS {name}"], table=table)
            continue
        kinds = f" ({', '.join(stat.kinds)})" if stat.kinds and not stat.expressions else ""
        on = ", ".join([q(c) for c in new_columns] + [f"({e})" for e in stat.expressions])
        ctx.add(StepKind.DDL, f"drop statistics {stat.name} of the backup",
                [f"DROP STATISTICS IF EXISTS {name}"], table=table)
        ctx.add(StepKind.DDL, f"create statistics {stat.name} on {table} again",
                [f"CREATE STATISTICS IF NOT EXISTS {name}{kinds} ON {on} FROM "
                 f"{qual(table, schema)}"], table=table)
        if stat.target is not None:
            ctx.add(StepKind.DDL, f"statistics target of {stat.name} (as before)",
                    [f"ALTER STATISTICS {name} SET STATISTICS {stat.target}"], table=table)


def _unique_prechecks(desired: sa.Table, live: LiveTable, renames: dict[str, str], table: str,
                      schema: str | None) -> list[tuple[str, str]]:
    out = []
    groups: list[tuple[str, list[str], bool]] = []
    pk = [c.name for c in desired.primary_key.columns]
    live_pk = list(live.primary_key.columns) if live.primary_key else []
    if pk and [renames.get(c, c) for c in pk] != live_pk:
        groups.append(("primary key", pk, False))
    for constraint in sorted(desired.constraints, key=lambda c: str(c.name or "")):
        if isinstance(constraint, sa.UniqueConstraint) and not isinstance(
                constraint, sa.PrimaryKeyConstraint):
            groups.append((str(constraint.name or "unique"),
                           [c.name for c in constraint.columns], True))
    for index in sorted(desired.indexes, key=lambda i: str(i.name)):
        names = [e.name for e in index.expressions if isinstance(e, sa.Column)]
        if index.unique and len(names) == len(index.expressions) and not index_options(
                index).get("where"):
            groups.append((str(index.name), names, True))
    for label, columns, nulls_distinct in groups:
        source = [renames.get(c, c) for c in columns]
        if any(live.column(c) is None for c in source):
            continue
        out.append((f"no duplicate ({', '.join(source)}) in {table} for {label}",
                    duplicates_query(table, schema, source, nulls_distinct=nulls_distinct)))
    return out


def _verify_step(ctx: Context, *, live: LiveTable, table: str, src: str, new: str,
                 keys: Keyset,
                 renames: dict[str, str], desired: sa.Table, targets: list[str],
                 exprs: list[str], compared: list[tuple[str, str]], rows: int | None,
                 replaced: set[str] | None = None, backup: str | None = None) -> int:
    back = {old: new_name for new_name, old in renames.items()}
    target_key = [back.get(k, k) for k in keys.key]
    ranged = all(k in desired.columns and k not in (replaced or set()) for k in target_key)
    resync = ctx.options.writes in (WRITES_RESYNC, WRITES_CDC)
    # resync repairs a range with a delete and an insert in one transaction: half the size
    size = ctx.batch_size(live, statements=2 if resync else 1)
    source_row = ", ".join(e for _, e in compared)
    target_row = ", ".join(q(c) for c, _ in compared)
    identity = any(c.identity is not None for c in desired.columns if c.name in targets)

    def totals_of(source: str) -> list[str]:
        return [f"SELECT count(*) FROM {source}", f"SELECT count(*) FROM {new}"]

    def ranged_of(source: str) -> list[str]:
        return [
            f"SELECT count(*), md5(string_agg(ROW({source_row})::text, ',' ORDER BY "
            f"{keys.order()})) FROM {source} WHERE {keys.range()}",
            f"SELECT count(*), md5(string_agg(ROW({target_row})::text, ',' ORDER BY "
            f"{keys.order(target_key)})) FROM {new} WHERE {keys.range(key=target_key)}",
        ]

    def repair_of(source: str) -> list[str]:
        return [
            f"DELETE FROM {new} WHERE {keys.range(key=target_key)}",
            f"INSERT INTO {new} ({cols(targets)}){' OVERRIDING SYSTEM VALUE' if identity else ''}"
            f" SELECT {', '.join(exprs)} FROM {source} WHERE {keys.range()}",
        ]

    totals = totals_of(src)
    details: dict[str, object] = {
        "writes": ctx.options.writes,
        "compare": "each statement pair returns equal (count, checksum); totals agree",
        "totals": totals,
    }
    if not ranged and ctx.options.writes == WRITES_CDC:
        raise PlanningError(
            f"cannot recreate {table} with --writes=cdc: the new table does not keep its "
            f"primary key column(s) ({', '.join(keys.key)}) as they are, and the CDC cut-over "
            "re-syncs changed rows by key and verifies the copy per key range of a key both "
            "tables share",
            hint="change the primary key with --writes=pause (the application stops writing "
            f"{table} for the copy), or keep the key in this change and change it in another")
    if not ranged:
        ctx.add(StepKind.VERIFY, f"verify {table}: row counts", totals, table=table,
                details=details, notes=["the key changes, so only totals are compared"])
        return ctx.steps[-1].id
    statements = ranged_of(src)
    notes = ["rows counted and checksummed per key range on both tables"]
    if resync:
        details["repair"] = repair_of(src)
        details["tail"] = (f"DELETE FROM {new} WHERE ({cols(target_key)}) > "
                           f"({keys.params('after')})")
        notes.append(f"--writes={ctx.options.writes}: differing ranges are copied again "
                     "(delete + insert in one transaction) until two passes agree")
        if ctx.options.writes == WRITES_CDC:
            _cdc_details(details, keys, target_key, targets, exprs, desired, src, new, live)
            if backup is not None:
                # the cut-over verifies between its two renames, when the source is under its
                # backup name: the same statements, reading the backup
                details["on_backup"] = {
                    "table": backup, "sql": ranged_of(backup), "totals": totals_of(backup),
                    "repair": repair_of(backup), "bounds": keys.bounds(backup, size)}
            notes.insert(0, "--writes=cdc: first re-syncs the keys the CDC stream reports "
                         f"changed since the copy began (read from every shard), in batches "
                         f"of at most {size} keys; a difference left is not a failure here: "
                         "the cut-over verifies again with writes frozen")
    else:
        notes.append("writes to the table must be paused during the copy: any difference "
                     "fails this step and the swap does not happen (nothing is lost)")
    ctx.add(StepKind.VERIFY, f"verify {table}: counts and checksums per key range",
            statements, table=table, batch=keys.batch(table, src, size), details=details,
            estimate=ctx.batch_estimate(rows, size), notes=notes)
    return ctx.steps[-1].id


def _cdc_details(details: dict[str, object], keys: Keyset, target_key: list[str],
                 targets: list[str], exprs: list[str], desired: sa.Table, src: str, new: str,
                 live: LiveTable) -> None:
    """What the runner needs to re-sync a set of keys from the source (``%(keys_<n>)s``: one
    text array per key column, same length): delete them from the new table and copy the
    rows the source still has, in one transaction (an upsert or a delete, whatever the key's
    last change was). The stream names the source's schema, table and key columns."""
    wanted = (f"({cols(list(keys.key))}) IN (SELECT * FROM unnest("
              + ", ".join(f"%(keys_{i})s::text[]::{t}[]" for i, t in
                          enumerate(keys.types, start=1)) + "))")
    wanted_new = (f"({cols(target_key)}) IN (SELECT * FROM unnest("
                  + ", ".join(f"%(keys_{i})s::text[]::{t}[]" for i, t in
                              enumerate(keys.types, start=1)) + "))")
    identity = any(c.identity is not None for c in desired.columns if c.name in targets)
    details["resync_keys"] = [
        f"DELETE FROM {new} WHERE {wanted_new}",
        f"INSERT INTO {new} ({cols(targets)}){' OVERRIDING SYSTEM VALUE' if identity else ''}"
        f" SELECT {', '.join(exprs)} FROM {src} WHERE {wanted}",
    ]
    details["stream"] = {"schema": live.schema or "public", "table": live.name,
                         "key": list(keys.key)}


def moved_keys(ctx: Context, live: LiveTable, table: str,
               schema: str | None) -> list[tuple[str, str | None, Constraint]]:
    """The foreign keys that reference ``table`` at its swap, in plan order: the live keys of
    other tables, except those the ops planned *before* this recreation dropped (a key the plan
    drops later still references the table now, and would follow the backup) and those of
    tables recreated earlier in the plan (their old table is gone); plus the keys of tables
    recreated earlier, which their new table was created with."""
    recreated_before = set(ctx.recreated)
    out: list[tuple[str, str | None, Constraint]] = [
        (child, child_schema, constraint) for child, child_schema, constraint
        in referencing_keys(ctx.live, live, ctx.planned_ops, ctx.profile)
        if (child_schema, child) not in recreated_before]
    if not ctx.profile.allows(Capability.FOREIGN_KEYS):
        return out
    for child_schema, child in ctx.recreated:
        desired = ctx.desired_table(child, child_schema)
        if desired is None or (child_schema, child) == (schema, table):
            continue
        child_live = ctx.live_table(live_name(ctx, child), child_schema)
        names = constraint_names(desired, child_live, {}) if child_live else {}
        for fk in sorted(desired.foreign_key_constraints, key=lambda k: str(k.name or "")):
            ref = fk.elements[0].column.table if fk.elements else None
            if ref is None or ref.name != table or ref.schema != schema:
                continue
            from .tables import foreign_key_sql

            renames = _column_renames(ctx, table)
            out.append((child, child_schema, Constraint(
                name=names.get(id(fk)) or str(fk.name), kind="foreign_key",
                columns=tuple(c.name for c in fk.columns), definition=foreign_key_sql(fk),
                ref_table=live.qualified,
                ref_columns=tuple(renames.get(e.column.name, e.column.name)
                                  for e in fk.elements))))
    return out


def recreation_order(keys: Sequence[tuple[str | None, str | None]],
                     op_list: Sequence[ops.MigrateOperation], live: Snapshot,
                     desired: sa.MetaData) -> dict[tuple[str | None, str | None], int]:
    """The position of each recreated table. A table comes after the recreated tables its
    target definition references (its new table's foreign keys need their new columns), and
    before a recreated table that its live table references by a key the target no longer has
    (so the key leaves with the child, and need not be moved to a parent that may no longer
    have the referenced key; this wins when both hold); else in the ops' order. A cycle is
    broken in the ops' order."""
    wanted = list(dict.fromkeys(keys))

    def target(key: tuple[str | None, str | None]) -> sa.Table | None:
        schema, name = key
        return desired.tables.get(f"{schema}.{name}" if schema else str(name))

    def live_of(key: tuple[str | None, str | None]) -> LiveTable | None:
        return live.table(str(key[1]), key[0])

    before: dict[tuple[str | None, str | None], set[tuple[str | None, str | None]]] = {
        key: set() for key in wanted}
    references: list[tuple[tuple[str | None, str | None], tuple[str | None, str | None]]] = []
    for key in wanted:
        table = target(key)
        kept: set[str] = set()
        for fk in table.foreign_key_constraints if table is not None else ():
            kept.add(str(fk.name))
            ref = fk.elements[0].column.table if fk.elements else None
            if ref is not None and (ref.schema, ref.name) in before and \
                    (ref.schema, ref.name) != key:
                references.append((key, (ref.schema, ref.name)))
        child = live_of(key)
        for constraint in child.constraints if child is not None else ():
            if constraint.kind != "foreign_key" or constraint.name in kept:
                continue
            for other in wanted:
                parent = live_of(other)
                if other != key and parent is not None and \
                        parent.qualified == constraint.ref_table:
                    before[other].add(key)  # the child, and its dropped key, go first
    for child_key, parent_key in references:
        # a dropped key wins over a new one: the old key must leave before the parent's new
        # table, which may no longer have its columns (airflow 0096: team.id); the child's
        # new key is moved to the parent's new table at its swap
        if child_key not in before[parent_key]:
            before[child_key].add(parent_key)

    order: list[tuple[str | None, str | None]] = []
    visiting: set[tuple[str | None, str | None]] = set()

    def visit(key: tuple[str | None, str | None]) -> None:
        if key in order or key in visiting:
            return
        visiting.add(key)
        for first in sorted(before[key], key=wanted.index):
            visit(first)
        visiting.discard(key)
        order.append(key)

    for key in wanted:
        visit(key)
    return {key: position for position, key in enumerate(order)}


def referencing_keys(snapshot: Snapshot, live: LiveTable, all_ops: Sequence[ops.MigrateOperation],
                     profile: Profile) -> list[tuple[str, str | None, Constraint]]:
    """Foreign keys of other tables that reference ``live`` (a table being recreated) and that
    the recreation moves to the new table: (child table as the ops name it, its schema, the
    key). Empty without foreign keys (``classic``).

    Left out: keys ``all_ops`` drop themselves (a drop_constraint of that name, or the drop of
    the child table). The planner passes the ops planned *before* the recreation (see
    :func:`moved_keys`), so a key that the plan drops later is still moved."""
    if not profile.allows(Capability.FOREIGN_KEYS):
        return []
    renamed = {(op.schema, op.table_name): str(op.new_table_name) for op in all_ops
               if isinstance(op, ops.RenameTableOp)}
    dropped_tables = {(op.schema, op.table_name) for op in all_ops
                      if isinstance(op, ops.DropTableOp)}
    dropped_keys = {(op.schema, op.table_name, op.constraint_name) for op in all_ops
                    if isinstance(op, ops.DropConstraintOp)}
    out = []
    for other in sorted(snapshot.tables.values(), key=lambda t: t.qualified):
        if other.qualified == live.qualified:
            continue  # a self-reference is part of the new table's definition
        schema = None if other.schema == "public" else other.schema
        name = renamed.get((schema, other.name), other.name)
        if {(schema, other.name), (schema, name)} & dropped_tables:
            continue
        for constraint in sorted(other.constraints, key=lambda c: c.name):
            if constraint.kind != "foreign_key" or constraint.ref_table != live.qualified:
                continue
            if {(schema, other.name, constraint.name), (schema, name, constraint.name)} & \
                    dropped_keys:
                continue
            out.append((name, schema, constraint))
    return out


def _add_references_again(ctx: Context, keys: list[tuple[str, str | None, Constraint]],
                          table: str, schema: str | None, back: dict[str, str]) -> None:
    for child, child_schema, constraint in keys:
        _add_reference_again(ctx, child, child_schema, constraint, table, schema, back)
    for child, child_schema, constraint in keys:
        validate_async(ctx, child, child_schema, constraint.name)


def _add_reference_again(ctx: Context, child: str, child_schema: str | None,
                         constraint: Constraint, table: str, schema: str | None,
                         back: dict[str, str]) -> None:
    remote = [back.get(c, c) for c in constraint.ref_columns]
    # ON DELETE / ON UPDATE / MATCH / DEFERRABLE: what pg_get_constraintdef() prints after the
    # referenced columns (NOT VALID aside: the key is added NOT VALID and then validated)
    tail = ""
    match = re.search(r"\bREFERENCES\b[^(]*\([^)]*\)(.*)$", constraint.definition, re.S)
    if match:
        tail = re.sub(r"\s*\bNOT VALID\b", "", match.group(1)).rstrip()
    ctx.add(StepKind.DDL, f"add foreign key {constraint.name} of {child} again, against the "
            f"new {table} (NOT VALID)",
            [f"ALTER TABLE {qual(child, child_schema)} ADD CONSTRAINT {q(constraint.name)} "
             f"FOREIGN KEY ({cols(list(constraint.columns))}) REFERENCES {qual(table, schema)} "
             f"({cols(remote)}){tail} NOT VALID"], table=child,
            notes=["checked for new writes at once; the existing rows of "
                   f"{child} are validated next"])
