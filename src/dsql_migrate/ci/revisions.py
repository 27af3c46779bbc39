"""The offline check of Alembic revision files, for a commit hook: no database, no env.py.

Each file is loaded as Python, its ``upgrade()`` and ``downgrade()`` are recorded as the
plugin records them (:mod:`dsql_migrate.alembic.record`, ``op`` keeps each op instead of running
it), and the recorded ops are expanded as ``dsql-migrate upgrade`` expands them
(:func:`dsql_migrate.alembic.compile.expand`): the SQL of every ``op.execute`` is linted, and
every op DSQL cannot carry out faithfully is refused, each problem with its revision line.

What needs the live schema (the plan itself, table sizes) is not checked here; ``dsql-migrate
review`` does that in a pull request.
"""

from __future__ import annotations

import importlib.util
import io
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from alembic.runtime.migration import MigrationContext

from ..errors import DsqlMigrateError
from ..profiles import Profile

#: rows per bulk-insert batch when expanding (the value changes nothing the check reports)
BATCH_ROWS = 1000
FUNCTIONS = ("upgrade", "downgrade")


@dataclass
class RevisionCheck:
    """What the check found in one revision file."""

    path: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: str | None = None  # why the file was not checked (not a revision)


def is_revision_source(text: str) -> bool:
    """An Alembic revision file declares ``revision`` and defines ``upgrade``."""
    return "revision" in text and "def upgrade" in text


def check_revision_file(path: Path, profile: Profile) -> RevisionCheck:
    """Record and expand the revision's ``upgrade()`` and ``downgrade()`` (see the module)."""
    result = RevisionCheck(str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        result.errors.append(f"{path}: cannot read: {exc}")
        return result
    if not is_revision_source(text):
        result.skipped = "not an Alembic revision (no revision = ... and def upgrade)"
        return result
    try:
        module = _load(path)
    except _LoadError as exc:
        result.errors.append(str(exc))
        return result
    for name in FUNCTIONS:
        fn = getattr(module, name, None)
        if callable(fn):
            _check_function(fn, name, path, profile, result)
    return result


def _check_function(fn: Callable[..., Any], name: str, path: Path, profile: Profile,
                    result: RevisionCheck) -> None:
    # imported here: the alembic package of dsql-migrate is the plugin, loaded only when used
    from ..alembic.compile import expand
    from ..alembic.record import NeedsConnection, Recorder

    where = f"{path.name} {name}()"
    mc = MigrationContext.configure(
        dialect_name="postgresql", opts={"as_sql": True, "output_buffer": io.StringIO()})
    recorder = Recorder(mc, offline="the offline revision check")
    try:
        recorder.run(fn)
    except NeedsConnection as exc:
        # the ops before that line are still checked; what follows needs a database
        result.warnings.append(f"{path}: {exc.message} (the ops after it are not checked)")
    except DsqlMigrateError as exc:
        result.errors.append(f"{path}: {exc.message}")
        return
    try:
        compiled = expand(recorder.recorded, profile, where=where, batch_rows=BATCH_ROWS)
    except DsqlMigrateError as exc:
        result.errors.append(f"{path}: {exc.message}")
        return
    result.warnings.extend(f"{path}: {w}" for w in compiled.warnings)


class _LoadError(Exception):
    pass


def _load(path: Path) -> ModuleType:
    """Run the revision file as a module of its own (not put in ``sys.modules`` for good)."""
    name = f"_dsql_migrate_revision_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise _LoadError(f"{path}: cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    with _importable_from(path.parent):
        try:
            spec.loader.exec_module(module)
        except ImportError as exc:
            raise _LoadError(
                f"{path}: importing it failed: {exc} (a revision that imports the project's "
                "own code needs it installed where the hook runs: additional_dependencies, or "
                "language: system)") from None
        except (Exception, SystemExit) as exc:  # the revision's own module-level code
            raise _LoadError(f"{path}: running its module code failed: "
                             f"{type(exc).__name__}: {exc}") from None
    return module


@contextmanager
def _importable_from(folder: Path) -> Iterator[None]:
    """Revisions sometimes import a helper module beside them, as Alembic allows. Neither
    leaves bytecode there: a commit hook must not change the work tree (pre-commit fails a
    hook that does: "files were modified by this hook")."""
    entry = str(folder.resolve())
    sys.path.insert(0, entry)
    dont_write = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.dont_write_bytecode = dont_write
        if entry in sys.path:
            sys.path.remove(entry)


__all__ = ["RevisionCheck", "check_revision_file", "is_revision_source"]
