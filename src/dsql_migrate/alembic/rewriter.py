"""The autogenerate rewriter: ``revision --autogenerate`` never writes what DSQL would reject.

Installed by :func:`dsql_migrate.alembic.context.configure` as ``process_revision_directives``
(after the project's own rewriter, if any). It

- gives identity columns a cache DSQL accepts (``CACHE 1`` or ``>= 65536``: Alembic renders an
  ``Identity()`` without a cache as PostgreSQL's default ``CACHE 1``... unless the model says
  otherwise, which DSQL then rejects);
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

from ..catalog import snapshot
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


def fix_identity(column: sa.Column[Any], profile: Profile) -> bool:
    identity = column.identity
    floor = profile.limits.min_large_cache
    if identity is None or identity.cache == 1 or (identity.cache or 0) >= floor:
        return False
    identity.cache = floor
    return True


def dsql_rewrite(context: Any, directives: list[Any], profile: Profile) -> None:
    for script in directives:
        upgrade = getattr(script, "upgrade_ops", None)
        if upgrade is None:
            continue
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
        _check_plannable(context, flat, profile)


def _check_plannable(context: Any, flat: list[ops.MigrateOperation], profile: Profile) -> None:
    bind = getattr(context, "bind", None)
    if bind is None or not flat:
        return
    from .runtime import connection_factory

    conn = connection_factory(bind)()
    try:
        live = snapshot(conn)
    finally:
        conn.close()
    live_md = sa.MetaData()
    live_md.reflect(bind=bind)
    try:
        make_plan(flat, live, desired_metadata(live_md, flat), profile, Options())
    except DsqlMigrateError as exc:
        raise CommandError(f"DSQL cannot apply this revision: {exc.message}"
                           + (f" ({exc.hint})" if exc.hint else "")) from None


__all__ = ["chain_rewriter", "dsql_rewrite", "fix_identity"]
