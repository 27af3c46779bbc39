"""Table recreation: how DSQL does what it cannot do in place (DSQL.md §6).

Each stage is its own resumable step:

1. data pre-checks (casts that would fail, NULLs, duplicates) that change nothing;
2. the names the new table needs (primary key, unique constraints, indexes) are taken off the
   old table by renaming them with a ``__old`` suffix;
3. ``CREATE TABLE <t>__new`` with the target definition (constraints inline, so every copied row
   is checked);
4. a keyset-batched copy on the old primary key, with the casts;
5. identity columns restarted after the copied values;
6. verify: row counts and checksums per key range; with writes paused (the default) any
   difference fails the step and so blocks the swap; with ``--writes=resync`` the differing
   ranges are copied again until two passes agree;
7. swap by renames, keeping the old table as ``<t>__old`` (never dropped before verification);
   foreign keys of other tables that reference ``<t>`` are dropped just before the swap and
   added again right after it, ``NOT VALID``, against the new table (``current`` profile), so
   they do not follow the backup; their async validation then checks every child row,
   including rows written between the drop and the re-add;
8. secondary indexes created ASYNC and waited for;
9. constraints confirmed validated (they were created with the table, so the copy checked
   every row);
10. the backup dropped, as a separate destructive step.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic.operations import ops

from ..catalog import Constraint, Snapshot
from ..catalog import Table as LiveTable
from ..plan import Estimate, StepKind
from ..profiles import Capability, Profile
from . import WRITES_RESYNC, Context, PlanningError
from ._keyset import Keyset, keyset_for, pct
from ._sql import (
    cast_failure_predicate,
    cols,
    default_sql,
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


def recreate_table(table: str, schema: str | None, reasons: list[str], ctx: Context) -> None:
    desired = ctx.desired_table(table, schema)
    live = ctx.live_table(live_name(ctx, table), schema)
    if desired is None or live is None:
        raise PlanningError(f"cannot recreate {table}: it must exist in the live schema and in "
                            "the target")
    # an explicit op.recreate_table carries the reasons of the ops inside it, joined
    why = "; ".join(dict.fromkeys(part for reason in reasons for part in reason.split("; ")))
    src = qual(table, schema)
    new_name = suffixed(table, NEW_SUFFIX)
    old_name = suffixed(table, OLD_SUFFIX)
    new = qual(new_name, schema)
    renames = _column_renames(ctx, table)
    keys = keyset_for(live)
    rows = live.rows

    # source expression of every target column that gets a value from the old table
    targets: list[str] = []
    exprs: list[str] = []
    compared: list[tuple[str, str]] = []  # (target column, source expression) in checksums
    needs_override = False
    prechecks: list[tuple[str, str]] = []
    for column in desired.columns:
        source_name = renames.get(column.name, column.name)
        live_col = live.column(source_name)
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
    _free_names(desired, live, ctx, table, schema)

    from .tables import create_table_sql

    ctx.add(StepKind.DDL, f"create {new_name} with the target definition of {table}",
            [create_table_sql(desired, ctx, name=new_name,
                                                pk_name=suffixed(table, "_pkey"))], table=table,
            notes=[f"recreating {table}: {why}"])

    override = " OVERRIDING SYSTEM VALUE" if needs_override else ""
    size = ctx.batch_size(live, copy=True)
    batch = keys.batch(table, src, size)
    ctx.add(StepKind.COPY, f"copy {table} into {new_name} in keyset batches",
            [f"INSERT INTO {new} ({cols(targets)}){override} SELECT {', '.join(exprs)} "
             f"FROM {src} WHERE {keys.range()}"],
            table=table, batch=batch, estimate=ctx.batch_estimate(rows, size),
            # no ON CONFLICT DO NOTHING: the runner commits each batch with its cursor, so no
            # batch runs twice, and a row that is somehow there already should stop the copy
            # loudly rather than be skipped (it also cost ~75% more per batch)
            notes=["resumable: each batch commits in the same transaction as its cursor, so "
                   "no batch is applied twice"])
    for column in desired.columns:
        if column.identity is not None and column.name in targets:
            ctx.add(StepKind.DML, f"restart identity {table}.{column.name} after the copied "
                    "values",
                    [f"SELECT setval(pg_get_serial_sequence({literal(new)}, "
                     f"{literal(column.name)}), coalesce(max({q(column.name)}), 0) + 1, false) "
                     f"FROM {new}"], table=table)

    verify = _verify_step(ctx, live=live, table=table, src=src, new=new, keys=keys, renames=renames,
                          desired=desired, targets=targets, exprs=exprs, compared=compared,
                          rows=rows)
    referencing = _referencing_keys(ctx, live)
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
    ctx.add(StepKind.SWAP, f"swap: keep {table} as backup {old_name}",
            [f"ALTER TABLE {src} RENAME TO {q(old_name)}"], table=table,
            details={"verified_by": verify, "writes": ctx.options.writes},
            notes=["re-runs the verification first and refuses to swap if the source "
                   "changed",
                   "with --writes=resync, writes between that last pass and this rename are "
                   "not copied: pause writes for the swap itself"])
    ctx.add(StepKind.DDL, f"swap: put {new_name} in place as {table}",
            [f"ALTER TABLE {new} RENAME TO {q(table)}"], table=table)
    # keys on the new table's primary key or unique constraints (created with the table) are
    # added at once; a key on a unique index waits for that index's async build
    keyed = {frozenset(c.name for c in k.columns) for k in desired.constraints
             if isinstance(k, (sa.UniqueConstraint, sa.PrimaryKeyConstraint)) and len(k.columns)}
    back = {old: new_col for new_col, old in renames.items()}
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
    ctx.add(StepKind.DDL, f"drop backup {old_name}", [f"DROP TABLE {qual(old_name, schema)}"],
            table=table, destructive=True, reversible=False, estimate=Estimate(rows=rows),
            notes=["the backup of the old table; drop it once the application works on the "
                   "new one"])
    _warn_dependents(ctx, live)


def _unique_prechecks(desired: sa.Table, live: LiveTable, renames: dict[str, str], table: str,
                      schema: str | None) -> list[tuple[str, str]]:
    out = []
    groups: list[tuple[str, list[str], bool]] = []
    pk = [c.name for c in desired.primary_key.columns]
    live_pk = list(live.primary_key.columns) if live.primary_key else []
    if pk and [renames.get(c, c) for c in pk] != live_pk:
        groups.append(("primary key", pk, False))
    for constraint in desired.constraints:
        if isinstance(constraint, sa.UniqueConstraint) and not isinstance(
                constraint, sa.PrimaryKeyConstraint):
            groups.append((str(constraint.name or "unique"),
                           [c.name for c in constraint.columns], True))
    for index in desired.indexes:
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


def _free_names(desired: sa.Table, live: LiveTable, ctx: Context, table: str,
                schema: str | None) -> None:
    """Rename the old table's PK/unique constraints and indexes whose names the new needs."""
    pk_name = desired.primary_key.name
    wanted = {pk_name if isinstance(pk_name, str) else suffixed(table, "_pkey")}
    wanted |= {str(c.name) for c in desired.constraints
               if isinstance(c, sa.UniqueConstraint) and c.name}
    wanted |= {str(i.name) for i in desired.indexes if i.name}
    src = qual(table, schema)
    for constraint in live.constraints:
        if constraint.kind in ("primary_key", "unique") and constraint.name in wanted:
            ctx.add(StepKind.DDL, f"free the name {constraint.name} (old table's constraint)",
                    [f"ALTER TABLE {src} RENAME CONSTRAINT {q(constraint.name)} TO "
                     f"{q(suffixed(constraint.name, OLD_SUFFIX))}"], table=table)
    for index in live.indexes:
        if index.constraint is None and index.name in wanted:
            ctx.add(StepKind.DDL, f"free the name {index.name} (old table's index)",
                    [f"ALTER INDEX {qual(index.name, schema)} RENAME TO "
                     f"{q(suffixed(index.name, OLD_SUFFIX))}"], table=table)


def _verify_step(ctx: Context, *, live: LiveTable, table: str, src: str, new: str,
                 keys: Keyset,
                 renames: dict[str, str], desired: sa.Table, targets: list[str],
                 exprs: list[str], compared: list[tuple[str, str]], rows: int | None) -> int:
    back = {old: new_name for new_name, old in renames.items()}
    target_key = [back.get(k, k) for k in keys.key]
    ranged = all(k in desired.columns for k in target_key)
    resync = ctx.options.writes == WRITES_RESYNC
    # resync repairs a range with a delete and an insert in one transaction: half the size
    size = ctx.batch_size(live, statements=2 if resync else 1)
    source_row = ", ".join(e for _, e in compared)
    target_row = ", ".join(q(c) for c, _ in compared)
    totals = [f"SELECT count(*) FROM {src}", f"SELECT count(*) FROM {new}"]
    details: dict[str, object] = {
        "writes": ctx.options.writes,
        "compare": "each statement pair returns equal (count, checksum); totals agree",
        "totals": totals,
    }
    if not ranged:
        ctx.add(StepKind.VERIFY, f"verify {table}: row counts", totals, table=table,
                details=details, notes=["the key changes, so only totals are compared"])
        return ctx.steps[-1].id
    statements = [
        f"SELECT count(*), md5(string_agg(ROW({source_row})::text, ',' ORDER BY "
        f"{keys.order()})) FROM {src} WHERE {keys.range()}",
        f"SELECT count(*), md5(string_agg(ROW({target_row})::text, ',' ORDER BY "
        f"{keys.order(target_key)})) FROM {new} WHERE {keys.range(key=target_key)}",
    ]
    notes = ["rows counted and checksummed per key range on both tables"]
    if resync:
        details["repair"] = [
            f"DELETE FROM {new} WHERE {keys.range(key=target_key)}",
            f"INSERT INTO {new} ({cols(targets)})"
            f"{' OVERRIDING SYSTEM VALUE' if any(c.identity is not None for c in desired.columns if c.name in targets) else ''}"  # noqa: E501
            f" SELECT {', '.join(exprs)} FROM {src} WHERE {keys.range()}",
        ]
        details["tail"] = (f"DELETE FROM {new} WHERE ({cols(target_key)}) > "
                           f"({keys.params('after')})")
        notes.append("--writes=resync: differing ranges are copied again (delete + insert in "
                     "one transaction) until two passes agree")
    else:
        notes.append("writes to the table must be paused during the copy: any difference "
                     "fails this step and the swap does not happen (nothing is lost)")
    ctx.add(StepKind.VERIFY, f"verify {table}: counts and checksums per key range",
            statements, table=table, batch=keys.batch(table, src, size), details=details,
            estimate=ctx.batch_estimate(rows, size), notes=notes)
    return ctx.steps[-1].id


def _referencing_keys(ctx: Context, live: LiveTable) -> list[tuple[str, str | None, Constraint]]:
    return referencing_keys(ctx.live, live, ctx.all_ops, ctx.profile)


def referencing_keys(snapshot: Snapshot, live: LiveTable, all_ops: Sequence[ops.MigrateOperation],
                     profile: Profile) -> list[tuple[str, str | None, Constraint]]:
    """Foreign keys of other tables that reference ``live`` (a table being recreated) and that
    the recreation moves to the new table: (child table as the ops name it, its schema, the
    key). Empty without foreign keys (``classic``).

    Left out: keys ``all_ops`` drop themselves (a drop_constraint of that name, or the drop of
    the child table), which the plan runs before the recreation."""
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


def _warn_dependents(ctx: Context, live: LiveTable) -> None:
    if ctx.live.views:
        ctx.warn(f"views that read {live.name} follow the backup table after the swap; "
                 "recreate them")
