"""The autogenerate rewriter: ``revision --autogenerate`` never writes what DSQL would reject.

Installed by :func:`dsql_migrate.alembic.context.configure` as ``process_revision_directives``
(after the project's own rewriter, if any). It

- drops identity changes that only differ by the cache DSQL imposed (a DSQL-aware comparison:
  ``Identity(cache=100)`` is stored as ``CACHE 65536``, which is not a change);
- gives identity columns a cache DSQL accepts (``CACHE 1`` or at least 65536): a model's
  ``Identity(cache=100)`` is written as ``cache=65536``;
- drops and creates again the model's indexes whose async build failed (``indisvalid =
  false``), which Alembic's comparison takes for present;
- compiles the generated upgrade with the planner against the live schema, so an op the planner
  cannot make DSQL-safe stops the command with the reason instead of writing the file. Indexes
  become ``CREATE INDEX ASYNC`` + wait, CHECK/foreign keys ``NOT VALID`` + async validation, and
  type changes a table recreation when the revision runs (``dsql-migrate upgrade --dry-run``
  shows the steps).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops
from alembic.util import CommandError

from ..catalog import Snapshot, snapshot
from ..errors import DsqlMigrateError
from ..planner import Options
from ..planner import plan as make_plan
from ..profiles import Profile
from .model import desired_metadata

log = logging.getLogger(__name__)
Rewriter = Callable[[Any, Any, list[Any]], None]


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


def dsql_rewrite(context: Any, directives: list[Any], profile: Profile) -> None:
    for script in directives:
        upgrade = getattr(script, "upgrade_ops", None)
        if upgrade is None:
            continue
        _drop_noise(upgrade, profile)
        downgrade = getattr(script, "downgrade_ops", None)
        if downgrade is not None:
            _drop_noise(downgrade, profile)
        flat = list(_walk(upgrade.ops))
        for op in flat:
            columns: list[sa.Column[Any]] = []
            if isinstance(op, ops.CreateTableOp):
                columns = [c for c in op.columns if isinstance(c, sa.Column)]
            elif isinstance(op, ops.AddColumnOp):
                columns = [op.column]
            for column in columns:
                if fix_identity(column, profile):
                    log.warning("identity %s: cache set to %s for DSQL", column.name,
                                profile.limits.min_large_cache)
        live = _live(context)
        if live is None:
            continue
        extras = invalid_index_rebuilds(live, context.opts.get("target_metadata"))
        upgrade.ops.extend(extras)
        _check_plannable(context, live, [*flat, *extras], profile)


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


def invalid_index_rebuilds(live: Snapshot, target: Any) -> list[ops.MigrateOperation]:
    """Drop and create again the model's indexes whose async build failed or never finished
    (``indisvalid = false``): Alembic sees them as present, DSQL does not use them, and a
    failed unique one still rejects writes."""
    out: list[ops.MigrateOperation] = []
    metadatas = target if isinstance(target, (list, tuple)) else [target]
    for md in metadatas:
        if not isinstance(md, sa.MetaData):
            continue
        for table in md.sorted_tables:
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


def _check_plannable(context: Any, live: Snapshot, flat: list[ops.MigrateOperation],
                     profile: Profile) -> None:
    if not flat:
        return
    live_md = sa.MetaData()
    live_md.reflect(bind=context.bind)
    try:
        make_plan(flat, live, desired_metadata(live_md, flat), profile, Options())
    except DsqlMigrateError as exc:
        raise CommandError(f"DSQL cannot apply this revision: {exc.message}"
                           + (f" ({exc.hint})" if exc.hint else "")) from None


__all__ = ["chain_rewriter", "dsql_cache", "dsql_rewrite", "fix_identity",
           "invalid_index_rebuilds", "is_identity_cache_noise"]
