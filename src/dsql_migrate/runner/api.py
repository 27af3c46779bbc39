"""The runner as one call, for the CLI (``apply``, ``plan --apply``) and for embedding."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..plan import Plan
from .events import Event, Listener, ignore, serialized
from .lock import Holder, LeaseLock, force_unlock
from .options import ApplyResult, RunOptions
from .retry import RetryPolicy
from .session import Conn, Session
from .state import DEFAULT_SCHEMA, StateStore


def state_schema(section: Mapping[str, Any], override: str | None = None) -> str:
    return override or str(section.get("state_schema") or DEFAULT_SCHEMA)


def apply_plan(
    plan: Plan,
    factory: Callable[[], Conn],
    *,
    options: RunOptions | None = None,
    schema: str = DEFAULT_SCHEMA,
    retry: RetryPolicy | None = None,
    max_connection_seconds: float | None = None,
    on_event: Listener = ignore,
) -> ApplyResult:
    """Apply ``plan`` through connections from ``factory``; see :class:`Runner`."""
    from .execute import Runner  # here: status and unlock do not need the steps (issue 18)

    on_event = serialized(on_event)  # the lanes of a batched step report from their threads

    def on_retry(what: str, attempt: int, exc: BaseException) -> None:
        on_event(Event("retry", f"{what}: retry {attempt} after {type(exc).__name__}",
                       data={"attempt": attempt, "what": what}))

    session = Session(factory, max_connection_seconds=max_connection_seconds, retry=retry,
                      on_retry=on_retry)
    try:
        runner = Runner(session, store=StateStore(schema), options=options, on_event=on_event)
        return runner.apply(plan)
    finally:
        session.close()


def unfinished_plan(factory: Callable[[], Conn], *, schema: str = DEFAULT_SCHEMA) -> Plan | None:
    """The plan a previous run left partially applied, loaded back from the state table.

    Its stored text is verified against its hash like any plan file, so resuming without the
    file runs exactly what was started. None when every recorded plan is done.
    """
    store = StateStore(schema)
    session = Session(factory)
    try:
        if "plans" not in store.existing_tables(session.conn):
            return None
        unfinished = store.unfinished_plans(session.conn)
    finally:
        session.close()
    if not unfinished:
        return None
    row = unfinished[-1]
    return Plan.from_json(row.plan, where=f"the stored plan {row.hash}")


def read_status(factory: Callable[[], Conn], *, schema: str = DEFAULT_SCHEMA) -> dict[str, Any]:
    """The lock, the current (unfinished) or last plan and its steps, as plain data."""
    store = StateStore(schema)
    session = Session(factory)
    try:
        conn = session.conn
        existing = store.existing_tables(conn)
        out: dict[str, Any] = {"schema": schema, "lock": None, "plan": None, "steps": []}
        if "locks" in existing:
            holder = LeaseLock(store, session).holder(conn)
            out["lock"] = None if holder is None else holder.as_dict()
        out["frozen"] = frozen_tables(conn, store) if "cdc" in existing else []
        if {"plans", "steps"} <= existing:
            unfinished = store.unfinished_plans(conn)
            plan = unfinished[-1] if unfinished else store.latest_plan(conn)
            if plan is not None:
                out["plan"] = plan.as_dict()
                out["steps"] = [s.as_dict() for s in store.get_steps(conn, plan.hash)]
                if "batches" in existing:  # a batched step that is still running: its lanes
                    totals = store.batch_totals(conn, plan.hash)
                    for step in out["steps"]:
                        if step["status"] != "done" and step["step"] in totals:
                            step["rows_done"], step["batches_done"] = totals[step["step"]]
        return out
    finally:
        session.close()


def frozen_tables(conn: Conn, store: StateStore) -> list[dict[str, Any]]:
    """The tables whose writes a --writes=cdc cut-over froze and nothing has unfrozen yet
    (a run stopped in its cut-over: the next ``apply`` gives the privileges back first)."""
    from psycopg import sql

    rows = conn.execute(sql.SQL(
        "SELECT plan_hash, source_table, frozen_at, run_id FROM {} WHERE frozen "
        "ORDER BY frozen_at").format(store.table("cdc"))).fetchall()
    return [{"plan": str(r[0]), "table": str(r[1]),
             "frozen_at": None if r[2] is None else r[2].isoformat(), "run_id": r[3]}
            for r in rows]


def unlock(factory: Callable[[], Conn], *, schema: str = DEFAULT_SCHEMA,
           force: bool = False) -> Holder | None:
    store = StateStore(schema)
    session = Session(factory)
    try:
        if "locks" not in store.existing_tables(session.conn):
            return None
        return force_unlock(store, session, force=force)
    finally:
        session.close()
