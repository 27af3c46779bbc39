"""The write freeze of a ``--writes=cdc`` cut-over, and the record that makes it undoable.

DSQL has no table locks an application would wait on, so the freeze takes the right to write
away: ``REVOKE INSERT, UPDATE, DELETE`` (table and column privileges) from every role that holds
them, the owner included, as the catalog shows them. The privileges are written to the ``cdc``
state table **before** the first REVOKE, in a committed transaction: whatever happens next (a
failure, a SIGKILL), the record says what to give back, and every run of the plan first gives
back what a killed run left revoked (:func:`recover`), then starts its cut-over afresh.

An application sees ``permission denied`` (SQLSTATE 42501) while frozen. A superuser is not
stopped by a REVOKE (DSQL's ``admin`` is not one; the emulator's raw ``postgres`` is).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from ..errors import StepFailed
from ..events import Event
from ..retry import describe
from ..session import Conn
from ..steps.base import StepContext
from . import marker

log = logging.getLogger(__name__)

WRITE_PRIVILEGES = ("INSERT", "UPDATE", "DELETE")

# who may write the table: table privileges (the owner's implicit ones made explicit by
# acldefault) and column privileges
_WRITERS_SQL = """
SELECT coalesce(r.rolname, 'PUBLIC'), g.privilege_type, g.is_grantable, NULL::text
FROM pg_catalog.pg_class c
CROSS JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) g
LEFT JOIN pg_catalog.pg_roles r ON r.oid = g.grantee
WHERE c.oid = to_regclass(%(table)s) AND g.privilege_type IN ('INSERT', 'UPDATE', 'DELETE')
UNION ALL
SELECT coalesce(r.rolname, 'PUBLIC'), g.privilege_type, g.is_grantable, a.attname::text
FROM pg_catalog.pg_attribute a
CROSS JOIN LATERAL aclexplode(a.attacl) g
LEFT JOIN pg_catalog.pg_roles r ON r.oid = g.grantee
WHERE a.attrelid = to_regclass(%(table)s) AND a.attnum > 0 AND NOT a.attisdropped
      AND a.attacl IS NOT NULL AND g.privilege_type IN ('INSERT', 'UPDATE')
ORDER BY 1, 2, 4 NULLS FIRST
"""


@dataclass(frozen=True)
class Privilege:
    grantee: str  # a role, or PUBLIC
    privilege: str
    grantable: bool
    column: str | None = None


@dataclass(frozen=True)
class FreezeRecord:
    source: str  # the table as SQL (quoted, qualified as the plan writes it)
    stream_start: datetime
    synced_to: datetime | None
    frozen: bool
    privileges: tuple[Privilege, ...]
    backup: str | None
    frozen_at: datetime | None


def writers(conn: Conn, table: str) -> list[Privilege]:
    rows = conn.execute(_WRITERS_SQL, {"table": table}).fetchall()
    return [Privilege(str(r[0]), str(r[1]), bool(r[2]), None if r[3] is None else str(r[3]))
            for r in rows]


# -- the state row ------------------------------------------------------------------------------

def _table(ctx: StepContext) -> sql.Composed:
    return ctx.store.table("cdc")


def record_start(ctx: StepContext, source: str) -> datetime:
    """The moment the copy began (database clock), recorded once per (plan, table), before
    the copy's first batch; the stream is read from the margin before it (:mod:`.cutover`)."""
    ctx.store.ensure_on_demand(ctx.session, "cdc")
    marker.ensure(ctx)  # DDL now, not at the cut-over

    def run(conn: Conn) -> datetime:
        ctx.lock.fence(conn)
        row = conn.execute(sql.SQL(
            "SELECT stream_start FROM {} WHERE plan_hash = %s AND source_table = %s").format(
            _table(ctx)), (ctx.plan_hash, source)).fetchone()
        if row is not None:
            return row[0]  # type: ignore[no-any-return]
        started = conn.execute("SELECT now()").fetchone()
        assert started is not None
        conn.execute(sql.SQL(
            "INSERT INTO {} (plan_hash, source_table, stream_start, frozen, run_id, "
            "updated_at) VALUES (%s, %s, %s, false, %s, now())").format(_table(ctx)),
            (ctx.plan_hash, source, started[0], ctx.run_id))
        return started[0]  # type: ignore[no-any-return]
    return ctx.session.transaction("record where the CDC stream is read from", run)


def read(ctx: StepContext, source: str) -> FreezeRecord | None:
    rows = _read_rows(ctx, "plan_hash = %s AND source_table = %s", (ctx.plan_hash, source))
    return rows[0][0] if rows else None


def frozen_records(ctx: StepContext) -> list[FreezeRecord]:
    return [r[0] for r in _read_rows(ctx, "frozen AND plan_hash = %s", (ctx.plan_hash,))]


def _read_rows(ctx: StepContext, where: str, params: tuple[Any, ...], *,
               extra: str = "NULL") -> list[tuple[FreezeRecord, Any]]:
    def run(conn: Conn) -> list[tuple[Any, ...]]:
        return conn.execute(sql.SQL(
            "SELECT source_table, stream_start, frozen, grants, frozen_at, synced_to, "
            + extra + " FROM {} WHERE " + where).format(_table(ctx)), params).fetchall()
    return [(_record(r), r[6]) for r in ctx.session.autocommit("read the CDC state", run)]


def _record(row: Sequence[Any]) -> FreezeRecord:
    saved = json.loads(row[3]) if row[3] else {}
    return FreezeRecord(
        source=str(row[0]), stream_start=row[1], synced_to=row[5], frozen=bool(row[2]),
        privileges=tuple(Privilege(**p) for p in saved.get("privileges", ())),
        backup=saved.get("backup"), frozen_at=row[4])


def record_synced(ctx: StepContext, source: str, upto: datetime) -> None:
    """Every change that reached the stream before ``upto`` is re-synced: a later step (or
    run) of the plan reads the stream from there, less the clock-skew margin."""
    def run(conn: Conn) -> None:
        ctx.lock.fence(conn)
        conn.execute(sql.SQL(
            "UPDATE {} SET synced_to = %s, updated_at = now() WHERE plan_hash = %s AND "
            "source_table = %s").format(_table(ctx)), (upto, ctx.plan_hash, source))
    ctx.session.transaction("record how far the CDC stream is re-synced", run)


# -- freeze and unfreeze ------------------------------------------------------------------------

def freeze(ctx: StepContext, source: str, backup: str | None, *, step: int) -> datetime:
    """Record who may write ``source``, then revoke it. Returns the freeze moment (database
    clock, the record's commit)."""
    def record(conn: Conn) -> tuple[list[Privilege], datetime]:
        ctx.lock.fence(conn)
        held = writers(conn, source)
        saved = json.dumps({"privileges": [asdict(p) for p in held], "backup": backup})
        row = conn.execute(sql.SQL(
            "UPDATE {} SET frozen = true, grants = %s, frozen_at = now(), unfrozen_at = NULL, "
            "freeze_ms = NULL, run_id = %s, updated_at = now() WHERE plan_hash = %s AND "
            "source_table = %s RETURNING frozen_at").format(_table(ctx)),
            (saved, ctx.run_id, ctx.plan_hash, source)).fetchone()
        if row is None:
            raise StepFailed(f"step {step}: no CDC record for {source} (the copy records it): "
                             "run the plan from its copy step")
        return held, row[0]
    held, frozen_at = ctx.session.transaction(f"record the write freeze of {source}", record)
    ctx.crash.reach("cdc.after_freeze_record")
    try:
        for statement in _statements("REVOKE", held, source):
            _ddl(ctx, statement, step)
        ctx.crash.reach("cdc.after_revoke")
        left = ctx.session.autocommit("check the freeze", lambda c: writers(c, source))
        if left:
            names = ", ".join(sorted({f"{p.grantee} ({p.privilege})" for p in left}))
            raise StepFailed(
                f"step {step}: cannot freeze writes on {source}: {names} still may write it "
                "after the REVOKE (a privilege granted by another role)",
                hint="revoke it yourself (as the role that granted it) or re-grant it from the "
                "table's owner, then run 'dsql-migrate apply' again")
    except BaseException:
        restore(ctx, source, step=step)
        raise
    return frozen_at


def restore(ctx: StepContext, source: str, *, step: int | None = None) -> float | None:
    """Give back what the freeze of ``source`` revoked (on the table under its name, and on
    its backup when the swap renamed it) and mark it unfrozen: the seconds it was frozen
    (database clock), or None when nothing was frozen."""
    # frozen until now: the new table (which has the grants) is in place, or the cut-over
    # stopped; giving the backup its privileges back does not make the freeze longer
    rows = _read_rows(ctx, "plan_hash = %s AND source_table = %s", (ctx.plan_hash, source),
                      extra="extract(epoch FROM now() - frozen_at)")
    if not rows or not rows[0][0].frozen:
        return None
    record, seconds = rows[0]
    tables = [t for t in (source, record.backup) if t and _exists(ctx, t)]
    for table in dict.fromkeys(tables):
        for statement in _statements("GRANT", record.privileges, table):
            _ddl(ctx, statement, step)

    frozen_for = float(seconds) if seconds is not None else 0.0

    def mark(conn: Conn) -> None:
        ctx.lock.fence(conn)
        conn.execute(sql.SQL(
            "UPDATE {} SET frozen = false, unfrozen_at = now(), freeze_ms = %s, "
            "updated_at = now() WHERE plan_hash = %s AND source_table = %s").format(
            _table(ctx)), (round(frozen_for * 1000), ctx.plan_hash, source))
    ctx.session.transaction(f"record the end of the write freeze of {source}", mark)
    return frozen_for


def recover(ctx: StepContext) -> list[str]:
    """At the start of a run: give back every freeze of this plan that a killed run left in
    place. Its cut-over starts again (and freezes anew) when the swap had not happened."""
    if "cdc" not in ctx.session.autocommit("state tables", ctx.store.existing_tables):
        return []
    out = []
    for record in frozen_records(ctx):
        seconds = restore(ctx, record.source)
        ctx.emit(Event("cdc.freeze", f"writes on {record.source} were frozen for "
                       f"{seconds or 0:.3f} s by a run that stopped in its cut-over: the "
                       "privileges it revoked are granted again",
                       data={"table": record.source, "freeze_seconds": seconds or 0.0}))
        out.append(record.source)
    marker.clear(ctx)  # a killed run's markers (after the privileges are back; never fails)
    return out


def _exists(ctx: StepContext, table: str) -> bool:
    return ctx.query_bool("SELECT to_regclass(%s) IS NOT NULL", (table,))


def _statements(verb: str, privileges: Sequence[Privilege], table: str) -> list[sql.Composed]:
    """One statement per grantee (and per column privilege); REVOKE takes all three
    privileges from a table-level holder (revoking one it lacks is a no-op)."""
    target = sql.SQL(table)  # already quoted and qualified by the planner
    out: list[sql.Composed] = []
    by_grantee: dict[tuple[str, bool], list[str]] = {}
    columns: dict[tuple[str, str, bool], list[str]] = {}
    for p in privileges:
        if p.column is None:
            by_grantee.setdefault((p.grantee, p.grantable), []).append(p.privilege)
        else:
            columns.setdefault((p.grantee, p.privilege, p.grantable), []).append(p.column)
    for (grantee, grantable), privs in sorted(by_grantee.items()):
        role = _role(grantee)
        if verb == "REVOKE":
            out.append(sql.SQL("REVOKE {} ON {} FROM {}").format(
                sql.SQL(", ").join(map(sql.SQL, WRITE_PRIVILEGES)), target, role))
        else:
            option = sql.SQL(" WITH GRANT OPTION") if grantable else sql.SQL("")
            out.append(sql.SQL("GRANT {} ON {} TO {}{}").format(
                sql.SQL(", ").join(map(sql.SQL, sorted(set(privs)))), target, role, option))
    for (grantee, privilege, grantable), cols in sorted(columns.items()):
        names = sql.SQL(", ").join(sql.Identifier(c) for c in sorted(set(cols)))
        if verb == "REVOKE":
            out.append(sql.SQL("REVOKE {} ({}) ON {} FROM {}").format(
                sql.SQL(privilege), names, target, _role(grantee)))
        else:
            option = sql.SQL(" WITH GRANT OPTION") if grantable else sql.SQL("")
            out.append(sql.SQL("GRANT {} ({}) ON {} TO {}{}").format(
                sql.SQL(privilege), names, target, _role(grantee), option))
    return out


def _role(grantee: str) -> sql.Composable:
    return sql.SQL("PUBLIC") if grantee == "PUBLIC" else sql.Identifier(grantee)


def _ddl(ctx: StepContext, statement: sql.Composed, step: int | None) -> None:
    """A GRANT or REVOKE alone in its transaction, after the lease fence."""
    ctx.session.transaction("lock fence", ctx.lock.fence)
    try:
        ctx.session.autocommit("write freeze", lambda c: c.execute(statement))
    except psycopg.Error as exc:
        text = statement.as_string(None) if hasattr(statement, "as_string") else str(statement)
        where = f"step {step}: " if step is not None else ""
        raise StepFailed(f"{where}{text} failed: {describe(exc)}", sql_text=text) from None
