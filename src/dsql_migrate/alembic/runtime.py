"""Running revisions through the spine: record → plan → runner, one revision at a time.

For every migration step Alembic computes, :func:`run_migrations`:

1. resumes the revision's stored plan if a previous run stopped in the middle of it (the plan is
   found in the runner's state tables by its label, ``alembic upgrade <from> -> <to>``);
2. otherwise records the revision's ops, compiles them with the planner against a fresh live
   snapshot, and appends one last step: the ``alembic_version`` change, a DML step of its own;
3. applies the plan with the runner (one DDL per transaction, async indexes awaited,
   recreation for type changes, batched backfills, all resumable).

DSQL has no transactional DDL, so a failed revision is not rolled back: it is resumed.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import psycopg
import sqlalchemy as sa
from alembic.operations import ops
from alembic.runtime.migration import HeadMaintainer, MigrationContext, StampStep
from psycopg import sql

from ..catalog import Snapshot, snapshot
from ..errors import DsqlMigrateError, ExitCode
from ..plan import Plan, Step, StepKind, render
from ..planner import Options, PlanningError
from ..profiles import Profile
from ..runner import RetryPolicy, Runner, RunOptions, Session, StateStore, StepFailed
from ..runner.events import Event, Listener
from ..sql import quote_literal, quote_qualified
from .compile import Planned, RevisionRefused, expand, plan_revision
from .model import SchemaConflict, predicted_snapshot, reflect_live
from .record import ConnectionHook, NeedsConnection, Recorder
from .segments import Rehearsal, Segments, Unrehearsable, preview

log = logging.getLogger(__name__)

RUN = "run"
DRY_RUN = "dry-run"
SQL = "sql"


class PluginError(DsqlMigrateError):
    exit_code = ExitCode.USAGE


@dataclass
class DsqlSettings:
    """How revisions are compiled and run."""

    profile: Profile
    state_schema: str = "dsql_migrate"
    run_options: RunOptions = field(default_factory=lambda: RunOptions(allow_destructive=True))
    retry: RetryPolicy | None = None
    planner_options: Options = field(default_factory=Options)
    on_event: Listener | None = None
    mode: str = RUN
    output: TextIO | None = None  # where dry-run / sql output goes (default: stdout)
    #: recycle the runner's connections this often (DSQL ends them at 60 minutes)
    max_connection_seconds: float | None = None
    #: called with each revision's label and plan before the plan is shown (dry run) or run;
    #: ``complete`` is False for the plan of the ops before a connection use only; the last
    #: argument is the live snapshot a dry run started from (None when running: the plan's
    #: premise was read just now). It may raise to stop before the plan changes anything
    #: (``upgrade --expect-hash``).
    on_plan: Callable[[str, Plan, bool, Snapshot | None], None] | None = None


def _default_listener() -> Listener:
    from ..runner.progress import make_reporter

    return make_reporter("text", sys.stderr)


class _VersionSql(HeadMaintainer):
    """Alembic's head bookkeeping, producing the SQL of the version change instead of running it."""

    def __init__(self, context: MigrationContext, heads: Any) -> None:
        super().__init__(context, heads)
        self.statements: list[str] = []
        self.table = quote_qualified(context.version_table_schema, context.version_table)

    def _insert_version(self, version: str) -> None:
        self.heads.add(version)
        self.statements.append(
            f"INSERT INTO {self.table} (version_num) VALUES ({quote_literal(version)})")

    def _delete_version(self, version: str) -> None:
        self.heads.discard(version)
        self.statements.append(
            f"DELETE FROM {self.table} WHERE version_num = {quote_literal(version)}")

    def _update_version(self, from_: str, to_: str) -> None:
        self.heads.discard(from_)
        self.heads.add(to_)
        self.statements.append(f"UPDATE {self.table} SET version_num = {quote_literal(to_)} "
                               f"WHERE version_num = {quote_literal(from_)}")

    def sql_for(self, step: Any) -> list[str]:
        self.statements = []
        self.update_to_step(step)
        return list(self.statements)


def connection_factory(bind: sa.Connection) -> Callable[[], psycopg.Connection[Any]]:
    """New psycopg connections made the way ``bind``'s engine makes them (its creator, IAM
    tokens included), taken out of the pool: the runner owns and closes them."""
    engine = bind.engine

    def factory() -> psycopg.Connection[Any]:
        raw = engine.raw_connection()
        conn = raw.driver_connection
        if not isinstance(conn, psycopg.Connection):
            raw.close()
            raise PluginError(
                f"the dsql-migrate runner needs the psycopg (3) driver, not "
                f"{engine.dialect.driver}",
                hint="use a postgresql+psycopg:// or auroradsql+psycopg:// URL")
        raw.detach()
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()
        conn.autocommit = True
        return conn
    return factory


def run_migrations(mc: MigrationContext, settings: DsqlSettings, **kw: Any) -> None:
    """Alembic's ``MigrationContext.run_migrations``, each revision run as a Plan."""
    listener = settings.on_event or _default_listener()
    try:
        _run(mc, replace(settings, on_event=listener), **kw)
    finally:
        close = getattr(listener, "close", None)
        if callable(close) and settings.on_event is None:
            close()


def _run(mc: MigrationContext, settings: DsqlSettings, **kw: Any) -> None:
    offline = mc.as_sql or settings.mode != RUN
    if mc.as_sql:
        heads: tuple[str, ...] = mc.get_current_heads()
    else:
        heads = mc.get_current_heads()
        if not heads and settings.mode == RUN and not mc.opts.get("dont_mutate"):
            mc._ensure_version_table()
    versions = _VersionSql(mc, heads)
    assert mc._migrations_fn is not None
    base_md: sa.MetaData | None = None
    base_snapshot: Snapshot | None = None
    first_snapshot: Snapshot | None = None  # the live schema the dry run starts from
    for step in mc._migrations_fn(heads, mc):
        if mc.as_sql and not versions.heads:
            # from base the script must create the version table itself, as Alembic's does
            _emit(mc, settings, version_table_sql(mc))
        version_sql = versions.sql_for(step)
        if isinstance(step, StampStep):
            if settings.mode == RUN and not mc.as_sql:
                assert mc.connection is not None
                for statement in version_sql:
                    mc.connection.exec_driver_sql(statement)
            else:
                _emit(mc, settings, "\n".join(s + ";" for s in version_sql) + "\n")
        elif offline:
            if base_snapshot is None or base_md is None:
                base_snapshot, base_md = _offline_schema(mc)
                first_snapshot = base_snapshot
            mode = "upgrade --sql" if mc.as_sql else "upgrade --dry-run"
            recorder = Recorder(mc, offline=mode if mc.as_sql else None,
                                on_connection_use=None if mc.as_sql else _refuse_use(mode))
            needs: NeedsConnection | None = None
            try:
                recorder.run(step.migration_fn, **kw)
            except NeedsConnection as exc:
                needs = exc  # the plan of the ops before that line is shown, and why it stops
            planned = _compile(mc, step, settings, recorder.recorded, base_snapshot, base_md,
                               from_base=not heads, source={})
            plan = planned.plan if needs is not None else _with_version_step(
                planned.plan, mc, step, version_sql, _dry_run_nonce(mc, settings, step))
            base_md = planned.desired
            base_snapshot = predicted_snapshot(base_md, base_snapshot)
            if settings.on_plan is not None:
                settings.on_plan(_label(step), plan, needs is None, first_snapshot)
            _emit(mc, settings, _render_offline(step, plan, settings, needs))
        else:
            _run_online(mc, step, settings, version_sql, **kw)
        for callback in mc.on_version_apply_callbacks:
            callback(ctx=mc, step=step.info, heads=set(versions.heads), run_args=kw)


def version_table_sql(mc: MigrationContext) -> str:
    """``CREATE TABLE alembic_version``, a transaction of its own (DSQL: one DDL each)."""
    ddl = str(sa.schema.CreateTable(mc._version).compile(dialect=mc.dialect)).strip()
    return f"-- the version table\nBEGIN;\n{ddl};\nCOMMIT;\n"


def _label(step: Any) -> str:
    """``alembic upgrade a -> b``: names the revision's plan in the state tables (resume)."""
    direction = "upgrade" if step.is_upgrade else "downgrade"
    before = ", ".join(step.from_revisions) or "<base>"
    after = ", ".join(step.to_revisions) or "<base>"
    return f"alembic {direction} {before} -> {after}"


def _where(step: Any) -> str:
    module = getattr(getattr(step, "revision", None), "module", None)
    path = getattr(module, "__file__", None)
    name = "upgrade()" if step.is_upgrade else "downgrade()"
    return f"{Path(path).name if path else step.short_log} {name}"


def _run_online(mc: MigrationContext, step: Any, settings: DsqlSettings,
                version_sql: list[str], **kw: Any) -> None:
    assert mc.connection is not None and settings.on_event is not None
    label = _label(step)
    on_event = settings.on_event
    on_event(Event("revision.start", f"{label}: {step.doc or ''}".rstrip(": "),
                   data={"revision": label}))
    factory = connection_factory(mc.connection)
    session = Session(factory, retry=settings.retry,
                      max_connection_seconds=settings.max_connection_seconds)
    try:
        store = StateStore(settings.state_schema)
        plan = None if settings.run_options.abandon_previous else _stored_plan(
            session, store, label)
        if plan is not None:
            on_event(Event("revision.resume", f"resuming the stored plan of {label} ({plan.hash})",
                           data={"hash": plan.hash}))
        else:
            plan = _record_and_compile(mc, step, settings, session, store, factory,
                                       version_sql, **kw)
        if settings.on_plan is not None:
            settings.on_plan(label, plan, True, None)
        _apply(session, store, settings, step, plan, label)
    finally:
        session.close()


def _record_and_compile(mc: MigrationContext, step: Any, settings: DsqlSettings,
                        session: Session, store: StateStore,
                        factory: Callable[[], psycopg.Connection[Any]],
                        version_sql: list[str], **kw: Any) -> Plan:
    """Record the revision (running the parts before each connection use, :mod:`.segments`)
    and compile what follows the last one, with the ``alembic_version`` step."""
    assert mc.connection is not None and settings.on_event is not None
    label = _label(step)
    nonce = run_number(session.conn, store, label)
    _rehearse(mc, step, settings, factory, **kw)
    recorder = Recorder(mc)

    def compile_part(pending: list[ops.MigrateOperation], part: int, where: str) -> Plan:
        assert mc.connection is not None
        conn = factory()
        try:
            live = snapshot(conn)
        finally:
            conn.close()
        plan = _compile(mc, step, settings, pending, live, reflect_live(mc.connection),
                        source={"run": nonce, "part": part, "before": where}).plan
        return _marked(plan, {"alembic_part": f"run {nonce}, part {part}"})

    def apply(plan: Plan, part_label: str) -> None:
        if settings.on_plan is not None:
            settings.on_plan(label, plan, False, None)
        _apply(session, store, settings, step, plan, part_label)

    segments = Segments(label, nonce, recorder, store, factory, compile_part, apply,
                        settings.on_event,
                        abandon_previous=settings.run_options.abandon_previous)
    recorder.on_connection_use = segments.before_statement
    recorder.sql_in_order = True
    segments.load_done_writes()
    engine = mc.connection.engine
    segments.listen(engine)
    try:
        recorder.run(step.migration_fn, **kw)
    finally:
        segments.forget(engine)
    live = snapshot(session.conn)
    planned = _compile(mc, step, settings, recorder.pending(), live,
                       reflect_live(mc.connection), source={})
    return _with_version_step(planned.plan, mc, step, version_sql, nonce)


def _rehearse(mc: MigrationContext, step: Any, settings: DsqlSettings,
              factory: Callable[[], psycopg.Connection[Any]], **kw: Any) -> None:
    """Refuse, before anything of the revision runs, what DSQL cannot do anywhere in it, also
    past a connection use (:class:`.segments.Rehearsal`): the revision is recorded once with
    nothing run, and its ops and SQL are expanded (linted, checked against DSQL's rules).
    Planning against the live schema is left to the parts, which see it as it then is."""
    assert mc.connection is not None
    probe = Recorder(mc)
    probe.on_connection_use = lambda pending, where, statement: None
    rehearsal = Rehearsal(probe, factory)
    engine = mc.connection.engine
    rehearsal.listen(engine)
    try:
        probe.run(step.migration_fn, **kw)
    except RevisionRefused:
        raise
    except (DsqlMigrateError, Unrehearsable) as exc:
        # the revision's code needs what the rehearsal cannot give it (a read of a table it
        # creates first, a write's result): what was recorded up to there is still checked
        log.info("%s: rehearsal stopped at %s (%s)", _label(step),
                 rehearsal.stopped_at or "the revision's code", exc)
    finally:
        rehearsal.forget(engine)
        rehearsal.close()
    expand(probe.recorded, settings.profile, where=_where(step),
           batch_rows=settings.planner_options.batch_size(settings.profile))


def _marked(plan: Plan, details: dict[str, Any]) -> Plan:
    """``plan`` with ``details`` in every step: the hash covers steps, not the source, and a
    part of a later run (after a downgrade) must not be taken for the one already applied."""
    steps = tuple(replace(s, details={**s.details, **details}) for s in plan.steps)
    return Plan(profile=plan.profile, steps=steps, source=plan.source, warnings=plan.warnings)


def _apply(session: Session, store: StateStore, settings: DsqlSettings, step: Any, plan: Plan,
           label: str) -> None:
    assert settings.on_event is not None
    for warning in plan.warnings:
        settings.on_event(Event("revision.warning", f"warning: {warning}"))
    options = replace(settings.run_options, label=label)
    runner = Runner(session, store=store, options=options, on_event=settings.on_event)
    try:
        result = runner.apply(plan)
    except StepFailed as exc:
        command = "upgrade" if step.is_upgrade else "downgrade"
        exc.hint = (f"{label} stopped part-way; nothing is rolled back on DSQL. Run the "
                    f"{command} again to resume where it stopped ('dsql-migrate status' "
                    "shows the steps), or fix the cause and run it with --abandon-previous")
        raise
    if result.status != "nothing":
        _summarize(session, store, plan, label, settings.on_event)


def _summarize(session: Session, store: StateStore, plan: Plan, label: str,
               on_event: Listener) -> None:
    """One line per revision: what the batched steps moved (the progress lines are sampled)."""
    rows = session.transaction("read the steps", lambda c: store.get_steps(c, plan.hash))
    batched = [f"{r.summary}: {r.rows_done:,} rows in {r.batches_done} batches"
               for r in rows if r.kind in (StepKind.BACKFILL.value, StepKind.COPY.value)]
    jobs = sum(1 for r in rows if r.job_id)
    parts = [f"{len(rows)} steps"] + batched + ([f"{jobs} async job(s) waited for"] if jobs
                                                else [])
    on_event(Event("revision.done", f"{label} done: " + "; ".join(parts),
                   data={"revision": label}))


def run_number(conn: psycopg.Connection[Any], store: StateStore, label: str) -> str:
    """How many plans of this revision step the state tables hold: part of the plan's hash, so
    that an upgrade run again after a downgrade is a new plan (not "already done"), while a dry
    run shows the hash the upgrade will have."""
    if "plans" not in store.existing_tables(conn):
        return "0"
    row = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE label = %s").format(
        store.table("plans")), (label,)).fetchone()
    return str(row[0] if row else 0)


def _dry_run_nonce(mc: MigrationContext, settings: DsqlSettings, step: Any) -> str | None:
    if mc.as_sql or mc.connection is None or settings.mode != DRY_RUN:
        return None
    conn = connection_factory(mc.connection)()
    try:
        return run_number(conn, StateStore(settings.state_schema), _label(step))
    finally:
        conn.close()


def _stored_plan(session: Session, store: StateStore, label: str) -> Plan | None:
    conn = session.conn
    if "plans" not in store.existing_tables(conn):
        return None
    for row in store.unfinished_plans(conn):
        if row.label == label and row.status != "abandoned":
            return Plan.from_json(row.plan, where=f"stored plan of {label}")
    return None


def _offline_schema(mc: MigrationContext) -> tuple[Snapshot, sa.MetaData]:
    """The live schema for a dry run (read-only), or nothing at all for ``--sql`` offline."""
    if mc.connection is None or mc.as_sql:
        return Snapshot(schemas=(), tables={}, sequences=(), views=()), sa.MetaData()
    factory = connection_factory(mc.connection)
    conn = factory()
    try:
        live = snapshot(conn)
    finally:
        conn.close()
    return live, reflect_live(mc.connection)


def _refuse_use(mode: str) -> ConnectionHook:
    def hook(pending: list[ops.MigrateOperation], where: str, statement: str) -> None:
        raise NeedsConnection(where, f"runs `{preview(statement, 60)}` through the database "
                              "connection", mode)
    return hook


def _compile(mc: MigrationContext, step: Any, settings: DsqlSettings,
             recorded: list[ops.MigrateOperation], live: Snapshot, live_md: sa.MetaData, *,
             source: dict[str, Any], from_base: bool = True) -> Planned:
    """Plan recorded ops (a whole revision, or a part of it) against ``live``."""
    expanded = expand(recorded, settings.profile, where=_where(step),
                      batch_rows=settings.planner_options.batch_size(settings.profile))
    label = _label(step)
    try:
        return plan_revision(expanded, live, live_md, settings.profile,
                             settings.planner_options, source={"alembic": label, **source})
    except SchemaConflict as exc:
        exc.message = f"{_where(step)}: {exc.message}"
        raise
    except PlanningError as exc:
        if not mc.as_sql or from_base:
            raise
        start = ", ".join(step.from_revisions) or "<base>"
        raise PluginError(
            f"{_where(step)}: {exc.message}; upgrade --sql started at {start}, and offline "
            "mode has no live schema to plan against after base (only what the script's own "
            "revisions create)",
            hint="run 'dsql-migrate upgrade --dry-run' against the database to see the plan "
            "of the pending revisions, or --sql from base") from None


def _with_version_step(plan: Plan, mc: MigrationContext, step: Any, version_sql: list[str],
                       nonce: str | None) -> Plan:
    """The revision's last plan ends with the ``alembic_version`` change, a DML step."""
    label = _label(step)
    details: dict[str, Any] = {"alembic_version": True}
    if nonce is not None:
        details["run"] = nonce  # a re-run after a downgrade is a new plan, not "already done"
    version_step = Step(id=len(plan.steps) + 1, kind=StepKind.DML,
                        summary=f"record {label.removeprefix('alembic ')} in alembic_version",
                        sql=tuple(version_sql), table=mc.version_table, details=details)
    # replace(): keeps the plan's premise and promise (DESIGN.md §3.2a)
    return replace(plan, steps=(*plan.steps, version_step))


def _render_offline(step: Any, plan: Plan, settings: DsqlSettings,
                    needs: NeedsConnection | None = None) -> str:
    stop = "" if needs is None else (
        f"-- {_label(step)} needs a live connection: {needs.message}\n"
        f"-- what is shown is the plan of the ops before {needs.where} only; the revision's "
        "later ops and its alembic_version step are not shown\n")
    if settings.mode == DRY_RUN:
        return f"-- {_label(step)}\n{stop}{render(plan, 'text')}\n"
    return stop + sql_script(plan, _label(step))


def sql_script(plan: Plan, label: str) -> str:
    """The plan as an SQL script: one transaction per statement, async waits and batched loops
    marked (they need the runner: a script cannot loop over a keyset or wait for a job)."""
    out = [f"-- {label}  ({plan.hash})"]
    for s in plan.steps:
        out.append(f"\n-- step {s.id} [{s.kind.value}] {s.summary}")
        if s.kind.is_batched:
            assert s.batch is not None
            out.append(f"-- batched: repeat per page of {s.batch.size} rows of {s.batch.table} "
                       f"(key {', '.join(s.batch.key)}), one transaction each:")
            out.extend(f"--   {line}" for stmt in s.sql for line in stmt.splitlines())
            continue
        if s.kind == StepKind.VERIFY:
            out.extend(f"-- check: {stmt}" for stmt in s.sql)
            continue
        if s.kind == StepKind.DML:
            out.append("BEGIN;")
            out.extend(stmt + ";" for stmt in s.sql)
            out.append("COMMIT;")
            continue
        for stmt in s.sql:
            out.extend(["BEGIN;", stmt + ";", "COMMIT;"])
            if s.kind.is_async:
                out.append("-- wait: CALL sys.wait_for_job('<job_id returned above>'); "
                           "outside any transaction")
    return "\n".join(out) + "\n"


def _emit(mc: MigrationContext, settings: DsqlSettings, text: str) -> None:
    if mc.as_sql:
        mc.impl.static_output(text)
    else:
        (settings.output or sys.stdout).write(text)


__all__ = ["DRY_RUN", "RUN", "SQL", "DsqlSettings", "PluginError", "run_migrations",
           "sql_script"]
