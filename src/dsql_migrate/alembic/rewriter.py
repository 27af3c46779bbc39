"""The autogenerate rewriter: ``revision --autogenerate`` writes what DSQL will really do.

Installed by :func:`dsql_migrate.alembic.context.configure` as ``process_revision_directives``
(after the project's own rewriter, if any). Alembic's comparison gives plain ops; this turns
them into the DSQL-safe form, explicitly, in the file a reviewer reads:

- changes DSQL can only make by recreating the table (a type change, SET NOT NULL, and in the
  ``classic`` profile drops, defaults and new constraints: whatever the planner would recreate
  the table for) are grouped into one ``with op.recreate_table(t, reason=...) as batch_op:``
  block per table; foreign keys of other tables that reference such a table are named in a
  comment in the block (the planner moves them to the new table around the swap);
- indexes become ``op.create_index_async(...)``;
- a unique constraint becomes ``op.create_index_async(..., unique=True)`` followed by
  ``op.create_unique_constraint_using_index(...)`` (DSQL cannot ``ADD UNIQUE (cols)``);
- CHECK constraints and foreign keys are added ``postgresql_not_valid=True`` and then
  ``op.validate_constraint_async(...)``;
- a new column with a server default becomes the bare column, ``op.alter_column(...,
  server_default=...)`` and an ``op.backfill(...)`` of the existing rows;
- in the ``classic`` profile, which has no foreign keys, they are left out with a comment.

The downgrade is rewritten the same way, against the schema the upgrade leads to.

It also makes the comparison DSQL-aware (so ``dsql-migrate check`` agrees):

- identity changes that only differ by the cache DSQL imposed are dropped, and new identity
  columns get a cache DSQL accepts (``CACHE 1`` or at least 65536);
- the model's indexes whose async build failed (``indisvalid = false``), which Alembic takes
  for present, are dropped and built again;
- the model's named CHECK constraints missing from the database are added (Alembic does not
  compare CHECK constraints), and those left ``NOT VALID`` are validated;
- in the ``classic`` profile, foreign keys of the model are not reported as missing.

Finally the rewritten upgrade and downgrade are compiled with the planner (the upgrade against
the live schema, the downgrade against the schema the upgrade leads to): if DSQL cannot apply
them at all, the command stops with the reason instead of writing the file.
"""

from __future__ import annotations

import copy
import logging
import textwrap
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops
from alembic.util import CommandError

from ..catalog import Snapshot, snapshot
from ..errors import DsqlMigrateError
from ..planner import Options, op_table, ranking, recreations
from ..planner import plan as make_plan
from ..planner._sql import default_sql, q
from ..planner.recreate import referencing_keys
from ..profiles import Capability, Profile
from . import render as _render  # noqa: F401 - registers the renderers of our ops
from .compile import fold_into_new_tables, renames_first
from .model import desired_metadata, predicted_snapshot, reflect_live
from .ops import (
    BackfillOp,
    CommentOp,
    CreateIndexAsyncOp,
    RecreateTableOp,
    UniqueUsingIndexOp,
    ValidateConstraintAsyncOp,
    flatten,
)

log = logging.getLogger(__name__)
Rewriter = Callable[[Any, Any, list[Any]], None]
TableKey = tuple[str | None, str | None]


def chain_rewriter(user: Rewriter | None, profile: Profile) -> Rewriter:
    def rewrite(context: Any, revision: Any, directives: list[Any]) -> None:
        if user is not None:
            user(context, revision, directives)
        dsql_rewrite(context, directives, profile)
    return rewrite


def _walk(items: Sequence[ops.MigrateOperation]) -> Iterator[ops.MigrateOperation]:
    for item in items:
        if isinstance(item, ops.OpContainer):
            yield from _walk(item.ops)
        else:
            yield item


# -- identity caches -----------------------------------------------------------------------------


def dsql_cache(cache: int | None, profile: Profile) -> int:
    """The identity cache DSQL ends up with: 1 or at least the profile's floor."""
    floor = profile.limits.min_large_cache
    if cache is None or cache == 1:
        return 1
    return max(cache, floor)


def fix_identity(column: sa.Column[Any], profile: Profile) -> bool:
    """Raise a cache DSQL rejects (2 .. floor-1) to the floor; None stays (planned CACHE 1)."""
    identity = column.identity
    if identity is None or identity.cache is None:
        return False
    wanted = dsql_cache(identity.cache, profile)
    if wanted == identity.cache:
        return False
    identity.cache = wanted
    return True


_IDENTITY_ATTRS = ("always", "on_null", "start", "increment", "minvalue", "maxvalue", "cycle",
                   "order")


def is_identity_cache_noise(op: ops.MigrateOperation, profile: Profile) -> bool:
    """An identity change that only differs by the cache DSQL imposed on the model's value."""
    if not isinstance(op, ops.AlterColumnOp) or op.modify_type is not None \
            or op.modify_nullable is not None or op.modify_name is not None:
        return False
    new, old = op.modify_server_default, op.existing_server_default
    if not isinstance(new, sa.Identity) or not isinstance(old, sa.Identity):
        return False
    for attr in _IDENTITY_ATTRS:
        mine, theirs = getattr(new, attr, None), getattr(old, attr, None)
        if mine is not None and theirs is not None and mine != theirs:
            return False
    return dsql_cache(new.cache, profile) == dsql_cache(old.cache, profile)


def _drop_noise(container: Any, profile: Profile) -> None:
    kept = []
    for item in container.ops:
        if isinstance(item, ops.OpContainer):
            _drop_noise(item, profile)
            if item.is_empty():
                continue
        elif is_identity_cache_noise(item, profile):
            log.info("ignored an identity cache difference DSQL imposes: %r", item)
            continue
        kept.append(item)
    container.ops[:] = kept


def _fix_identities(container: Any, profile: Profile) -> None:
    for op in _walk(container.ops):
        columns: list[sa.Column[Any]] = []
        if isinstance(op, ops.CreateTableOp):
            columns = [c for c in op.columns if isinstance(c, sa.Column)]
        elif isinstance(op, ops.AddColumnOp):
            columns = [op.column]
        for column in columns:
            if fix_identity(column, profile):
                log.warning("identity %s: cache set to %s for DSQL", column.name,
                            profile.limits.min_large_cache)


# -- the rewrite ---------------------------------------------------------------------------------


def _autogenerating(context: Any) -> bool:
    """False for a plain ``revision`` (no ``--autogenerate``): its empty functions stay empty."""
    revision_context = context.opts.get("revision_context")
    args = getattr(revision_context, "command_args", None)
    return not isinstance(args, dict) or bool(args.get("autogenerate", True))


def dsql_rewrite(context: Any, directives: list[Any], profile: Profile) -> None:
    if not _autogenerating(context):
        return
    for script in directives:
        upgrade = getattr(script, "upgrade_ops", None)
        if upgrade is None:
            continue
        downgrade = getattr(script, "downgrade_ops", None)
        for container in (upgrade, downgrade):
            if container is not None:
                _drop_noise(container, profile)
                _fix_identities(container, profile)
        live = _live(context)
        if live is None:
            continue
        live_md = reflect_live(context.bind)
        target = _metadatas(context.opts.get("target_metadata"))
        upgrade.ops.extend(invalid_index_rebuilds(live, target))
        added, dropped = missing_checks(live, target, already=_check_names(upgrade))
        upgrade.ops.extend(added)
        upgrade.ops.extend(not_valid_validations(live, target, profile))
        if downgrade is not None:
            downgrade.ops[:0] = dropped
        explicit(upgrade, live, live_md, profile)
        upgraded = list(flatten(upgrade.ops))
        _check_plannable(upgraded, live, live_md, profile, "upgrade")
        if downgrade is not None and downgrade.ops:
            after_md = desired_metadata(live_md, upgraded)
            after = predicted_snapshot(after_md, live)
            explicit(downgrade, after, after_md, profile)
            _check_plannable(list(flatten(downgrade.ops)), after, after_md, profile,
                             "downgrade")
        # Alembic does not compare primary keys: a changed key is written as Alembic's own
        # ops (drop + create_primary_key), which the plugin compiles into a recreation
        keys_up, keys_down = primary_key_changes(live_md, target)
        upgrade.ops.extend(keys_up)
        if downgrade is not None:
            downgrade.ops[:0] = keys_down


def explicit(container: ops.OpContainer, live: Snapshot, live_md: sa.MetaData,
             profile: Profile) -> None:
    """Rewrite ``container`` (an upgrade or a downgrade) into the DSQL-safe ops, in place."""
    if not profile.allows(Capability.FOREIGN_KEYS):
        _leave_out_foreign_keys(container, profile)
    flat = list(flatten(container.ops))
    tables = recreations(flat, live, desired_metadata(live_md, flat), profile)
    _Explicit(tables, live, profile, flat).rewrite(container)
    # one op per line, whatever render_as_batch says (Alembic renders ModifyTableOps as
    # batch_alter_table blocks then, and our ops have no batch form)
    container.ops[:] = [item for entry in container.ops for item in (
        entry.ops if type(entry) is ops.ModifyTableOps else [entry])]
    # written in the order the planner runs them (recreations before new tables, ...)
    rank = ranking(list(flatten(container.ops)), tables, live)
    container.ops.sort(key=lambda item: min((rank(o) for o in flatten([item])), default=3))


class _Explicit:
    def __init__(self, tables: dict[TableKey, list[str]], live: Snapshot,
                 profile: Profile, flat: Sequence[ops.MigrateOperation] = ()) -> None:
        self.tables = tables
        self.live = live
        self.profile = profile
        self.flat = flat
        self.blocks: dict[TableKey, RecreateTableOp] = {}

    def rewrite(self, container: ops.OpContainer) -> None:
        out: list[ops.MigrateOperation] = []
        for item in container.ops:
            if isinstance(item, RecreateTableOp) or (
                    isinstance(item, CommentOp) and not self._recreated(item)):
                out.append(item)
            elif isinstance(item, ops.OpContainer) and not isinstance(item, CommentOp):
                self.rewrite(item)
                if item.ops:
                    out.append(item)
            elif self._recreated(item):
                block = self._block(item, out)
                if not isinstance(item, ValidateConstraintAsyncOp):
                    # the recreation creates every constraint with the table, checked by the copy
                    block.ops.append(item)
            else:
                out.extend(self.safe_form(item))
        container.ops[:] = out

    def _recreated(self, item: ops.MigrateOperation) -> bool:
        return op_table(item) in self.tables and not isinstance(
            item, (ops.CreateTableOp, ops.DropTableOp, ops.RenameTableOp))

    def _block(self, item: ops.MigrateOperation,
               out: list[ops.MigrateOperation]) -> RecreateTableOp:
        key = op_table(item)
        block = self.blocks.get(key)
        if block is None:
            schema, table = key
            assert table is not None
            reason = "; ".join(dict.fromkeys(self.tables[key]))
            block = self.blocks[key] = RecreateTableOp(table, schema=schema, reason=reason)
            block.ops.extend(self._moved_keys(table, schema))
            out.append(block)
        return block

    def _moved_keys(self, table: str, schema: str | None) -> list[ops.MigrateOperation]:
        """A comment in the block on the foreign keys of other tables that reference it: the
        plan moves them to the new table (dropped just before the swap, added again NOT VALID
        right after it, then validated)."""
        live = self.live.table(table, schema)
        keys = referencing_keys(self.live, live, self.flat, self.profile) if live else []
        if not keys:
            return []
        names = ", ".join(f"{c.name} ({child})" for child, _, c in keys)
        text = (f"foreign keys of other tables that reference {table}: {names}. The plan "
                "drops each just before the swap and adds it again right after it, NOT VALID, "
                f"against the new {table}, then validates it with an async job (`upgrade "
                "--dry-run` shows the steps)")
        return [CommentOp(*textwrap.wrap(text, 84), table_name=table, schema=schema)]

    def safe_form(self, item: ops.MigrateOperation) -> list[ops.MigrateOperation]:
        """The explicit DSQL form of an op whose table is not recreated."""
        if isinstance(item, ops.CreateIndexOp) and not isinstance(item, CreateIndexAsyncOp):
            return [CreateIndexAsyncOp.of(item)]
        if isinstance(item, ops.CreateUniqueConstraintOp):
            return self._unique(item)
        if isinstance(item, ops.CreateCheckConstraintOp):
            return self._check(item)
        if isinstance(item, ops.CreateForeignKeyOp):
            return self._foreign_key(item)
        if isinstance(item, ops.AddColumnOp):
            return self._add_column(item)
        return [item]

    def _unique(self, item: ops.CreateUniqueConstraintOp) -> list[ops.MigrateOperation]:
        columns = [str(c) for c in item.columns]
        name = str(item.constraint_name or f"{item.table_name}_{'_'.join(columns)}_key")
        return [CreateIndexAsyncOp(name, item.table_name, columns, schema=item.schema,
                                   unique=True),
                UniqueUsingIndexOp(name, item.table_name, schema=item.schema)]

    def _check(self, item: ops.CreateCheckConstraintOp) -> list[ops.MigrateOperation]:
        if item.constraint_name is None or item.kw.get("postgresql_not_valid"):
            return [item]
        not_valid = copy.copy(item)
        not_valid.kw = {**item.kw, "postgresql_not_valid": True}
        return [not_valid, ValidateConstraintAsyncOp(item.table_name, str(item.constraint_name),
                                                     schema=item.schema)]

    def _foreign_key(self, item: ops.CreateForeignKeyOp) -> list[ops.MigrateOperation]:
        if item.kw.get("postgresql_not_valid"):
            return [item]
        name = str(item.constraint_name
                   or f"{item.source_table}_{'_'.join(item.local_cols)}_fkey")
        not_valid = copy.copy(item)
        not_valid.constraint_name = name
        not_valid.kw = {**item.kw, "postgresql_not_valid": True}
        return [not_valid, ValidateConstraintAsyncOp(item.source_table, name,
                                                     schema=item.kw.get("source_schema"))]

    def _add_column(self, item: ops.AddColumnOp) -> list[ops.MigrateOperation]:
        column = item.column
        default = default_sql(column)
        if default is None or column.identity is not None or not column.nullable:
            return [item]
        bare = sa.Column(column.name, column.type, nullable=True, comment=column.comment)
        set_default = ops.AlterColumnOp(item.table_name, column.name, schema=item.schema,
                                        modify_server_default=column.server_default,
                                        existing_type=column.type, existing_nullable=True)
        out: list[ops.MigrateOperation] = [
            ops.AddColumnOp(item.table_name, bare, schema=item.schema), set_default]
        if self.live.table(item.table_name, item.schema) is not None:
            out.append(BackfillOp(item.table_name, {column.name: default},
                                  where=f"{q(column.name)} IS NULL", schema=item.schema))
        return out


def _leave_out_foreign_keys(container: ops.OpContainer, profile: Profile) -> None:
    """A profile without foreign keys: the revision says so in comments instead (the planner
    would leave them out, and ``check`` would report them forever)."""
    out: list[ops.MigrateOperation] = []
    for item in container.ops:
        if isinstance(item, ops.OpContainer) and not isinstance(item, CommentOp):
            _leave_out_foreign_keys(item, profile)
            out.append(item)
        elif isinstance(item, ops.CreateForeignKeyOp):
            out.append(_no_fk_comment(item.source_table, item.kw.get("source_schema"),
                                      item.local_cols, item.referent_table, item.remote_cols,
                                      profile))
        elif isinstance(item, ops.DropConstraintOp) and item.constraint_type == "foreignkey":
            continue  # the reverse of one left out: it was never created
        elif isinstance(item, ops.CreateTableOp):
            out.extend(_create_table_without_fks(item, profile))
        else:
            out.append(item)
    container.ops[:] = out


def _create_table_without_fks(item: ops.CreateTableOp,
                              profile: Profile) -> list[ops.MigrateOperation]:
    notes: list[CommentOp] = []
    kept: list[Any] = []
    for element in item.columns:
        if isinstance(element, sa.ForeignKeyConstraint):
            targets = [e.target_fullname.rsplit(".", 1) for e in element.elements]
            notes.append(_no_fk_comment(item.table_name, item.schema,
                                        [str(k) for k in element.column_keys], targets[0][0],
                                        [t[-1] for t in targets], profile))
        elif isinstance(element, sa.Column) and element.foreign_keys:
            kept.append(element._copy())  # a copy has no foreign keys
        else:
            kept.append(element)
    if not notes:
        return [item]
    stripped = copy.copy(item)
    stripped.columns = kept
    return [*notes, stripped]


def _no_fk_comment(table: str, schema: str | None, local: Sequence[str], referent: str,
                   remote: Sequence[str], profile: Profile) -> CommentOp:
    text = (f"foreign key {table} ({', '.join(local)}) -> {referent} ({', '.join(remote)}) "
            f"left out: the {profile.name} profile has no foreign keys; enforce it in the "
            "application (check the parent exists before insert, dependents before delete)")
    return CommentOp(*textwrap.wrap(text, 88), table_name=table, schema=schema)


# -- DSQL-aware comparisons ----------------------------------------------------------------------


def _metadatas(target: Any) -> list[sa.MetaData]:
    items = target if isinstance(target, (list, tuple)) else [target]
    return [md for md in items if isinstance(md, sa.MetaData)]


def _model_tables(target: Iterable[sa.MetaData]) -> Iterator[sa.Table]:
    for md in target:
        yield from md.sorted_tables


def invalid_index_rebuilds(live: Snapshot, target: Any) -> list[ops.MigrateOperation]:
    """Drop and create again the model's indexes whose async build failed or never finished
    (``indisvalid = false``): Alembic sees them as present, DSQL does not use them, and a
    failed unique one still rejects writes."""
    out: list[ops.MigrateOperation] = []
    for table in _model_tables(_metadatas(target)):
        live_table = live.table(table.name, table.schema)
        if live_table is None:
            continue
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            found = live_table.index(str(index.name))
            if found is not None and not found.valid:
                log.warning("index %s on %s is not valid: dropped and built again",
                            index.name, table.name)
                out.append(ops.DropIndexOp(str(index.name), table_name=table.name,
                                           schema=table.schema))
                out.append(ops.CreateIndexOp.from_index(index))
    return out


def _named_checks(table: sa.Table) -> Iterator[sa.CheckConstraint]:
    for constraint in sorted(table.constraints, key=lambda c: str(c.name)):
        if isinstance(constraint, sa.CheckConstraint) and isinstance(constraint.name, str) \
                and not getattr(constraint, "_type_bound", False):
            yield constraint


def _check_names(container: ops.OpContainer) -> set[str]:
    """CHECKs the comparison already adds (Alembic's opt-in ``checkconstraint_byname``)."""
    return {str(op.constraint_name) for op in _walk(container.ops)
            if isinstance(op, ops.CreateCheckConstraintOp)}


def primary_key_changes(live_md: sa.MetaData, target: Sequence[sa.MetaData],
                        ) -> tuple[list[ops.MigrateOperation], list[ops.MigrateOperation]]:
    """Tables whose primary key in the models differs from the database's (other columns, or
    another name): the drop of the live key and the creation of the model's, and the reverse
    for the downgrade."""
    up: list[ops.MigrateOperation] = []
    down: list[ops.MigrateOperation] = []
    for table in _model_tables(target):
        key = f"{table.schema}.{table.name}" if table.schema else table.name
        live_table = live_md.tables.get(key)
        if live_table is None:
            continue
        old, new = live_table.primary_key, table.primary_key
        old_cols = [c.name for c in old.columns]
        new_cols = [c.name for c in new.columns]
        named = isinstance(new.name, str) and new.name != old.name
        if old_cols == new_cols and not named:
            continue
        if not new_cols:
            continue  # a model without a key: not something a revision can ask of DSQL
        if old_cols:
            up.append(ops.DropConstraintOp.from_constraint(old))
        up.append(ops.CreatePrimaryKeyOp.from_constraint(new))
        if isinstance(new.name, str):
            down.append(ops.DropConstraintOp.from_constraint(new))
        else:  # PostgreSQL names an unnamed key <table>_pkey
            down.append(ops.DropConstraintOp(f"{table.name}_pkey", table.name, type_="primary",
                                             schema=table.schema))
        if old_cols:
            down.append(ops.CreatePrimaryKeyOp.from_constraint(old))
    return up, down


def missing_checks(live: Snapshot, target: Sequence[sa.MetaData], *,
                   already: Iterable[str] = ()
                   ) -> tuple[list[ops.MigrateOperation], list[ops.MigrateOperation]]:
    """The model's named CHECK constraints that an existing table lacks (compared by name:
    the database rewrites the text of a condition), as upgrade ops and their downgrade."""
    skip = set(already)
    added: list[ops.MigrateOperation] = []
    dropped: list[ops.MigrateOperation] = []
    for table in _model_tables(target):
        live_table = live.table(table.name, table.schema)
        if live_table is None:
            continue
        for check in _named_checks(table):
            if live_table.constraint(str(check.name)) is None and str(check.name) not in skip:
                added.append(ops.CreateCheckConstraintOp.from_constraint(check))
                dropped.insert(0, ops.DropConstraintOp(str(check.name), table.name,
                                                       type_="check", schema=table.schema))
    return added, dropped


def not_valid_validations(live: Snapshot, target: Sequence[sa.MetaData],
                          profile: Profile) -> list[ops.MigrateOperation]:
    """Validate the model's constraints that exist ``NOT VALID`` (a validation that failed or
    never ran): Alembic sees them as present, but existing rows were never checked."""
    if not profile.allows(Capability.VALIDATE_CONSTRAINT_ASYNC):
        return []
    out: list[ops.MigrateOperation] = []
    for table in _model_tables(target):
        live_table = live.table(table.name, table.schema)
        if live_table is None:
            continue
        names = {str(c.name) for c in table.constraints if isinstance(c.name, str)}
        for constraint in live_table.constraints:
            if constraint.name in names and not constraint.validated:
                log.warning("constraint %s on %s is NOT VALID: validated", constraint.name,
                            table.name)
                out.append(ValidateConstraintAsyncOp(table.name, constraint.name,
                                                     schema=table.schema))
    return out


# -- live schema and the compile check -----------------------------------------------------------


def _live(context: Any) -> Snapshot | None:
    bind = getattr(context, "bind", None)
    if bind is None:
        return None
    from .runtime import connection_factory

    conn = connection_factory(bind)()
    try:
        return snapshot(conn)
    finally:
        conn.close()


def _check_plannable(flat: list[ops.MigrateOperation], live: Snapshot, live_md: sa.MetaData,
                     profile: Profile, what: str) -> None:
    if not flat:
        return
    try:
        make_plan(fold_into_new_tables(renames_first(flat)), live,
                  desired_metadata(live_md, flat), profile, Options())
    except DsqlMigrateError as exc:
        raise CommandError(f"DSQL cannot apply this revision's {what}: {exc.message}"
                           + (f" ({exc.hint})" if exc.hint else "")) from None


__all__ = ["chain_rewriter", "dsql_cache", "dsql_rewrite", "explicit", "fix_identity",
           "invalid_index_rebuilds", "is_identity_cache_noise", "missing_checks",
           "not_valid_validations"]
