"""Markers: how far the CDC stream has delivered.

Kinesis's ``MillisBehindLatest`` says how far a reader is behind what Kinesis has *received*;
it says nothing of the changes DSQL has committed and not yet put on the stream. Right after a
large write (a bulk load, the copy itself: the new table's rows are streamed too) that delay
can be many seconds, and a cut-over that froze writes then would find at the verification, not
in the stream, every change of those seconds, and copy its range again with writes frozen.

So before it decides the backlog is small, and again once writes are frozen, the runner
inserts a row with a fresh random value into its ``cdc_marker`` state table (a user table:
DSQL streams it like any other) and reads on until that row's record arrives. DSQL delivers
in *roughly* commit order, not in order, so a marker seen does not prove that every earlier
change arrived: it only says the stream has caught up with about that moment, which is what
keeps the work under the freeze small. What makes the result exact is still the verification
of every key range under the freeze (:mod:`.cutover`).
"""

from __future__ import annotations

import uuid

from psycopg import sql

from ..events import Event
from ..retry import describe
from ..session import Conn
from ..steps.base import StepContext

TABLE = "cdc_marker"


def ensure(ctx: StepContext) -> None:
    """The marker table, made with the ``cdc`` table before the copy; made here for a plan a
    dsql-migrate without markers began."""
    ctx.store.ensure_on_demand(ctx.session, TABLE)


def write(ctx: StepContext, source: str) -> str:
    """Insert a marker for ``source`` (committed when this returns; the table exists:
    :func:`ensure`); its value."""
    value = uuid.uuid4().hex

    def run(conn: Conn) -> None:
        ctx.lock.fence(conn)
        conn.execute(sql.SQL(
            "INSERT INTO {} (marker, plan_hash, source_table, written_at) "
            "VALUES (%s, %s, %s, now())").format(ctx.store.table(TABLE)),
            (value, ctx.plan_hash, source))
    ctx.session.transaction("write a CDC marker", run)
    return value


def clear(ctx: StepContext, source: str | None = None) -> None:
    """Delete the markers of ``source`` (or of every table of the plan) once its cut-over is
    done, or at the start of a run (a killed run's; a few rows per cut-over)."""
    where = "plan_hash = %s" + ("" if source is None else " AND source_table = %s")
    params = (ctx.plan_hash,) if source is None else (ctx.plan_hash, source)

    def run(conn: Conn) -> None:
        conn.execute(sql.SQL("DELETE FROM {} WHERE " + where)
                     .format(ctx.store.table(TABLE)), params)
    try:
        if TABLE in ctx.session.autocommit("state tables", ctx.store.existing_tables):
            ctx.session.transaction("delete the CDC markers", run)
    except Exception as exc:  # a few rows left behind must not stop a run or keep a freeze
        ctx.emit(Event("cdc.markers_left", f"the CDC markers of {source or 'this plan'} "
                       f"could not be deleted ({describe(exc)}); they are a few rows of "
                       f"{ctx.store.schema}.{TABLE}, deleted by the next run"))
