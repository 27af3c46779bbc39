"""Versioned migrations with Alembic revisions: ``init``, ``revision``, ``upgrade``, ``downgrade``,
``history``, ``current``, ``stamp``, ``check``.

Each command runs Alembic's own command with the project's ``alembic.ini``; the project's env.py
(scaffolded by ``init``) runs revisions through dsql-migrate's planner and runner.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import click
from alembic import command
from alembic.config import Config as AlembicConfig

from ..alembic import project
from ..alembic.context import ATTRIBUTE
from ..alembic.project import require_plugin, run_command
from ..alembic.runtime import DRY_RUN
from ..catalog import Snapshot
from ..errors import ConfigError
from ..local import DEFAULT_DIR
from ..pinning import Pin, completed_hashes, pins, run_digest, upgrade_hash
from ..plan import Plan, PlanHashMismatch
from ..runner.progress import make_reporter
from ._common import AppContext, ini_target_url, note

TEMPLATE = Path(__file__).resolve().parent.parent / "migrations_template"


# -- scaffolding ---------------------------------------------------------------------------------


def scaffold(project: Path, script_dir: str = "migrations", *, ini: Path | None = None) -> Path:
    """Copy the template: ``project/<script_dir>/`` and ``alembic.ini`` (in ``project``)."""
    target = project / script_dir
    if target.exists() and any(target.iterdir()):
        raise ConfigError(f"{target} already exists and is not empty",
                          hint="choose another directory")
    ini = ini or project / "alembic.ini"
    if ini.exists():
        raise ConfigError(f"{ini} already exists", hint="remove it, or init in another project")
    (target / "versions").mkdir(parents=True, exist_ok=True)
    for name in ("env.py", "script.py.mako", "README"):
        (target / name).write_text((TEMPLATE / name).read_text(encoding="utf-8"),
                                   encoding="utf-8")
    text = Template((TEMPLATE / "alembic.ini.tmpl").read_text(encoding="utf-8"))
    rel = Path(*[".."] * 0, target.relative_to(ini.parent)) if target.is_relative_to(
        ini.parent) else target
    ini.write_text(text.safe_substitute(script_dir=rel.as_posix()), encoding="utf-8")
    return ini


# -- running Alembic -----------------------------------------------------------------------------


def alembic_config(app: AppContext, ini: Path, **kw: Any) -> AlembicConfig:
    """:func:`dsql_migrate.alembic.project.alembic_config` with the invocation's configuration;
    the target's start-up lines go to stderr."""
    return project.alembic_config(app.config, ini, on_note=note, **kw)


def upgrade_with_progress(app: AppContext, ini: Path, revision: str, *, url: str | None,
                          local_dir: Path, profile: str | None,
                          abandon_previous: bool = False, downgrade: bool = False,
                          log_format: str = "text",
                          on_plan: Callable[[str, Plan, bool, Snapshot | None], None]
                          | None = None) -> None:
    reporter = make_reporter(log_format, sys.stderr)
    try:
        cfg = alembic_config(app, ini, url=url, local_dir=local_dir, profile=profile,
                             reporter=reporter, abandon_previous=abandon_previous)
        cfg.attributes[ATTRIBUTE].on_plan = on_plan
        require_plugin(cfg)
        run_command(command.downgrade if downgrade else command.upgrade, cfg, revision)
    finally:
        reporter.close()


# -- the upgrade hash (upgrade --dry-run / --expect-hash) ----------------------------------------


@dataclass
class DryRun:
    """What ``upgrade --dry-run`` compiled: the shown text and each pending revision's plan."""

    text: str = ""
    plans: list[tuple[str, Plan]] = field(default_factory=list)
    #: labels of revisions whose plan covers only the ops before a use of the connection
    partial: list[str] = field(default_factory=list)
    live: Snapshot | None = None  # the schema the dry run started from
    state_schema: str | None = None  # where the runner keeps its state for this project

    def keep(self, label: str, plan: Plan, complete: bool, live: Snapshot | None) -> None:
        self.plans.append((label, plan))
        self.live = self.live or live
        if not complete:
            self.partial.append(label)

    @property
    def pins(self) -> list[Pin]:
        if self.live is None:
            return []  # nothing pending
        return pins(self.plans, self.live)

    @property
    def hash(self) -> str | None:
        """The upgrade hash, or None when a plan is known only when its revision runs."""
        return None if self.partial else upgrade_hash(self.pins)

    def hash_line(self) -> str:
        if self.hash is not None:
            return f"upgrade hash: {self.hash}"
        return (f"upgrade hash: none ({self.partial[0]} uses the database connection while it "
                "runs: its plan is known only then)")


def dry_run_plans(app: AppContext, ini: Path, revision: str, *, url: str | None,
                  local_dir: Path, profile: str | None) -> DryRun:
    """Compile the pending revisions up to ``revision`` as ``upgrade --dry-run`` does: the
    live schema read, nothing written."""
    found = DryRun()
    out = io.StringIO()
    cfg = alembic_config(app, ini, url=url, local_dir=local_dir, profile=profile, mode=DRY_RUN)
    require_plugin(cfg)  # a stock env.py would run the revisions, not compile them
    cfg.attributes[ATTRIBUTE].output = out
    cfg.attributes[ATTRIBUTE].on_plan = found.keep
    run_command(command.upgrade, cfg, revision)
    found.text = out.getvalue()
    found.state_schema = getattr(cfg.attributes.get(ATTRIBUTE), "state_schema", None)
    return found


#: how many finished plans back a re-run deploy looks for the upgrade it was pinned to
PINNED_LOOKBACK = 500


def pinned_upgrade_done(app: AppContext, ini: Path, *, url: str | None, local_dir: Path,
                        schema: str, expected: str) -> tuple[int, Any] | None:
    """With nothing pending: whether the upgrade that ran last (its revisions' stored plans)
    is the one ``expected`` pinned, as ``(revisions, finished at)``; else None. A deploy run
    again after it succeeded (a re-run CI job) then finds its work done instead of refusing."""
    from ..runner.state import StateStore
    from .apply import connection_factory, url_or_ini

    store = StateStore(schema)
    with connection_factory(app, url_or_ini(app, url, ini), local_dir)() as conn:
        if "plans" not in store.existing_tables(conn):
            return None
        rows = []
        for row in store.finished_plans(conn, PINNED_LOOKBACK):
            if not (row.label or "").startswith("alembic upgrade "):
                break  # a downgrade or a plain plan ran after it: not the pinned upgrade's end
            rows.append(row)
    if not rows:
        return None
    done = [(str(r.label), Plan.from_json(r.plan, where=f"stored plan {r.hash}"))
            for r in reversed(rows)]
    covered = completed_hashes(done).get(expected)
    return None if covered is None else (covered, rows[0].finished_at)


PIN_HINT = ("run 'dsql-migrate upgrade --dry-run' (or 'dsql-migrate review --url') against "
            "this target, review the plans it shows, and pin the upgrade hash it prints")


def check_expected(found: DryRun, expected: str) -> None:
    """Refuse (exit 5) unless the pending revisions' upgrade hash is ``expected``."""
    if found.hash is None:
        raise PlanHashMismatch(
            f"--expect-hash: the upgrade cannot be pinned: {found.partial[0]} uses the "
            "database connection while it runs, so its plan is known only then",
            hint="run the upgrade without --expect-hash, or record the revision's SQL with "
            "op.execute / op.* instead of reading through the connection")
    if found.hash != expected.strip():
        pending = ", ".join(label.removeprefix("alembic upgrade ") for label, _ in found.plans)
        raise PlanHashMismatch(
            f"the upgrade hash of the pending revisions is {found.hash}, not the expected "
            f"{expected.strip()} (pending: {pending or 'nothing'}); nothing was changed",
            hint=PIN_HINT)


class RunCheck:
    """Each revision's plan compiled at run time must be the one the upgrade hash covers:
    otherwise the database changed between the check and the run, and the run stops before
    that revision changes anything."""

    def __init__(self, pinned: list[Pin]) -> None:
        self.expected = list(pinned)
        self.seen = 0

    def __call__(self, label: str, plan: Plan, complete: bool, live: Snapshot | None) -> None:
        want = self.expected[self.seen] if self.seen < len(self.expected) else None
        got = run_digest(want, plan) if want is not None else plan.hash
        if want is None or not complete or want.label != label or want.digest != got:
            before = ("; the revisions before it are applied" if self.seen else "")
            was = f"{want.digest} for {want.label}" if want else "no such revision"
            raise PlanHashMismatch(
                f"{label}: its plan compiled now ({got}) is not the one the upgrade hash "
                f"covers ({was}): the database changed between the check and the run; "
                f"nothing of this revision has run{before}", hint=PIN_HINT)
        self.seen += 1


ini_option = click.option("-c", "--alembic-ini", "ini", type=click.Path(path_type=Path),
                          default=Path("alembic.ini"), show_default=True,
                          help="The Alembic configuration file of the project.")
url_option = click.option(
    "--url", help="Target URL (default: $DSQL_MIGRATE_URL, config, local emulator).")
profile_option = click.option("--profile", help="Capability profile: current or classic.")
local_dir_option = click.option(
    "--local-dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_DIR,
    envvar="DSQL_MIGRATE_LOCAL_DIR", show_default=True,
    help="State directory of the local target, when that is the target.")


abandon_option = click.option(
    "--abandon-previous", is_flag=True,
    help="Leave a half-applied revision's plan as it is and compile the revision again.")


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Scaffold a DSQL Alembic project: DIRECTORY/ and ./alembic.ini."""
    project = Path.cwd()
    target = directory if directory.is_absolute() else project / directory
    ini = scaffold(target.parent, target.name, ini=project / "alembic.ini")
    click.echo(f"created {target}/ (env.py, script.py.mako, versions/) and {ini.name}")
    click.echo("next: dsql-migrate revision -m 'first tables', then dsql-migrate upgrade")


@click.command()
@click.option("-m", "--message", required=True, help="What the revision does.")
@click.option("--autogenerate", is_flag=True,
              help="Fill the revision from the models (env.py target_metadata) vs the database.")
@ini_option
@url_option
@profile_option
@local_dir_option
@click.pass_obj
def revision(app: AppContext, *, message: str, autogenerate: bool, ini: Path, url: str | None,
             profile: str | None, local_dir: Path) -> None:
    """Create a new revision file (DSQL-safe when autogenerated)."""
    cfg = alembic_config(app, ini, url=url, local_dir=local_dir, profile=profile,
                         connect=autogenerate)
    scripts = run_command(command.revision, cfg, message=message, autogenerate=autogenerate)
    for script in scripts if isinstance(scripts, list) else [scripts]:
        if script is not None:
            click.echo(f"created {script.path}")


def report_done_before(log_format: str, expected: str, revisions: int, finished: Any) -> None:
    """Says that the pinned upgrade already ran (as the progress events, JSON or text)."""
    from ..runner.events import Event

    reporter = make_reporter(log_format, sys.stderr)
    try:
        reporter(Event("upgrade.done_before",
                       f"nothing to upgrade: the upgrade pinned by {expected} ({revisions} "
                       f"revision{'s' if revisions != 1 else ''}) finished at "
                       f"{finished.isoformat(timespec='seconds')}",
                       data={"hash": expected, "revisions": revisions,
                             "finished_at": finished.isoformat()}))
    finally:
        reporter.close()


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("revision", default="head")
@click.option("--sql", "as_sql", is_flag=True,
              help="Offline: print the plans as an SQL script (transactions and async waits "
              "marked); no database.")
@click.option("--dry-run", is_flag=True,
              help="Print the plan of each pending revision (as 'dsql-migrate plan') and the "
              "upgrade hash; run nothing.")
@click.option("--expect-hash", metavar="H",
              help="Refuse (exit 5) unless the pending revisions' upgrade hash is H, as "
              "--dry-run or 'review' printed it.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Progress as text (a bar on a terminal) or JSON lines.")
@abandon_option
@ini_option
@url_option
@profile_option
@local_dir_option
@click.pass_obj
def upgrade(app: AppContext, *, revision: str, as_sql: bool, dry_run: bool, ini: Path,
            url: str | None, profile: str | None, local_dir: Path, expect_hash: str | None,
            log_format: str, abandon_previous: bool) -> None:
    """Run pending revisions up to REVISION (default head), resumably."""
    if as_sql and dry_run:
        raise ConfigError("--sql and --dry-run exclude each other")
    if as_sql and expect_hash is not None:
        raise ConfigError("--sql and --expect-hash exclude each other",
                          hint="--expect-hash pins a run against a database")
    if as_sql:
        cfg = alembic_config(app, ini, url=url, local_dir=local_dir, profile=profile,
                             connect=False)
        run_command(command.upgrade, cfg, revision, sql=True)
        return
    check: RunCheck | None = None
    if dry_run or expect_hash is not None:
        found = dry_run_plans(app, ini, revision, url=url, local_dir=local_dir,
                              profile=profile)
        if dry_run:
            click.echo(found.text or "Nothing to upgrade.\n", nl=False)
            click.echo(found.hash_line())
        if expect_hash is not None:
            expected = expect_hash.strip()
            if not found.plans and found.hash != expected:
                done = pinned_upgrade_done(app, ini, url=url, local_dir=local_dir,
                                           schema=found.state_schema or "dsql_migrate",
                                           expected=expected)
                if done is not None:
                    report_done_before(log_format, expected, *done)
                    return
            check_expected(found, expect_hash)
            check = RunCheck(found.pins)
        if dry_run:
            return
    upgrade_with_progress(app, ini, revision, url=url, local_dir=local_dir, profile=profile,
                          abandon_previous=abandon_previous, log_format=log_format,
                          on_plan=check)


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("revision")
@abandon_option
@ini_option
@url_option
@profile_option
@local_dir_option
@click.pass_obj
def downgrade(app: AppContext, *, revision: str, ini: Path, url: str | None, profile: str | None,
              local_dir: Path, abandon_previous: bool) -> None:
    """Undo revisions down to REVISION (-1, base, an id), resumably."""
    upgrade_with_progress(app, ini, revision, url=url, local_dir=local_dir, profile=profile,
                          abandon_previous=abandon_previous, downgrade=True)


def target_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The target options every migrations command takes, as Alembic's commands all do."""
    for option in (local_dir_option, profile_option, url_option, ini_option):
        fn = option(fn)
    return fn


@click.command()
@click.option("--verbose", "verbose_", is_flag=True, help="Show every detail of each revision.")
@click.option("-i", "--indicate-current", is_flag=True,
              help="Mark the revision the database is at (connects to the target).")
@click.option("-r", "--rev-range", help="Only revisions in this range (e.g. base:head).")
@target_options
@click.pass_obj
def history(app: AppContext, verbose_: bool, indicate_current: bool, rev_range: str | None,
            ini: Path, url: str | None, profile: str | None, local_dir: Path) -> None:
    """List the revisions, newest first."""
    cfg = alembic_config(app, ini, url=url, local_dir=local_dir, profile=profile,
                         connect=indicate_current)
    run_command(command.history, cfg, rev_range=rev_range, verbose=verbose_,
                indicate_current=indicate_current)


@click.command()
@click.option("--verbose", "verbose_", is_flag=True, help="Show every detail of each revision.")
@target_options
@click.pass_obj
def heads(app: AppContext, verbose_: bool, ini: Path, url: str | None, profile: str | None,
          local_dir: Path) -> None:
    """Show the head revision(s) of the scripts."""
    cfg = alembic_config(app, ini, url=url, local_dir=local_dir, profile=profile,
                         connect=False)
    run_command(command.heads, cfg, verbose=verbose_)


@click.command()
@click.option("--verbose", "verbose_", is_flag=True, help="Show every detail of each revision.")
@target_options
@click.pass_obj
def branches(app: AppContext, verbose_: bool, ini: Path, url: str | None, profile: str | None,
             local_dir: Path) -> None:
    """Show the branch points of the revisions."""
    cfg = alembic_config(app, ini, url=url, local_dir=local_dir, profile=profile,
                         connect=False)
    run_command(command.branches, cfg, verbose=verbose_)


@click.command()
@click.argument("revision")
@target_options
@click.pass_obj
def show(app: AppContext, revision: str, ini: Path, url: str | None, profile: str | None,
         local_dir: Path) -> None:
    """Show one revision (an id, head, base, ...)."""
    cfg = alembic_config(app, ini, url=url, local_dir=local_dir, profile=profile,
                         connect=False)
    run_command(command.show, cfg, revision)


@click.command()
@target_options
@click.pass_obj
def current(app: AppContext, *, ini: Path, url: str | None, profile: str | None,
            local_dir: Path) -> None:
    """Show the revision the database is at."""
    out = io.StringIO()
    cfg = alembic_config(app, ini, url=url, local_dir=local_dir, profile=profile, stdout=out)
    run_command(command.current, cfg)
    click.echo(out.getvalue() or "(no revision: the database is at base)\n", nl=False)


@click.command()
@click.argument("revision")
@target_options
@click.pass_obj
def stamp(app: AppContext, *, revision: str, ini: Path, url: str | None, profile: str | None,
          local_dir: Path) -> None:
    """Record REVISION in alembic_version without running anything."""
    cfg = alembic_config(app, ini, url=url, local_dir=local_dir, profile=profile)
    run_command(command.stamp, cfg, revision)
    click.echo(f"stamped {revision}")


@click.command()
@ini_option
@url_option
@profile_option
@local_dir_option
@click.pass_obj
def check(app: AppContext, *, ini: Path, url: str | None, profile: str | None,
          local_dir: Path) -> None:
    """Exit 1 when the models and the database differ."""
    cfg = alembic_config(app, ini, url=url, local_dir=local_dir, profile=profile)
    run_command(command.check, cfg)
    click.echo("No differences: the database matches the models.")


COMMANDS = (init, revision, upgrade, downgrade, history, heads, branches, show, current, stamp,
            check)

__all__ = ["COMMANDS", "DryRun", "RunCheck", "alembic_config", "check_expected",
           "dry_run_plans", "ini_target_url", "scaffold", "target_options",
           "upgrade_with_progress"]
