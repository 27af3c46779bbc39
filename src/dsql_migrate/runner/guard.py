"""The runner's checks of a plan's premise and promise (DESIGN.md §3.2a).

``premise``: the fingerprints of the tables a plan touches, as the planner saw them. Checked

- **before the first step** of a fresh run, exactly: any difference is drift, and nothing runs;
- **before every destructive step** (a drop, a swap) and at the start of a resumed run, against
  what may legitimately be there by then. The plan's own earlier steps have changed some
  objects, so every object must be either as in the premise or as in the promise: an object the
  plan does not touch has the same value in both, so it must be exactly as planned (a column
  added by someone else, ``+ column important_zz``, is drift at any point), while an object the
  plan changes may be before or after its change (but not in a third state). A table that the
  plan swaps may be missing for the instant of the swap (a resumed swap). This needs no model of
  each step's intermediate state, and it is exact for everything the plan leaves alone, which is
  what a destructive step could lose.

``promise``: the same tables as the plan leaves them. Checked **when the last step is done**
(a difference fails the run, exit 1, naming the object) and **before answering "already
applied"** (the plan's end state must still be there; otherwise the schema changed since).

A plan without a premise (made by an older version, or built by hand) is not checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from psycopg import sql

from ..catalog import snapshot
from ..errors import DsqlMigrateError, ExitCode
from ..fingerprint import (
    PASSING,
    RENAMED_FROM,
    UNCHECKED,
    Difference,
    diff,
    matches,
    objects,
    table_fingerprint,
)
from ..plan import Plan, Step, StepKind
from .events import Event, Listener
from .session import Conn, Session
from .state import ABANDONED, FAILED, STOPPED, StateStore

Tables = Mapping[str, Any]

REPLAN_HINT = ("the plan was made against a different schema; make it again against this "
               "database ('dsql-migrate plan ...'), review it, and apply the new plan")


class GuardError(DsqlMigrateError):
    """A check failed; ``plan_status`` is what the runner records for the plan (None: leave
    it as it is)."""

    plan_status: str | None = None

    def __init__(self, message: str, *, hint: str | None = None,
                 plan_status: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.plan_status = plan_status


class DriftRefused(GuardError):
    """The live schema is not what the plan was made against (exit 5)."""

    exit_code = ExitCode.REFUSED


class PromiseBroken(GuardError):
    """The plan ran, but the tables are not as it promised (exit 1)."""

    exit_code = ExitCode.FAILED


class ChangedSinceApplied(GuardError):
    """The plan was applied, but its end state is no longer there (exit 5)."""

    exit_code = ExitCode.REFUSED


def live_tables(session: Session, keys: Iterable[str]) -> dict[str, Any]:
    """The live fingerprint of each table in ``keys`` (``None``: it does not exist)."""
    wanted = list(keys)

    def read(conn: Conn) -> dict[str, Any]:
        tables = snapshot(conn).tables
        return {key: None if (table := tables.get(key)) is None else table_fingerprint(table)
                for key in wanted}
    return session.autocommit("read the schema of the plan's tables", read)


def lines(differences: Iterable[Difference], *, expected_as: str) -> str:
    return "\n".join("  " + d.text(expected_as=expected_as) for d in differences)


def _differences_text(differences: list[Difference], expected_as: str, limit: int = 30) -> str:
    shown = lines(differences[:limit], expected_as=expected_as)
    more = len(differences) - limit
    return shown + (f"\n  ... and {more} more" if more > 0 else "")


# -- premise -------------------------------------------------------------------------------------


def check_start(session: Session, plan: Plan, *, resumed: bool, emit: Listener) -> None:
    """Before the first step: exactly the premise on a fresh run; on a resumed run, each object
    as in the premise or as promised (see the module doc)."""
    if plan.premise is None:
        return
    live = live_tables(session, plan.premise)
    found = (tolerant_differences(plan, live) if resumed
             else diff(plan.premise, live))
    if found:
        raise DriftRefused(
            "the live schema differs from what this plan was made against (its premise); "
            + ("the resumed run stopped before its next step" if resumed else "nothing was run")
            + ":\n" + _differences_text(found, "the plan's source"), hint=REPLAN_HINT,
            # a fresh run changed nothing: abandoned, it does not block the plan made next
            plan_status=STOPPED if resumed else ABANDONED)
    emit(Event("guard.premise", f"premise holds: {len(plan.premise)} table(s) as planned",
               data={"tables": sorted(plan.premise)}))


def needs_check(step: Step) -> bool:
    """A step that can lose something: a destructive one, or a swap."""
    return step.destructive or step.kind == StepKind.SWAP


def check_before(session: Session, plan: Plan, step: Step, *, begun: bool,
                 emit: Listener) -> None:
    """Before a destructive step (``begun``: resumed after its first statement, which the check
    before it covered already)."""
    if plan.premise is None or begun or not needs_check(step):
        return
    live = live_tables(session, plan.premise)
    found = tolerant_differences(plan, live)
    if found:
        raise DriftRefused(
            f"the schema changed while the plan ran: step {step.id} ({step.summary}) did not "
            "run, nor did any later step:\n" + _differences_text(found, "the plan's source"),
            hint="something outside this plan changed the tables it works on; nothing of "
            "theirs was dropped. Find out what changed, then make a new plan ('dsql-migrate "
            "plan ...') for the schema as it is now", plan_status=STOPPED)
    emit(Event("guard.premise", f"step {step.id}: premise still holds before "
               f"{'a destructive step' if step.destructive else 'the swap'}", step.id,
               data={"tables": sorted(plan.premise)}))


def _swapped(plan: Plan) -> set[str]:
    """Tables (bare names) a swap step of the plan renames: briefly missing."""
    return {step.table for step in plan.steps if step.kind == StepKind.SWAP and step.table}


def tolerant_differences(plan: Plan, live: Mapping[str, Any]) -> list[Difference]:
    """Objects that are neither as in the premise nor as promised."""
    assert plan.premise is not None
    promise = plan.promise or {}
    swapped = _swapped(plan)
    dropped = _dropped_by_steps(plan)
    renames = _plan_renames(promise)
    gone = _tables_dropped_by_steps(plan)
    granted = _tables_granted_by_steps(plan)
    out: list[Difference] = []
    for key in sorted(plan.premise):
        before, after, now = plan.premise[key], promise.get(key, plan.premise[key]), live.get(key)
        if isinstance(after, Mapping) and UNCHECKED in after:
            continue  # what the plan does to this table is not known: only checked at start
        if now is None:
            if before is not None and after is not None and key.split(".", 1)[-1] not in swapped \
                    and not _dropped_table(key, gone):
                out.append(Difference(key, "-", "table", None, expected=before))
            continue
        if before is None and after is None:
            out.append(Difference(key, "+", "table", None, live=now))
            continue
        if before is None and isinstance(after, Mapping) and RENAMED_FROM in after:
            before = _renamed(plan.premise.get(str(after[RENAMED_FROM])),  # by the plan
                              str(after[RENAMED_FROM]), key)
        before = _references_renamed(before, renames)
        if key.split(".", 1)[-1] in swapped and isinstance(before, Mapping):
            now = _names_freed_back(now, before)
        before, after, now = (_without_dropped_views(fp, dropped) for fp in (before, after, now))
        found = _object_differences(key, before, after, now)
        out.extend(d for d in found if not (d.sign == "-" and d.name in dropped)
                   and not (d.kind == "grants" and _dropped_table(key, granted)))
    return out


def _plan_renames(promise: Mapping[str, Any]) -> dict[str, str]:
    """Tables the plan renames: old key -> new key."""
    return {str(after[RENAMED_FROM]): key for key, after in promise.items()
            if isinstance(after, Mapping) and RENAMED_FROM in after}


def _without_dropped_views(fingerprint: Any, dropped: set[str]) -> Any:
    """A table's fingerprint without the dependent views the plan's own steps drop (a
    recreation drops and recreates the views over its table around the swap): a view missing
    in between is the plan's doing."""
    if not isinstance(fingerprint, Mapping) or not isinstance(fingerprint.get("views"), list):
        return fingerprint
    kept = [view for view in fingerprint["views"]
            if not (isinstance(view, str) and view.rsplit(".", 1)[-1] in dropped)]
    return {**fingerprint, "views": kept}


_IDENT = r'(?:"(?:[^"]|"")+"|[\w$]+)'
_DROPS = re.compile(
    rf"\bDROP\s+CONSTRAINT\s+(?:IF\s+EXISTS\s+)?(?P<constraint>{_IDENT})"
    rf"|\bDROP\s+(?:INDEX|VIEW)\s+(?:ASYNC\s+|CONCURRENTLY\s+)?(?:IF\s+EXISTS\s+)?"
    rf"(?:{_IDENT}\.)?(?P<index>{_IDENT})", re.IGNORECASE)


def _dropped_by_steps(plan: Plan) -> set[str]:
    """Constraints, indexes and views the plan's own steps drop (some to add them again, as
    the foreign keys to a recreated table): missing in between is the plan's doing."""
    out: set[str] = set()
    for step in plan.steps:
        for statement in step.sql:
            for match in _DROPS.finditer(statement):
                name = match["constraint"] or match["index"]
                out.add(name[1:-1].replace('""', '"') if name.startswith('"') else name.lower())
    return out


_DROP_TABLE = re.compile(
    rf"^\s*DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:(?P<schema>{_IDENT})\.)?(?P<table>{_IDENT})",
    re.IGNORECASE)


def _unquoted(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()


def _tables_dropped_by_steps(plan: Plan) -> set[tuple[str | None, str]]:
    """Tables a step of the plan drops, as (schema or None, name): a table the plan drops and
    creates again (prefect d481d5058a19: ``drop_table("worker")``, then a new ``worker``) is
    missing in between by the plan's doing; once there again, the end check compares it with
    the promise."""
    out: set[tuple[str | None, str]] = set()
    for step in plan.steps:
        for statement in step.sql:
            match = _DROP_TABLE.match(statement)
            if match:
                schema = match["schema"]
                out.add((_unquoted(schema) if schema else None, _unquoted(match["table"])))
    return out


_GRANT_ON_TABLE = re.compile(
    rf"^\s*(?:GRANT|REVOKE)\b.*?\bON\s+TABLE\s+(?:(?P<schema>{_IDENT})\.)?(?P<table>{_IDENT})"
    r"\s+(?:TO|FROM)\b", re.IGNORECASE | re.DOTALL)


def _tables_granted_by_steps(plan: Plan) -> set[tuple[str | None, str]]:
    """Tables whose privileges a step of the plan grants or revokes (role ops, one statement
    per step): part-way, their grants are some of the plan's changes in; the end check
    compares them with the promise exactly."""
    out: set[tuple[str | None, str]] = set()
    for step in plan.steps:
        for statement in step.sql:
            match = _GRANT_ON_TABLE.match(statement)
            if match:
                schema = match["schema"]
                out.add((_unquoted(schema) if schema else None, _unquoted(match["table"])))
    return out


def _dropped_table(key: str, gone: set[tuple[str | None, str]]) -> bool:
    schema, _, name = key.partition(".")
    return (schema, name) in gone or (None, name) in gone


def _renamed(before: Any, old: str, new: str) -> Any:
    """The premise of a table the plan renames, as it reads under the new name: index
    definitions name their table (``... ON public.orders USING ...``)."""
    if not isinstance(before, Mapping):
        return before
    from ..planner._sql import q

    def qualified(key: str) -> str:
        schema, _, name = key.partition(".")
        return f" ON {q(schema)}.{q(name)} "

    out = dict(before)
    indexes = before.get("indexes")
    if isinstance(indexes, Mapping):
        out["indexes"] = {
            name: {**item, "definition": item["definition"].replace(qualified(old), qualified(new))}
            if isinstance(item, Mapping) and isinstance(item.get("definition"), str) else item
            for name, item in indexes.items()}
    return out


def _references_renamed(before: Any, renames: Mapping[str, str]) -> Any:
    """The premise of a table as PostgreSQL prints it once the plan's table renames ran (they
    are its first steps): a foreign key to a renamed table references the new name."""
    if not renames or not isinstance(before, Mapping) or \
            not isinstance(before.get("constraints"), Mapping):
        return before
    from ..planner._sql import q

    def printed(key: str) -> str:  # as pg_get_constraintdef() names a table on search_path
        schema, _, name = key.partition(".")
        return q(name) if schema == "public" else f"{q(schema)}.{q(name)}"

    constraints = {}
    for name, item in before["constraints"].items():
        target = item.get("ref_table") if isinstance(item, Mapping) else None
        if isinstance(target, str) and target in renames:
            moved = {**item, "ref_table": renames[target]}
            if isinstance(moved.get("definition"), str):
                moved["definition"] = moved["definition"].replace(
                    f"REFERENCES {printed(target)}(", f"REFERENCES {printed(renames[target])}(")
            constraints[name] = moved
        else:
            constraints[name] = item
    return {**before, "constraints": constraints}


def _names_freed_back(now: Mapping[str, Any], before: Mapping[str, Any]) -> dict[str, Any]:
    """``now`` with the objects a recreation renames around its swap under their names again:
    the plan's own doing. The new table's constraints and indexes carry temporary
    ``<name>__new`` names until right after the swap (the old table holds the originals), and
    the backup's are moved to ``<name>__old``."""
    from ..planner._sql import suffixed
    from ..planner.recreate import NEW_SUFFIX, OLD_SUFFIX

    out = dict(now)
    for field, items in now.items():
        planned = before.get(field)
        if not isinstance(items, Mapping) or not isinstance(planned, Mapping):
            continue
        renamed = {suffixed(name, suffix): name for name in planned
                   for suffix in (OLD_SUFFIX, NEW_SUFFIX)}
        if not set(items) & set(renamed):
            continue
        out[field] = {renamed.get(name, name): _renamed_back(item, renamed)
                      for name, item in items.items()}
    return out


def _renamed_back(item: Any, renamed: Mapping[str, str]) -> Any:
    if isinstance(item, str):
        for old, name in renamed.items():
            item = re.sub(rf"(?<![\w$]){re.escape(old)}(?![\w$])", name, item)
        return item
    if isinstance(item, Mapping):
        return {k: _renamed_back(v, renamed) for k, v in item.items()}
    if isinstance(item, list):
        return [_renamed_back(v, renamed) for v in item]
    return item


_MISSING = object()


def _object_differences(key: str, before: Mapping[str, Any] | None,
                        after: Mapping[str, Any] | None,
                        now: Mapping[str, Any]) -> list[Difference]:
    was, will, have = objects(before), objects(after), objects(now)
    passing = objects(after.get(PASSING) if isinstance(after, Mapping) else None)
    out: list[Difference] = []
    for path in sorted(set(was) | set(will) | set(have), key=lambda p: (p[0], p[1] or "")):
        current = have.get(path, _MISSING)
        if _agrees(was.get(path, _MISSING), current) or _agrees(will.get(path, _MISSING),
                                                                current):
            continue
        if path in passing and _agrees(passing[path], current):
            continue  # as the plan's own earlier steps leave it, part-way (see PASSING)
        kind, name = path
        expected = was.get(path, will.get(path))
        if current is _MISSING:
            out.append(Difference(key, "-", kind, name, expected=expected))
        elif path not in was and path not in will:
            out.append(Difference(key, "+", kind, name, live=current))
        else:
            out.append(Difference(key, "~", kind, name, live=current, expected=expected))
    return out


def _agrees(expected: Any, current: Any) -> bool:
    if expected is _MISSING or current is _MISSING:
        return expected is current
    return matches(expected, current)


# -- promise -------------------------------------------------------------------------------------


def promise_differences(session: Session, plan: Plan) -> list[Difference]:
    assert plan.promise is not None
    return diff(plan.promise, live_tables(session, plan.promise))


def check_end(session: Session, plan: Plan, *, emit: Listener) -> None:
    """When the last step is done: the tables must be as the plan promised."""
    if plan.promise is None:
        return
    found = promise_differences(session, plan)
    if found:
        raise PromiseBroken(
            "every step ran, but the tables are not as the plan promised:\n"
            + _differences_text(found, "the plan's promise"),
            hint="the plan did not do what it said, or something changed the tables while "
            "it ran: compare with 'dsql-migrate plan ... --check', then make a new plan for "
            "what is missing (the run is recorded as failed)", plan_status=FAILED)
    emit(Event("guard.promise", f"end state as promised: {len(plan.promise)} table(s)",
               data={"tables": sorted(plan.promise)}))


def check_already_applied(session: Session, plan: Plan, *, emit: Listener,
                          reapply: bool = False) -> bool:
    """Before answering "already applied": the plan's end state must still be there. True:
    run the plan again (``reapply`` asked for it, and the tables are back to the premise)."""
    if plan.promise is None:
        return False
    found = promise_differences(session, plan)
    if not found:
        emit(Event("guard.promise", "end state as promised: the plan's work is still there",
                   data={"tables": sorted(plan.promise)}))
        return False
    back = plan.premise is not None and not diff(plan.premise,
                                                 live_tables(session, plan.premise))
    if back and reapply:
        emit(Event("plan.reapply", "the tables are back to what the plan was made against: "
                   "applying it again", data={"hash": plan.hash}))
        return True
    hint = ("the tables are back to what this plan was made against (someone reverted it); "
            "to apply it again, run 'dsql-migrate apply PLAN --reapply'" if back else
            "make a new plan for the schema as it is now ('dsql-migrate plan ...'), review it "
            "and apply it")
    raise ChangedSinceApplied(
        "this plan was applied before, but the schema changed since; it is not as the plan "
        "left it:\n" + _differences_text(found, "the plan's promise"), hint=hint)


#: state rows deleted per transaction when a plan's record is cleared to apply it again
FORGET_ROWS_PER_TRANSACTION = 1000


def forget_run(session: Session, store: StateStore, plan_hash: str,
               fence: Callable[[Conn], None]) -> None:
    """Clear the record of a finished run of ``plan_hash`` (its steps, lanes and batches) so
    that it runs again from its first step; in transactions of at most
    ``FORGET_ROWS_PER_TRANSACTION`` rows, the batches first (a crash in between leaves steps
    that are done: running again resumes the clearing)."""
    keys = {"batches": "step, lane, batch", "lanes": "step, lane", "steps": "step"}
    for name, key in keys.items():
        if name not in store.existing_tables(session.conn):
            continue
        statement = sql.SQL(
            "DELETE FROM {table} WHERE plan_hash = %(hash)s AND ({key}) IN (SELECT {key} FROM "
            "{table} WHERE plan_hash = %(hash)s LIMIT %(limit)s)").format(
            table=store.table(name), key=sql.SQL(key))

        def delete(conn: Conn, statement: sql.Composed = statement) -> int:
            fence(conn)
            cursor = conn.execute(statement, {"hash": plan_hash,
                                              "limit": FORGET_ROWS_PER_TRANSACTION})
            return int(cursor.rowcount or 0)
        while session.transaction(f"clear the record of the plan ({name})", delete):
            pass


__all__ = ["ChangedSinceApplied", "DriftRefused", "GuardError", "PromiseBroken",
           "check_already_applied", "check_before", "check_end", "check_start", "forget_run",
           "live_tables",
           "needs_check", "promise_differences", "tolerant_differences"]
