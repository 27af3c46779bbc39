"""What the MCP tools do, without the MCP SDK: plain methods returning JSON-ready data.

Every tool goes through the library the CLI commands use (the lint engine, the catalog
snapshot, the differ and planner, the runner's API, :mod:`dsql_migrate.explain`); nothing is
shelled out. The safety rules an agent relies on live here:

- ``readonly_query`` runs in a ``READ ONLY`` transaction that is rolled back, with a row cap;
- ``apply`` runs only a plan this server issued (by hash, from ``plan``), and a plan with
  destructive steps only with ``approve_destructive``; it runs in the background and
  ``status`` reports its progress;
- writes outside a plan (``transact``) exist only when the server was started with
  ``--allow-writes``, one DDL statement per transaction as DSQL requires.
"""

from __future__ import annotations

import importlib
import itertools
import json
import sys
import tempfile
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

import psycopg

from ..config import Config
from ..connect import Connector, Target, conninfo_for, redact_url
from ..errors import ConfigError, DsqlMigrateError, ExitCode
from ..lint import LintSettings, fix_script, lint_script
from ..plan import Plan
from ..profiles import Profile
from ..query import to_jsonable

DEFAULT_MAX_ROWS = 1000
EVENTS_KEPT = 200


class Refused(DsqlMigrateError):
    """A tool call the server's safety rules refuse (nothing was changed)."""

    exit_code = ExitCode.REFUSED


@dataclass
class ServiceSettings:
    allow_writes: bool = False
    max_rows: int = DEFAULT_MAX_ROWS
    scratch_url: str | None = None  # where a desired .sql schema is loaded (default: local)
    local_dir: Path | None = None
    state_schema: str | None = None


@dataclass
class Job:
    """An apply running (or run) in the background."""

    issued_hash: str
    plan: Plan
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    state: str = "running"  # running | done | failed
    events: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    result: dict[str, Any] | None = None
    finished: threading.Event = field(default_factory=threading.Event)

    def as_dict(self) -> dict[str, Any]:
        steps = len(self.plan.steps)
        done = {e["step"] for e in self.events if e.get("event") in ("step.done", "step.skip")
                and e.get("step") is not None}
        return {"hash": self.plan.hash, "issued_hash": self.issued_hash, "state": self.state,
                "started": self.started.isoformat(timespec="seconds"),
                "steps_total": steps, "steps_finished": len(done),
                "error": self.error, "result": self.result,
                "events": self.events[-20:]}


class Service:
    """One per server process: the target, the plans it issued, the apply jobs."""

    def __init__(self, config: Config, target: Target, profile: Profile,
                 settings: ServiceSettings | None = None,
                 on_start: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.target = target
        self.profile = profile
        self.settings = settings or ServiceSettings()
        self.connector = Connector(target, on_start=on_start)
        self.lint_settings = LintSettings.build(profile, config.section("lint"))
        self._on_start = on_start
        self._plans: dict[str, Plan] = {}
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    # -- lint -----------------------------------------------------------------------------

    def lint(self, sql: str, fix: bool = False) -> dict[str, Any]:
        from ..lint.report import format_json

        result = (fix_script if fix else lint_script)(sql, self.lint_settings, "<sql>")
        report: dict[str, Any] = json.loads(
            format_json([result], fixing=fix, profile=self.profile.name))
        file = report["files"][0]
        return {"profile": self.profile.name, "diagnostics": file["diagnostics"],
                "fixed_sql": file["fixed_sql"], "summary": report["summary"],
                "exit_code": report["exit_code"]}

    # -- schema and queries ---------------------------------------------------------------

    def get_schema(self, table: str | None = None) -> dict[str, Any]:
        from ..catalog import snapshot, table_as_dict

        with self.connector.connect(autocommit=True) as conn:
            snap = snapshot(conn)
        if table is None:
            return snap.as_dict()
        found = snap.table(table)
        if found is None:
            raise ConfigError(f"no table {table!r} in the live schema",
                              hint=f"tables: {', '.join(sorted(snap.tables)) or '(none)'}")
        return table_as_dict(found)

    def readonly_query(self, sql: str, max_rows: int | None = None) -> dict[str, Any]:
        """Run one statement in a READ ONLY transaction that is rolled back."""
        if max_rows is not None and max_rows < 1:
            raise ConfigError(f"max_rows must be at least 1, not {max_rows}",
                              hint=f"omit it for the server's cap ({self.settings.max_rows})")
        _one_statement(sql)
        cap = min(max_rows or self.settings.max_rows, self.settings.max_rows)
        with self.connector.connect() as conn:
            conn.read_only = True
            try:
                with conn.transaction(force_rollback=True):
                    cursor = conn.cursor()
                    # streamed row by row and cut at the cap: the cap bounds memory too (a
                    # plain execute reads the whole result before any row is taken)
                    stream = cast(Generator[Any, None, None],  # a generator: it has close()
                                  cursor.stream(sql.encode()))  # bytes: no placeholders
                    try:
                        rows = list(itertools.islice(stream, cap + 1))
                    except psycopg.ProgrammingError as exc:
                        if exc.sqlstate is not None:  # the server's error
                            raise
                        # psycopg's own: the statement ran but returns no rows (SET, ...)
                        return {"columns": [], "rows": [], "status": _command(sql)}
                    stream.close()  # cancels the rest of the query
                    columns = ([c.name for c in cursor.description] if cursor.description
                               else _columns_of(conn, sql))  # no row: the stream kept none
            except psycopg.errors.ReadOnlySqlTransaction:
                raise Refused(
                    "the statement writes, and readonly_query runs in a READ ONLY transaction: "
                    "nothing was changed",
                    hint="change the schema with plan + apply (DSQL-safe, by hash); ad-hoc "
                    "writes need a server started with --allow-writes (the transact tool)"
                ) from None
            except psycopg.DatabaseError as exc:
                raise DsqlMigrateError(f"the query failed: {_describe(exc)}") from None
        return {"columns": columns, "rows": [[to_jsonable(v) for v in r] for r in rows[:cap]],
                "row_count": min(len(rows), cap), "truncated": len(rows) > cap,
                "max_rows": cap}

    def transact(self, statements: list[str]) -> dict[str, Any]:
        """Run ``statements`` in one read-write transaction (only with ``--allow-writes``):
        at most one DDL statement, never DDL and DML together (DSQL's transaction rules)."""
        if not self.settings.allow_writes:
            raise Refused("writes outside a plan are off on this server",
                          hint="use plan + apply, or start the server with --allow-writes")
        from ..query import run_statements
        from ..sql import parse_script
        from ..sql.classify import StatementKind

        if not statements:
            raise ConfigError("transact needs at least one statement")
        kinds = [p.kind for s in statements for p in parse_script(s)]
        ddl = sum(k is StatementKind.DDL for k in kinds)
        if ddl > 1 or (ddl and any(k is StatementKind.DML for k in kinds)):
            raise Refused(
                "DSQL allows one DDL statement per transaction and never DDL with DML in the "
                f"same transaction; this call has {ddl} DDL statement(s)",
                hint="call transact once per DDL statement (or let plan + apply do it)")
        with self.connector.connect() as conn:
            results = run_statements(conn, statements, write=True)
        return {"results": [r.as_dict() for r in results]}

    # -- plans ----------------------------------------------------------------------------

    def plan(self, target: str | None = None, desired_sql: str | None = None,
             renames: list[str] | None = None) -> dict[str, Any]:
        """Diff the desired schema (a model ``module:attr``, a ``.sql`` path, or the SQL
        text itself) with the live one; keep the plan under its hash for ``apply``."""
        from ..diff import Renames, diff_live, load_target
        from ..plan import render
        from ..planner import Options
        from ..planner import plan as make_plan

        if (target is None) == (desired_sql is None):
            raise ConfigError("give either target (package.module:attr or a .sql file) or "
                              "desired_sql (the CREATE statements of the desired schema)")
        rename_specs = Renames.parse(renames or [])
        # reach the target first: the differ's own connection error is SQLAlchemy's, without
        # the one-line message and hint (and it would come after loading the desired schema)
        self.connector.connect(autocommit=True).close()
        with tempfile.TemporaryDirectory(prefix="dsqlm-mcp-") as tmp:
            spec = target or str(Path(tmp) / "desired.sql")
            if desired_sql is not None:
                Path(spec).write_text(desired_sql, encoding="utf-8")
            elif spec.endswith(".sql") and not Path(spec).is_file():
                raise ConfigError(f"{spec}: no such file")
            scratch = self._scratch_server() if spec.endswith(".sql") else None
            if scratch is None:
                _forget_model(spec)
            try:
                desired = load_target(spec, scratch_server=scratch)
            except DsqlMigrateError as exc:
                if desired_sql is not None:  # name what the agent sent, not the temp file
                    exc.message = exc.message.replace(spec, "desired_sql")
                raise
        conninfo = conninfo_for(self.target, on_start=self._on_start)
        result, live = diff_live(conninfo, desired, renames=rename_specs)
        warnings = list(result.warnings)
        if not desired.metadata.tables:
            warnings.insert(0, "the desired schema defines no tables: every table of the live "
                            "schema is dropped (destructive steps)")
        planned = make_plan(result.ops, live, result.desired, self.profile, Options(),
                            source={"target": target or "desired_sql",
                                    "url": redact_url(self.target.display)},
                            warnings=warnings)
        with self._lock:
            self._plans[planned.hash] = planned
        return {"hash": planned.hash, "steps": len(planned.steps),
                "destructive_steps": [s.id for s in planned.steps if s.destructive],
                "warnings": warnings, "review_markdown": render(planned, "markdown"),
                "plan": planned.as_dict()}

    def _scratch_server(self) -> str:
        if self.settings.scratch_url:
            return self.settings.scratch_url
        from ..local import DEFAULT_DIR, LocalInstance

        instance = LocalInstance(self.settings.local_dir or DEFAULT_DIR)
        if not instance.status().running and self._on_start is not None:
            self._on_start("starting the local emulator to load the desired schema")
        instance.start()
        return instance.raw_url()

    def apply(self, plan_hash: str, approve_destructive: bool = False) -> dict[str, Any]:
        """Start applying a plan this server issued; ``status`` follows it."""
        with self._lock:
            plan = self._plans.get(plan_hash.strip())
            if plan is None:
                raise Refused(
                    f"unknown plan hash {plan_hash!r}: apply runs only a plan this server "
                    "issued with the plan tool",
                    hint="call plan first and pass the hash it returned"
                    + (f" (issued: {', '.join(self._plans)})" if self._plans else ""))
            running = [j for j in self._jobs.values() if j.state == "running"]
            if running:
                raise Refused(f"plan {running[0].plan.hash} is still being applied",
                              hint="wait for it with the status tool")
            destructive = [s for s in plan.steps if s.destructive]
            if destructive and not approve_destructive:
                listed = "; ".join(f"step {s.id}: {s.summary}" for s in destructive)
                raise Refused(
                    f"the plan has {len(destructive)} destructive step(s) ({listed}): "
                    "nothing was run",
                    hint="show the user the review; call apply again with "
                    "approve_destructive=true only after they approved these steps")
            if not plan.steps:
                return {"hash": plan.hash, "state": "done",
                        "message": "nothing to apply: the live schema matches"}
            to_run = plan.approved() if destructive else plan
            job = Job(plan_hash, to_run)
            self._jobs[to_run.hash] = job
        thread = threading.Thread(target=self._run, args=(job, bool(destructive)),
                                  name=f"apply-{to_run.hash[:15]}", daemon=True)
        thread.start()
        return {"hash": to_run.hash, "issued_hash": plan_hash, "state": "running",
                "steps": len(to_run.steps),
                "message": "applying in the background: call status to follow it"}

    def _run(self, job: Job, allow_destructive: bool) -> None:
        from ..runner import RetryPolicy, RunOptions
        from ..runner.api import apply_plan, state_schema
        from ..runner.events import Event

        def record(event: Event) -> None:
            with self._lock:
                job.events.append(event.as_dict())
                del job.events[:-EVENTS_KEPT]

        section = self.config.section("runner")
        try:
            options = RunOptions.from_config(section, limits=self.profile.limits,
                                             allow_destructive=allow_destructive,
                                             label=f"mcp apply {job.issued_hash[:19]}")
            retry = section.get("retry", {})
            result = apply_plan(
                job.plan, lambda: self.connector.connect(autocommit=True), options=options,
                schema=state_schema(section, self.settings.state_schema),
                retry=RetryPolicy.from_config(retry if isinstance(retry, dict) else {}),
                max_connection_seconds=self.connector.max_connection_seconds,
                on_event=record)
            with self._lock:
                job.result = {"status": result.status, "steps_run": list(result.steps_run),
                              "steps_skipped": list(result.steps_skipped)}
                job.state = "done"
        except DsqlMigrateError as exc:
            with self._lock:
                job.error = exc.message + (f" (hint: {exc.hint})" if exc.hint else "")
                job.state = "failed"
        except Exception as exc:  # reported through status; the server keeps serving
            with self._lock:
                job.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
                job.state = "failed"
        finally:
            job.finished.set()

    def status(self, plan_hash: str | None = None, wait_seconds: float = 0.0) -> dict[str, Any]:
        """The apply job (``plan_hash``, else the latest) and the runner's state tables."""
        from ..runner.api import read_status, state_schema

        with self._lock:
            job = self._find_job(plan_hash)
        if job is not None and wait_seconds > 0:
            job.finished.wait(min(wait_seconds, 300.0))
        schema = state_schema(self.config.section("runner"), self.settings.state_schema)
        runner = read_status(lambda: self.connector.connect(autocommit=True), schema=schema)
        with self._lock:
            return {"job": None if job is None else job.as_dict(),
                    "issued_plans": list(self._plans),
                    "runner": json.loads(json.dumps(runner, default=str))}

    def progress(self, plan_hash: str | None = None) -> tuple[int, int, str, str] | None:
        """(steps finished, steps in all, the last event's message, state) of an apply, or
        None when nothing was applied: cheap (no database), for progress notifications."""
        with self._lock:
            job = self._find_job(plan_hash)
            if job is None:
                return None
            info = job.as_dict()
            message = job.events[-1]["message"] if job.events else job.state
            return info["steps_finished"], info["steps_total"], message, job.state

    def _find_job(self, plan_hash: str | None) -> Job | None:
        if plan_hash is None:
            return next(reversed(self._jobs.values()), None)
        found = self._jobs.get(plan_hash) or next(
            (j for j in self._jobs.values() if j.issued_hash == plan_hash), None)
        if found is None:
            raise ConfigError(f"no apply of plan {plan_hash!r} on this server",
                              hint="status without a hash shows the latest apply")
        return found

    # -- explain --------------------------------------------------------------------------

    def explain(self, sql: str, fmt: str = "markdown") -> dict[str, Any]:
        from ..explain import explain, explainable, plan_format_for

        explainable(sql)  # refusals before connecting
        with self.connector.connect() as conn:
            report = explain(conn, sql, self.lint_settings,
                             plan_format=plan_format_for(self.target.kind))
        if fmt == "json":
            return report.as_json()
        return {"report_markdown": report.markdown(), "explained_sql": report.statement.select,
                "rewritten": report.statement.rewritten}


def _one_statement(sql: str) -> None:
    """Exactly one statement, and not transaction control: sent as one simple query,
    ``SELECT 1; COMMIT; DELETE ...`` would end the READ ONLY transaction and run the DELETE
    in a read-write one."""
    from ..sql import parse_script
    from ..sql.classify import StatementKind

    statements = parse_script(sql)
    if len(statements) != 1:
        raise Refused(f"readonly_query takes exactly one statement, not {len(statements)}: "
                      "nothing was run", hint="send each query in its own call")
    failure = statements[0].error
    if failure is not None:  # an unparsed text could hide a second statement
        raise Refused(f"the statement does not parse: {failure.message}; nothing was run",
                      hint="readonly_query takes one PostgreSQL statement")
    if statements[0].kind is StatementKind.TRANSACTION:
        raise Refused("readonly_query runs its statement in its own READ ONLY transaction: "
                      "transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, ...) is "
                      "refused; nothing was run")


def _forget_model(spec: str) -> None:
    """Drop the model's package from the import cache: the server lives across the agent's
    edits, and a cached import would plan against the model as it was at the first plan."""
    top = spec.partition(":")[0].split(".", 1)[0]
    if not top or top == "dsql_migrate":
        return
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        del sys.modules[name]
    importlib.invalidate_caches()


def _columns_of(conn: psycopg.Connection[Any], sql: str) -> list[str]:
    """The result columns of ``sql``, described (not run) as the unnamed statement."""
    pgconn = conn.pgconn
    pgconn.prepare(b"", sql.encode())
    described = pgconn.describe_prepared(b"")
    return [(described.fname(i) or b"").decode(conn.info.encoding)
            for i in range(described.nfields)]


def _command(sql: str) -> str:
    """The command tag of a statement without rows (a stream does not keep it): its verb."""
    words = sql.split(None, 2)
    return words[0].upper() if words else ""


def _describe(exc: psycopg.Error) -> str:
    diag = exc.diag
    message = diag.message_primary or str(exc).strip().splitlines()[0]
    return f"{message} (SQLSTATE {diag.sqlstate})" if diag.sqlstate else message
