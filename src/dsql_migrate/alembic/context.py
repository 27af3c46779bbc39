"""``alembic.context`` with DSQL behaviour: the one-line change in a stock ``env.py``.

Replace ``from alembic import context`` with ``from dsql_migrate.alembic import context``.
Everything is Alembic's, except:

- :func:`configure` turns transactional DDL off, puts the connection in autocommit (each
  statement Alembic itself runs is its own transaction), compares types and server defaults,
  and installs the autogenerate rewriter (:mod:`.rewriter`);
- :func:`run_migrations` runs each revision as a Plan through the runner
  (:func:`.runtime.run_migrations`); under the plain ``alembic`` command our errors become
  Alembic's ``CommandError`` (``FAILED: ...``, no traceback);
- :func:`begin_transaction` is a no-op: there is no transaction around DDL on DSQL;
- ``op.get_context().autocommit_block()`` is transparent: every step of a revision is already
  its own transaction, so what the block holds is recorded and run like the rest of the
  revision (Alembic's own block asserts a transaction it could end);
- when ``dsql-migrate`` chose the target (``--url``, ``$DSQL_MIGRATE_URL``, the config file,
  the local emulator: a connector in ``config.attributes``) and ``env.py`` connected elsewhere
  (a stock ``env.py`` connects to ``sqlalchemy.url``), :func:`configure` connects to the target
  instead, so the target is the same whatever the ``env.py``.

Settings (profile, state schema) come from ``config.attributes["dsql_migrate"]`` when
``dsql-migrate`` runs Alembic, else from ``dsql_profile=...`` / ``dsql_state_schema=...``
passed to :func:`configure`, else the ``dsql_migrate.profile`` option of ``alembic.ini``, else
the dsql-migrate configuration file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import sqlalchemy as sa
from alembic import context as _alembic
from alembic.util import CommandError

from ..config import load_config
from ..diff import quiet_reflection
from ..errors import DsqlMigrateError
from ..profiles import get_profile
from ..runner import RunOptions
from . import impl as _impl  # noqa: F401 - registers the auroradsql impl
from . import ops as _ops  # noqa: F401 - registers op.backfill
from .engine import CONNECTOR, engine_from, is_target_connection
from .rewriter import chain_rewriter
from .runtime import DsqlSettings
from .runtime import run_migrations as _run_migrations

ATTRIBUTE = "dsql_migrate"
#: set by the dsql-migrate CLI, which reports our errors itself
CLI = "dsql_migrate.cli"
#: the target connection :func:`configure` opened in place of env.py's (closed after the run)
_OWN_CONNECTION = "dsql_migrate.own_connection"


def _no_hstore_lookup(dialect: Any, conn_rec: Any, cargs: Any, cparams: Any) -> None:
    """psycopg's dialect looks up the hstore type in a nested transaction (a SAVEPOINT, which
    DSQL rejects) on an engine's first connection; DSQL has no hstore anyway."""
    if getattr(dialect, "driver", None) == "psycopg" and getattr(dialect, "use_native_hstore",
                                                                  False):
        dialect.use_native_hstore = False


if not sa.event.contains(sa.engine.Engine, "do_connect", _no_hstore_lookup):
    sa.event.listen(sa.engine.Engine, "do_connect", _no_hstore_lookup)


def __getattr__(name: str) -> Any:
    return getattr(_alembic, name)


def settings() -> DsqlSettings:
    """The settings of the current Alembic run."""
    config = _alembic.config
    given = config.attributes.get(ATTRIBUTE)
    if isinstance(given, DsqlSettings):
        return given
    name = config.get_main_option("dsql_migrate.profile")
    app = load_config()
    profile = get_profile(name) if name else app.profile()
    schema = str(app.section("runner").get("state_schema") or "dsql_migrate")
    return DsqlSettings(profile=profile, state_schema=schema,
                        run_options=RunOptions(allow_destructive=True, limits=profile.limits))


def configure(*args: Any, dsql_profile: str | None = None,
              dsql_state_schema: str | None = None, **kw: Any) -> None:
    """Alembic's ``context.configure`` in DSQL mode (see the module documentation)."""
    base = settings()
    if dsql_profile is not None or dsql_state_schema is not None:
        profile = get_profile(dsql_profile) if dsql_profile else base.profile
        base = DsqlSettings(profile=profile, state_schema=dsql_state_schema or base.state_schema,
                            run_options=RunOptions(allow_destructive=True,
                                                   limits=profile.limits),
                            on_event=base.on_event, mode=base.mode, output=base.output)
    _alembic.config.attributes[ATTRIBUTE] = base
    kw["transactional_ddl"] = False
    kw.setdefault("transaction_per_migration", False)
    kw.setdefault("compare_type", True)
    kw.setdefault("compare_server_default", True)
    kw["process_revision_directives"] = chain_rewriter(
        kw.get("process_revision_directives"), base.profile)
    connection = kw.get("connection")
    if connection is not None and _targets_elsewhere(connection):
        connection = kw["connection"] = _target_connection()
    if connection is not None and not connection.in_transaction():
        # each statement Alembic itself runs (version table, stamps) commits on its own; an
        # env.py that opened a transaction (engine.begin()) keeps it, which DSQL accepts for
        # the one CREATE TABLE alembic_version or the stamp DML Alembic runs there
        kw["connection"] = connection.execution_options(isolation_level="AUTOCOMMIT")
    _alembic.configure(*args, **kw)
    # an instance attribute: the MigrationContext of this run only, Alembic's class untouched
    setattr(_alembic.get_context(), "autocommit_block", _autocommit_block)  # noqa: B010


@contextmanager
def _autocommit_block() -> Iterator[None]:
    """``MigrationContext.autocommit_block`` under the plugin: nothing to commit or end (each
    step is its own transaction), so the block's ops and connection use go the normal way."""
    yield


def _targets_elsewhere(connection: sa.Connection) -> bool:
    """The CLI chose a target and env.py's connection is not to it (stock env.py: the ini's
    ``sqlalchemy.url``)."""
    return CONNECTOR in _alembic.config.attributes and not is_target_connection(connection)


def _target_connection() -> sa.Connection:
    engine = engine_from(_alembic.config)
    connection = engine.connect()
    _alembic.config.attributes[_OWN_CONNECTION] = connection
    return connection


def _close_own_connection() -> None:
    connection = _alembic.config.attributes.pop(_OWN_CONNECTION, None)
    if isinstance(connection, sa.Connection):
        connection.close()
        connection.engine.dispose()


def begin_transaction() -> AbstractContextManager[None]:
    """No transaction around a revision: DSQL allows one DDL per transaction."""
    return nullcontext()


def run_migrations(**kw: Any) -> None:
    """Run the pending revisions, each compiled to a Plan and executed by the runner."""
    try:
        with quiet_reflection():  # Alembic's comparison reflects too
            _run_migrations(_alembic.get_context(), settings(), **kw)
    except DsqlMigrateError as exc:
        if _alembic.config.attributes.get(CLI):
            raise  # dsql-migrate prints it, with its exit code
        # under the plain `alembic` command: Alembic prints "FAILED: ..." with no traceback
        raise CommandError(str(exc)) from exc
    finally:
        _close_own_connection()


__all__ = ["begin_transaction", "configure", "run_migrations", "settings"]
