"""Run one history on both sides, revision by revision, and classify every revision.

Side (a): stock Alembic on plain PostgreSQL, in a scratch database of the emulator's server
(reached with the raw URL). Side (b): the dsql-migrate plugin on the emulator (the DSQL-facing
URL), whose database is the emulator's ``postgres`` database. After each revision both schemas
are snapshotted and the revision is classified:

- ``same``: the plugin applied it and both schemas are equal (up to :mod:`realworld.allowed`);
- ``differs``: the plugin applied it and the schemas differ;
- ``refused-before-change``: the plugin raised one of its own errors and the plugin side's
  schema (and ``alembic_version``) is exactly as before the revision;
- ``failed``: anything else (another exception, or an error after something changed);
- ``stock-failed`` / ``not-run``: stock Alembic itself failed on this revision / stopped
  before it: the history cannot be compared from there (it needs a setup or a replacement).

Side (a) runs the whole history in one ``alembic upgrade heads`` with a snapshot after each
revision (see :mod:`realworld.stock_env`); side (b) then runs ``alembic upgrade <revision>``
through the plugin for each revision in the order side (a) applied them.

Side (a) runs on a plain PostgreSQL server of its own, the installation on this machine with
the most extensions (:mod:`realworld.stock_server`): a history may create extensions.

After any outcome but ``same`` the plugin side is *resynchronised*: its database is emptied and
gets a copy (``pg_dump``, schema and rows) of the *mirror*, a database on the emulator's server
where stock Alembic replays the history up to this revision (incrementally, from one resync to
the next), so that the next revision starts from exactly the schema stock Alembic has, and one
problem is reported once, not again for every later revision. Two caveats, both said in the
revisions' details: what DSQL cannot have at all (:data:`realworld.allowed.LEFT_OUT`:
extensions, indexes with a method, operator class or key order) is left out of the replay and
is an allowed difference from then on; and the replayed schema holds what only stock Alembic
makes (a ``SERIAL``'s sequence, say), which later revisions then run on.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory

from . import fetch, loader, project, snapshot
from .allowed import LEFT_OUT
from .compare import compare, differences
from .histories import History
from .resync import StatementFilter
from .setups import SETUPS

SAME = "same"
DIFFERS = "differs"
REFUSED = "refused-before-change"
FAILED = "failed"
STOCK_FAILED = "stock-failed"
NOT_RUN = "not-run"
CLASSES = (SAME, DIFFERS, REFUSED, FAILED, STOCK_FAILED, NOT_RUN)


@dataclass
class RevisionResult:
    revision: str
    file: str
    classification: str
    detail: str = ""
    allowed: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class HistoryResult:
    history: History
    revisions: list[RevisionResult] = field(default_factory=list)
    setup: str = ""
    stock_server: str = ""
    error: str = ""
    seconds: float = 0.0

    def count(self, classification: str) -> int:
        return sum(1 for r in self.revisions if r.classification == classification)

    @property
    def ok(self) -> bool:
        return not self.error and not any(
            self.count(c) for c in (DIFFERS, FAILED, STOCK_FAILED, NOT_RUN))


class RevisionTimeout(Exception):
    pass


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`RevisionTimeout` in the main thread after ``seconds`` (POSIX only)."""
    if (seconds <= 0 or not hasattr(signal, "SIGALRM")
            or threading.current_thread() is not threading.main_thread()
            or signal.getitimer(signal.ITIMER_REAL)[0] > 0):
        # no alarms here, or someone else's is pending (pytest-timeout): that one governs
        yield
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        raise RevisionTimeout(f"no result after {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _environment(history: History, workdir: Path) -> Iterator[None]:
    """The history's environment variables, set for the time of the run."""
    saved = {name: os.environ.get(name) for name, _ in history.env}
    for name, value in history.env:
        os.environ[name] = value.format(workdir=workdir)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def _refusal(exc: BaseException) -> BaseException | None:
    """The plugin's own refusal behind ``exc`` (under Alembic it arrives as a
    ``CommandError``), or None: an error of a step the runner had started (``StepFailed``,
    retries exhausted) or of the database is a failure, not a refusal."""
    from dsql_migrate.errors import DsqlMigrateError
    from dsql_migrate.runner.execute import StepFailed
    from dsql_migrate.runner.session import RetriesExhausted

    chain = list(_chain(exc))
    if any(isinstance(e, (StepFailed, RetriesExhausted, psycopg.Error)) for e in chain):
        return None
    if any(type(e).__module__.startswith("sqlalchemy.exc") for e in chain):
        return None
    return next((e for e in chain if isinstance(e, DsqlMigrateError)), None)


def _where(exc: BaseException, versions: Path) -> str:
    """``file.py:123`` of the innermost frame in a revision file, if any."""
    found = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).parent == versions:
            found = f"{Path(frame.filename).name}:{frame.lineno}"
    return found


def _error_text(exc: BaseException, versions: Path) -> str:
    message = " ".join(str(exc).split()) or "(no message)"
    where = _where(exc, versions)
    return f"{type(exc).__name__}: {message}" + (f" [at {where}]" if where else "")


@dataclass
class Sides:
    """The databases of one history run."""

    raw_url: str        # the emulator's server, directly (admin)
    dsql_url: str       # the emulator (DSQL rules)
    stock_db: str
    stock_server: str = ""  # side (a)'s server (see realworld.stock_server); "": raw_url's
    server_bin: str = ""    # the emulator server's programs (pg_dump, psql) for the resync

    @property
    def mirror_db(self) -> str:
        return self.stock_db + "_mirror"

    @property
    def mirror_url(self) -> str:
        """The mirror: stock Alembic's replay on the emulator's server (see the module
        docstring), which the plugin side is resynchronised from."""
        return _with_database(self.raw_url, self.mirror_db)

    @property
    def stock_admin_url(self) -> str:
        return self.stock_server or self.raw_url

    @property
    def stock_url(self) -> str:
        return _with_database(self.stock_admin_url, self.stock_db)

    @property
    def plugin_raw_url(self) -> str:
        """The plugin side's database, directly: for snapshots and resynchronising."""
        return _with_database(self.raw_url, urlsplit(self.dsql_url).path.lstrip("/")
                              or "postgres")

    def create_stock(self) -> None:
        with psycopg.connect(self.stock_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.stock_db}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.stock_db}"')

    def drop_stock(self) -> None:
        with psycopg.connect(self.stock_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.stock_db}" WITH (FORCE)')
        self.drop_mirror()

    def create_mirror(self) -> None:
        self.drop_mirror()
        with psycopg.connect(self.raw_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.mirror_db}"')

    def drop_mirror(self) -> None:
        with psycopg.connect(self.raw_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.mirror_db}" WITH (FORCE)')

    def copy_mirror(self) -> None:
        """The mirror's schema and rows into the (emptied) plugin side, with the emulator
        server's own ``pg_dump`` and ``psql`` (passwords in the environment, not the
        command line)."""
        source, target = urlsplit(self.mirror_url), urlsplit(self.plugin_raw_url)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(PGHOST=source.hostname or "", PGPORT=str(source.port or 5432),
                   PGUSER=unquote(source.username or ""),
                   PGPASSWORD=unquote(source.password or ""))
        binary = Path(self.server_bin) if self.server_bin else Path()
        dump = subprocess.run(
            [str(binary / "pg_dump"), "--no-owner", "--no-privileges", "-d", self.mirror_db],
            capture_output=True, env=env, check=False, timeout=600)
        if dump.returncode != 0:
            raise RuntimeError("pg_dump of the mirror failed: " + dump.stderr.decode()[-500:])
        restore = subprocess.run(
            [str(binary / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
             "-d", target.path.lstrip("/") or "postgres"],
            input=dump.stdout, capture_output=True, env=env, check=False, timeout=600)
        if restore.returncode != 0:
            raise RuntimeError("restoring the mirror failed: " + restore.stderr.decode()[-500:])

    def reset_plugin(self) -> None:
        """Empty the plugin side: every user schema (and the plugin's state) goes."""
        with psycopg.connect(self.plugin_raw_url, autocommit=True) as conn:
            schemas = [r[0] for r in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname NOT IN "
                "('pg_catalog', 'information_schema', 'pg_toast', 'sys') "
                "AND nspname NOT LIKE 'pg_temp%' AND nspname NOT LIKE 'pg_toast_temp%'")]
            for name in schemas:
                conn.execute(f'DROP SCHEMA "{name}" CASCADE')
            conn.execute("CREATE SCHEMA public")


class HistoryRun:
    """One history, both sides, revision by revision (see the module docstring)."""

    def __init__(self, history: History, sides: Sides, *, workdir: Path, cache: Path,
                 profile: str = "current", timeout: float = 300.0,
                 progress: Callable[[RevisionResult], None] | None = None) -> None:
        self.history = history
        self.sides = sides
        self.workdir = workdir
        self.cache = cache
        self.profile = profile
        self.timeout = timeout
        self.progress = progress
        self.versions = Path()
        self.log: TextIO = io.StringIO()
        self._scripts: dict[str, ScriptDirectory] = {}
        self.resynced = ""  # the last revision after which the plugin side was resynchronised
        #: objects the last resync left out ({key: LEFT_OUT rule name})
        self.left_out: dict[snapshot.Key, str] = {}
        #: objects of the last resync that only stock Alembic makes (SERIAL sequences, ...)
        self.stock_made: set[snapshot.Key] = set()
        #: what the mirror's replay left out so far, and whether the mirror has been built
        self.mirror_filter = StatementFilter()
        self.mirror_built = False

    def _config(self, name: str, url: str, *, plugin: bool) -> Config:
        cfg = project.make(self.workdir / name, self.versions, url, plugin=plugin,
                           profile=self.profile, driver=self.history.stock_driver)
        cfg.attributes["autocommit"] = self.history.autocommit
        return cfg

    def run(self) -> HistoryResult:
        result = HistoryResult(self.history)
        started = time.monotonic()
        try:
            site = fetch.site(self.history, self.cache)
            self.versions = fetch.versions_path(self.history, self.cache)
        except fetch.FetchError as exc:
            result.error = str(exc)
            return result
        log_file = self.cache / "logs" / f"{self.history.name}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            with log_file.open("w") as self.log, _environment(self.history, self.workdir), \
                    loader.importable(site, self.history.stubs):
                self._run(result)
        finally:
            result.seconds = time.monotonic() - started
        return result

    def _run(self, result: HistoryResult) -> None:
        stock = self._config("stock", self.sides.stock_url, plugin=False)
        plugin = self._config("plugin", self.sides.dsql_url, plugin=True)
        mirror = self._config("mirror", self.sides.mirror_url, plugin=False)
        try:
            files = self._files(stock)
        except Exception as exc:
            result.error = "cannot read the history: " + _error_text(exc, self.versions)
            return
        self.sides.create_stock()
        self.sides.reset_plugin()
        try:
            result.setup = self._setup()
            steps, stock_error = self._stock_run(stock)
            plugin_before = snapshot.of_url(self.sides.plugin_raw_url)
            for revision, stock_after in steps:
                outcome = self._revision(revision, files[revision], plugin, mirror,
                                         stock_after, plugin_before)
                result.revisions.append(outcome)
                if self.progress:
                    self.progress(outcome)
                plugin_before = snapshot.of_url(self.sides.plugin_raw_url)
            if stock_error is not None:
                self._stock_failed(result, files, {r for r, _ in steps}, stock_error)
        except Exception as exc:
            result.error = "harness error: " + _error_text(exc, self.versions)
        finally:
            self.sides.drop_stock()

    def _files(self, cfg: Config) -> dict[str, str]:
        """Every revision's file name, parents before children."""
        script = ScriptDirectory.from_config(cfg)
        revisions = list(script.walk_revisions("base", "heads"))
        revisions.reverse()
        return {r.revision: Path(r.path).name for r in revisions}

    def _stock_run(self, cfg: Config) -> tuple[list[tuple[str, snapshot.State]],
                                                BaseException | None]:
        """Side (a) in one ``upgrade heads``, with a snapshot after each revision."""
        steps: list[tuple[str, snapshot.State]] = []

        def after_revision(*, ctx: Any, step: Any, heads: set[str], run_args: Any) -> None:
            if step.is_stamp or not step.is_upgrade:
                return
            def query(sql: str) -> Any:
                return ctx.connection.exec_driver_sql(sql).fetchall()
            steps.append((step.up_revision_id, (snapshot.take(query),
                                                snapshot.versions(query))))

        cfg.attributes["on_version_apply"] = after_revision
        return steps, self._upgrade(cfg, "heads", timeout=self.timeout * 10)

    def _stock_failed(self, result: HistoryResult, files: dict[str, str], done: set[str],
                      error: BaseException) -> None:
        """The revision stock Alembic failed on, and every one it did not reach."""
        where = _where(error, self.versions).split(":")[0]
        failing = next((r for r, f in files.items() if f == where and r not in done), None)
        for revision, file in files.items():
            if revision in done:
                continue
            if revision == failing or (failing is None and not result.count(STOCK_FAILED)):
                result.revisions.append(RevisionResult(
                    revision, file, STOCK_FAILED,
                    "stock Alembic on PostgreSQL failed: " + _error_text(error, self.versions)))
            else:
                result.revisions.append(RevisionResult(
                    revision, file, NOT_RUN, "stock Alembic stopped before it"))

    def _setup(self) -> str:
        if not self.history.setup:
            return ""
        build = SETUPS[self.history.setup]
        line = build(project.sqlalchemy_url(self.sides.stock_url))
        build(project.sqlalchemy_url(self.sides.plugin_raw_url))
        return line

    def _upgrade(self, cfg: Config, revision: str,
                 timeout: float | None = None) -> BaseException | None:
        try:
            # the plugin's progress lines go to the history's log, not to the table
            with _deadline(self.timeout if timeout is None else timeout), \
                    contextlib.redirect_stderr(self.log):
                self._alembic_upgrade(cfg, revision)
        except (Exception, SystemExit) as exc:
            return exc
        return None

    def _revision(self, revision: str, file: str, plugin: Config, mirror: Config,
                  stock_after: snapshot.State, plugin_before: snapshot.State,
                  ) -> RevisionResult:
        started = time.monotonic()
        outcome = RevisionResult(revision, file, SAME)
        plugin_error = self._upgrade(plugin, revision)
        plugin_after = snapshot.of_url(self.sides.plugin_raw_url)
        if plugin_error is not None:
            self._classify_error(outcome, plugin_error, plugin_before, plugin_after)
        else:
            self._classify_applied(outcome, stock_after, plugin_after)
        self._resync_caveat(outcome, plugin_after[0])
        if outcome.classification != SAME:
            outcome.detail += self._resync(mirror, stock_after)
            self.resynced = revision
        outcome.seconds = time.monotonic() - started
        return outcome

    def _resync_caveat(self, outcome: RevisionResult, plugin: snapshot.Snapshot) -> None:
        """After a resync, a revision runs on objects the plugin would not have made: say so
        while any of them is still there."""
        if not self.resynced:
            return
        held = sorted(k for k in self.stock_made if k in plugin)
        if held:
            names = ", ".join(snapshot.describe(k) for k in held[:3])
            more = f" and {len(held) - 3} more" if len(held) > 3 else ""
            note = (f"[runs on the schema resynchronised from stock after {self.resynced}, "
                    f"which holds {len(held)} object(s) only stock Alembic makes: "
                    f"{names}{more}]")
        elif outcome.classification != SAME:
            note = f"[the plugin side was resynchronised from stock after {self.resynced}]"
        else:
            return
        outcome.detail = f"{outcome.detail} {note}".strip()

    def _classify_error(self, outcome: RevisionResult, error: BaseException,
                        before: snapshot.State, after: snapshot.State) -> None:
        text = _error_text(error, self.versions)
        changed = differences(before[0], after[0])
        ours = _refusal(error)
        if ours is not None and not changed and before[1] == after[1]:
            if "dsql" in str(ours).lower():
                outcome.classification = REFUSED
                outcome.detail = text
                return
            text += (" -- refused before any change, but names no DSQL rule: a gap, "
                     "not a limit")
        outcome.classification = FAILED
        if changed:
            text += f" -- and the plugin side changed ({len(changed)}: {changed[0]})"
        elif before[1] != after[1]:
            text += " -- and alembic_version changed"
        outcome.detail = text

    def _classify_applied(self, outcome: RevisionResult, stock: snapshot.State,
                          plugin: snapshot.State) -> None:
        result = compare(stock[0], plugin[0], self.left_out)
        outcome.allowed = sorted({name for _, name in result.allowed})
        problems = [str(d) for d in result.differences]
        if stock[1] != plugin[1]:
            problems.append(f"alembic_version: stock {sorted(stock[1])} / "
                            f"plugin {sorted(plugin[1])}")
        if problems:
            outcome.classification = DIFFERS
            outcome.detail = f"{len(problems)} difference(s): " + "; ".join(problems)

    def _alembic_upgrade(self, cfg: Config, revision: str) -> None:
        """``alembic upgrade <revision>`` as ``alembic.command.upgrade`` runs it, with one
        ``ScriptDirectory`` per project for the whole history: Alembic would otherwise load
        every revision file again for every revision (quadratic in a 120-revision history)."""
        key = str(cfg.config_file_name)
        script = self._scripts.get(key)
        if script is None:
            script = self._scripts[key] = ScriptDirectory.from_config(cfg)

        def upgrade(rev: Any, context: Any) -> Any:
            return script._upgrade_revs(revision, rev)

        with EnvironmentContext(cfg, script, fn=upgrade, as_sql=False, starting_rev=None,
                                destination_rev=revision, tag=None):
            script.run_env()

    def _advance_mirror(self, mirror: Config, heads: frozenset[str]) -> None:
        """The mirror up to ``heads``: onwards from where it is, or built again from the
        base when that fails (a history may depend on running in one ``upgrade``, as optuna's
        does on SQLAlchemy remembering the enum types it created)."""
        if self.mirror_built:
            try:
                self._upgrade_mirror(mirror, heads)
                return
            except Exception as exc:
                self.log.write("the mirror is built again: "
                               f"{_error_text(exc, self.versions)}\n")
        self.sides.create_mirror()
        self.mirror_filter = StatementFilter()
        mirror.attributes["statement_filter"] = self.mirror_filter
        if self.history.setup:
            SETUPS[self.history.setup](project.sqlalchemy_url(self.sides.mirror_url))
        self._upgrade_mirror(mirror, heads)
        self.mirror_built = True

    def _upgrade_mirror(self, mirror: Config, heads: frozenset[str]) -> None:
        for head in sorted(heads):
            with contextlib.redirect_stderr(self.log):
                self._alembic_upgrade(mirror, head)

    def _resync(self, mirror: Config, stock: snapshot.State) -> str:
        """Make the plugin side equal to the stock side (see the module docstring), leaving
        out what DSQL cannot have; returns what the revision's detail must say about it."""
        self._advance_mirror(mirror, stock[1])
        statements = self.mirror_filter  # the replay's statements it left out, so far
        self.sides.reset_plugin()
        self.sides.copy_mirror()
        replayed = snapshot.of_url(self.sides.plugin_raw_url)
        self.left_out, unexplained = {}, []
        for diff in differences(stock[0], replayed[0]):
            rule = next((r for r in LEFT_OUT
                         if diff.plugin is None and r.object(diff.key, diff.stock)), None)
            if rule is None:
                unexplained.append(str(diff))
            else:
                self.left_out[diff.key] = rule.name
        self.stock_made = {k for k, v in replayed[0].items() if snapshot.stock_made(k, v)}
        note = left_out_note(self.left_out, len(statements.left_out))
        if unexplained or replayed[1] != stock[1]:
            note += (f" [the resync left {len(unexplained)} unexplained difference(s): "
                     + "; ".join(unexplained[:3]) + "]")
        return note


def left_out_note(left_out: dict[snapshot.Key, str], statements: int) -> str:
    """What a revision's detail says about the objects its resync left out, by rule: the
    objects themselves, whether a statement of the replay made them or the replay's own
    fallback did not (airflow's DO block creates ``pgcrypto`` only where it can)."""
    if not left_out:
        return ""
    by_rule: dict[str, list[str]] = {}
    for key, rule in sorted(left_out.items()):
        by_rule.setdefault(rule, []).append(snapshot.describe(key))
    listed = "; ".join(f"{rule}: {', '.join(names)}" for rule, names in by_rule.items())
    return (f" [left out of the resync, DSQL cannot have them ({statements} statement(s) of "
            f"the replay skipped): {listed}]")


@dataclass(frozen=True)
class Target:
    """Where both sides run: the emulator (raw and DSQL URLs) and side (a)'s server."""

    raw_url: str
    dsql_url: str
    stock_url: str = ""      # side (a)'s server's superuser URL; "": the emulator's server
    stock_server: str = ""   # which installation that is, for the report
    server_bin: str = ""     # the emulator server's programs (pg_dump, psql)


@contextlib.contextmanager
def local_target(directory: Path | None, profile: str) -> Iterator[Target]:
    """A local target the harness starts and stops itself, with side (a)'s server."""
    from dsql_migrate.local import LocalInstance

    from .stock_server import stock_server

    with contextlib.ExitStack() as stack:
        if directory is None:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(
                prefix="dsql-migrate-realworld-")))
        instance = LocalInstance(directory / "target", profile=profile)
        url = instance.start()
        stack.callback(instance.destroy)
        stock_url, line = stack.enter_context(stock_server(directory / "stock"))
        yield Target(instance.raw_url(), url, stock_url, line,
                     instance.postgres.status().bin_dir or "")


def run_histories(histories: list[History], *, target: Target, cache: Path,
                  profile: str = "current", timeout: float = 300.0,
                  progress: Callable[[History, RevisionResult], None] | None = None,
                  ) -> list[HistoryResult]:
    """Run each history against the given target (see :func:`local_target`)."""
    results = []
    for history in histories:
        sides = Sides(target.raw_url, target.dsql_url,
                      f"realworld_stock_{uuid.uuid4().hex[:8]}", target.stock_url,
                      target.server_bin)
        with tempfile.TemporaryDirectory(prefix=f"realworld-{history.name}-") as tmp:
            def report(outcome: RevisionResult, history: History = history) -> None:
                if progress:
                    progress(history, outcome)
            run = HistoryRun(history, sides, workdir=Path(tmp), cache=cache, profile=profile,
                             timeout=timeout, progress=report)
            result = run.run()
            result.stock_server = target.stock_server or "the emulator's server"
            results.append(result)
    return results


