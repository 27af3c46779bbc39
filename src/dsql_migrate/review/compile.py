"""Compiling revisions for a review, through the project's own ``env.py``, reading only.

:func:`compile_pending` runs ``env.py`` as ``dsql-migrate upgrade --dry-run`` does (so the
project's configuration of the migration context applies), with a migration function of its
own: it records each pending revision, compiles it with the plugin's planner against the live
schema (and, for the revisions after the first, against the schema the earlier ones predict),
keeps the plans, and gives Alembic nothing to run. A revision that would use the database
connection while it is recorded stops there (nothing of it runs: a review writes nothing).

:func:`upgrade_base` runs the base ref's revisions for real, on the review's fresh emulator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic import command
from alembic.operations import ops
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from ..alembic.compile import expand, plan_revision
from ..alembic.context import settings as current_settings
from ..alembic.model import predicted_snapshot, reflect_live
from ..alembic.project import alembic_config, run_command
from ..alembic.record import NeedsConnection, Recorder
from ..alembic.runtime import DRY_RUN, connection_factory
from ..alembic.segments import preview
from ..catalog import Snapshot, snapshot
from ..config import Config
from ..errors import DsqlMigrateError
from ..pinning import pins, upgrade_hash
from ..plan import Plan
from ..runner.events import Event

MODE = "review"


@dataclass
class Compiled:
    """One pending revision: its plan, or the error that stopped it."""

    revision: str
    label: str = ""  # alembic upgrade <from> -> <to>, as the upgrade's runtime names it
    plan: Plan | None = None
    error: DsqlMigrateError | None = None
    stopped_by: str | None = None  # an earlier revision that stopped the compilation
    recorded: list[ops.MigrateOperation] = field(default_factory=list)


@dataclass
class Pending:
    """What the target holds and what ``upgrade heads`` would run on it."""

    heads: tuple[str, ...] = ()
    revisions: list[Compiled] = field(default_factory=list)
    live: Snapshot | None = None  # the schema the revisions were compiled from

    def upgrade_hash(self) -> tuple[str | None, str]:
        """The upgrade hash ``upgrade --dry-run`` prints on this target (None, and why not,
        when a revision has no plan)."""
        for c in self.revisions:
            if c.plan is None:
                return None, f"revision {c.revision} could not be compiled"
        plans = [(c.label, c.plan) for c in self.revisions if c.plan is not None]
        if self.live is None or not plans:
            return None, "nothing is pending"
        return upgrade_hash(pins(plans, self.live)), ""


def _quiet(event: Event) -> None:
    """The runner's progress during the base upgrade: not part of the review."""


def upgrade_base(config: Config, ini: Path, *, url: str, local_dir: Path,
                 profile: str | None) -> None:
    """Run the revisions of ``ini``'s project up to its heads on ``url`` (the fresh emulator)."""
    cfg = alembic_config(config, ini, url=url, local_dir=local_dir, profile=profile,
                         reporter=_quiet)
    run_command(command.upgrade, cfg, "heads")


def compile_pending(config: Config, ini: Path, *, url: str, local_dir: Path,
                    profile: str | None) -> Pending:
    """The plans of the revisions ``upgrade heads`` would run on ``url``, nothing run."""
    cfg = alembic_config(config, ini, url=url, local_dir=local_dir, profile=profile,
                         mode=DRY_RUN, reporter=_quiet)
    found = Pending()

    def run(config: Any) -> None:
        script = ScriptDirectory.from_config(config)

        def migrations(heads: Sequence[str], mc: MigrationContext) -> list[Any]:
            found.heads = tuple(heads)
            steps = script._upgrade_revs("heads", heads)  # type: ignore[arg-type]
            found.revisions, found.live = _compile_steps(mc, steps)
            return []  # Alembic runs nothing

        with EnvironmentContext(config, script, fn=migrations, destination_rev="heads"):
            script.run_env()

    run_command(run, cfg)
    return found


def _refuse_connection(pending: list[ops.MigrateOperation], where: str, statement: str) -> None:
    raise NeedsConnection(where, f"runs `{preview(statement, 60)}` through the database "
                          "connection", MODE)


def _where(step: Any) -> str:
    path = getattr(getattr(step.revision, "module", None), "__file__", None)
    return f"{Path(path).name if path else step.revision.revision} upgrade()"


def _compile_steps(mc: MigrationContext,
                   steps: Sequence[Any]) -> tuple[list[Compiled], Snapshot]:
    settings = current_settings()
    profile, options = settings.profile, settings.planner_options
    assert mc.connection is not None
    conn = connection_factory(mc.connection)()
    try:
        live = snapshot(conn)
    finally:
        conn.close()
    live_md = reflect_live(mc.connection)
    first = live
    out: list[Compiled] = []
    stopped: str | None = None
    for step in steps:
        before = ", ".join(step.from_revisions) or "<base>"
        result = Compiled(step.revision.revision,
                          f"alembic upgrade {before} -> {', '.join(step.to_revisions)}")
        out.append(result)
        if stopped is not None:
            result.stopped_by = stopped
            continue
        recorder = Recorder(mc, on_connection_use=_refuse_connection)
        try:
            try:
                recorder.run(step.migration_fn)
            finally:
                result.recorded = list(recorder.recorded)
            expanded = expand(recorder.recorded, profile, where=_where(step),
                              batch_rows=options.batch_size(profile))
            planned = plan_revision(expanded, live, live_md, profile, options, source={
                "alembic": result.label})
        except DsqlMigrateError as exc:
            result.error = exc
            stopped = step.revision.revision
            continue
        result.plan = planned.plan
        live_md = planned.desired
        live = predicted_snapshot(live_md, live)
    return out, first


__all__ = ["Compiled", "Pending", "compile_pending", "upgrade_base"]
