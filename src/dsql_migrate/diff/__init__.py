"""Desired schema vs live schema → ops (DESIGN.md §1).

The desired schema comes from a target:

- ``package.module:attr``: a SQLAlchemy ``MetaData``, or a declarative base (anything with a
  ``metadata`` attribute that is one);
- ``path/to/desired.sql``: a desired-state SQL file (plain PostgreSQL DDL describing the end
  state: ``CREATE TABLE``, ``CREATE INDEX`` without ``ASYNC``, ...), loaded into a throwaway
  database and reflected back.

The comparison itself is Alembic's autogenerate (``produce_migrations``), so the ops are
Alembic's operation classes; the tables :mod:`.unchanged` proves unchanged from the live
snapshot are left out of it (reflecting them is most of its time on a large schema), and its
reflection of the others is answered from the same snapshot when :mod:`.reflected` can restate
them exactly (no reflection queries, no second reading of the catalog). On top
of it this module adds what Alembic does not see and DSQL needs: named CHECK constraints,
constraints left ``NOT VALID`` (:class:`ValidateConstraintOp`), indexes whose asynchronous
build failed (dropped and created again), identity caches (a warning), and declared renames.
Renames are never guessed: without a declaration a renamed table or column is a drop and an
add.
"""

from __future__ import annotations

import functools
import importlib
import logging
import sys
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from warnings import catch_warnings, filterwarnings

import psycopg
import sqlalchemy as sa
from alembic.autogenerate import compare as compare_module
from alembic.autogenerate.api import AutogenContext
from alembic.migration import MigrationContext
from alembic.operations import ops
from psycopg import sql as pgsql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .. import roles
from .._gc import cycle_collector_paused
from ..catalog import EXCLUDED_SCHEMAS, Snapshot, Table, snapshot
from ..errors import ConfigError, DsqlMigrateError, ExitCode
from ..ops import ChangePrimaryKeyOp, ValidateConstraintOp
from .reflected import ReflectionFacts, SnapshotInspector, Unsupported, read_reflection_facts
from .unchanged import Facts, read_facts, unchanged_tables

log = logging.getLogger(__name__)


class TargetError(DsqlMigrateError):
    """The desired-state target cannot be loaded: bad module, attribute or SQL file."""

    exit_code = ExitCode.USAGE


# -- targets -------------------------------------------------------------------------------------


@dataclass
class Desired:
    """The desired schema: a MetaData and, for a SQL file, the snapshot of its database."""

    metadata: sa.MetaData
    source: str
    snapshot: Snapshot | None = None


def load_target(target: str, *, scratch_server: str | None = None) -> Desired:
    """Load ``target`` (``module:attr`` or a ``.sql`` file).

    ``scratch_server`` is the conninfo of a server on which a throwaway database may be
    created, needed for ``.sql`` targets.
    """
    if target.endswith(".sql"):
        if scratch_server is None:
            raise ConfigError(f"{target}: a desired-state SQL file needs a server to load it in")
        return load_sql_target(Path(target), scratch_server)
    if ":" in target:
        return load_model_target(target)
    raise TargetError(
        f"unrecognised target {target!r}",
        hint="use package.module:attr (a MetaData or declarative base) or a desired.sql file",
    )


def load_model_target(target: str) -> Desired:
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise TargetError(f"target {target!r} is not of the form package.module:attr")
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise TargetError(
                f"cannot import {module_name!r}: no such module",
                hint="run from the directory that contains it, or fix the --target",
            ) from None
        raise TargetError(_import_failure(module_name, exc)) from None
    except SyntaxError as exc:
        raise TargetError(
            f"{exc.filename}:{exc.lineno}:{exc.offset or 0}: syntax error while importing "
            f"{module_name!r}: {exc.msg}"
        ) from None
    except Exception as exc:
        raise TargetError(_import_failure(module_name, exc)) from None
    value: Any = module
    for part in attr.split("."):
        if not hasattr(value, part):
            raise TargetError(
                f"{_module_file(module)}: module {module_name!r} has no attribute {attr!r}",
                hint="name a MetaData or a declarative base, e.g. myapp.models:Base",
            )
        value = getattr(value, part)
    metadata = value if isinstance(value, sa.MetaData) else getattr(value, "metadata", None)
    if not isinstance(metadata, sa.MetaData):
        raise TargetError(
            f"{_module_file(module)}: {target} is a {type(value).__name__}, not a SQLAlchemy "
            "MetaData or declarative base",
            hint="name a MetaData or a declarative base, e.g. myapp.models:Base",
        )
    return Desired(metadata=metadata, source=target)


def _module_file(module: Any) -> str:
    return str(getattr(module, "__file__", None) or module.__name__)


def _import_failure(module_name: str, exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    user = [f for f in frames if "importlib" not in f.filename]
    where = f"{user[-1].filename}:{user[-1].lineno}: " if user else ""
    return f"{where}importing {module_name!r} failed: {type(exc).__name__}: {exc}"


def _line_col(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def split_sql_file(path: Path) -> list[tuple[int, str]]:
    """The statements of ``path`` with their 0-based character offsets, as plain PostgreSQL.

    The file may use DSQL's own syntax (``CREATE INDEX ASYNC``, ``ALTER TABLE ASYNC``): it
    describes the end state, so the scratch database builds the same objects synchronously.
    Parse errors raise with the file, line and column.
    """
    from ..sql import dsql_syntax, parse_script  # the SQL parser: only for .sql targets

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TargetError(f"{path}: cannot read: {exc.strerror}") from None
    statements: list[tuple[int, str]] = []
    for parsed in parse_script(text):
        if parsed.error is not None:
            line, col = parsed.statement.position_of(parsed.error.offset)
            raise TargetError(f"{path}:{line}:{col}: {parsed.error.message}",
                              hint="fix the statement; the file must parse as SQL") from None
        plain, _was_async = dsql_syntax(parsed.text)
        statements.append((parsed.statement.start, plain))
    return statements


@contextmanager
def scratch_database(server: str, prefix: str = "dsqlm_desired") -> Iterator[str]:
    """A throwaway database on ``server``, dropped on exit; yields its conninfo."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(name)))
    try:
        yield make_conninfo(server, dbname=name)
    finally:
        _drop_database(server, name)


def _drop_database(server: str, name: str, attempts: int = 20) -> None:
    """Drop a scratch database; a backend we may not end (autovacuum) goes away on its own."""
    statement = pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
        pgsql.Identifier(name))
    for attempt in range(attempts):
        try:
            with psycopg.connect(server, autocommit=True) as admin:
                admin.execute(statement)
            return
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectInUse):
            if attempt == attempts - 1:
                log.warning("could not drop the scratch database %s; drop it by hand", name)
                return
            time.sleep(0.25)


def load_sql_target(path: Path, server: str) -> Desired:
    # role statements are kept out of the throwaway database (a role is global to the server)
    statements, role_statements = roles.split_role_statements(split_sql_file(path))
    text = path.read_text(encoding="utf-8")
    with scratch_database(server) as conninfo:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            for offset, statement in statements:
                try:
                    conn.execute(statement.encode())
                except psycopg.DatabaseError as exc:
                    position = exc.diag.statement_position
                    at = offset + (int(position) - 1 if position else 0)
                    line, col = _line_col(text, at)
                    raise TargetError(
                        f"{path}:{line}:{col}: {exc.diag.message_primary or exc}",
                        hint="the desired-state file must load into an empty PostgreSQL "
                        "database",
                    ) from None
            desired_snapshot = snapshot(conn)
        engine = engine_for(conninfo)
        try:
            metadata = sa.MetaData()
            with engine.connect() as sa_conn:
                for schema in desired_snapshot.schemas:
                    reflect(sa_conn, metadata, schema=None if schema == "public" else schema)
        finally:
            engine.dispose()
    if role_statements.statements:
        roles.from_sql_file(metadata, role_statements, desired_snapshot, path, text)
    return Desired(metadata=metadata, source=str(path), snapshot=desired_snapshot)


def reflect(bind: sa.Connection, metadata: sa.MetaData | None = None, *,
            schema: str | None = None) -> sa.MetaData:
    """``metadata`` (a new one by default) with the tables of ``bind`` reflected, without the
    warning SQLAlchemy 2.1 gives about the ``not_valid`` option it reflects itself on a NOT
    VALID CHECK constraint ("Can't validate argument 'dialect_options'")."""
    metadata = metadata if metadata is not None else sa.MetaData()
    with quiet_reflection():
        metadata.reflect(bind, schema=schema)
    return metadata


@contextmanager
def quiet_reflection() -> Iterator[None]:
    """Without SQLAlchemy 2.1's warning about a NOT VALID CHECK constraint's ``not_valid``
    option, which its PostgreSQL reflection sets and its constructor then cannot validate
    (noise: the constraint is reflected right)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Can't validate argument 'dialect_options'",
                                category=sa.exc.SAWarning)
        yield


def _engine_over(conn: psycopg.Connection[Any]) -> sa.Engine:
    """A SQLAlchemy engine whose one connection is ``conn`` (closed with it)."""
    return sa.create_engine("postgresql+psycopg://", creator=lambda: conn,
                            poolclass=sa.pool.NullPool, use_native_hstore=False)


@functools.cache
def _pg_dialect() -> sa.Dialect:
    """A PostgreSQL dialect for compiling types when no connection was needed."""
    from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

    return PGDialect_psycopg()  # type: ignore[no-untyped-call]


def engine_for(conninfo: str) -> sa.Engine:
    """A SQLAlchemy engine over psycopg for any libpq conninfo or URL."""
    params = conninfo_to_dict(conninfo)
    return sa.create_engine(
        "postgresql+psycopg://",
        creator=lambda: psycopg.connect(**params),  # type: ignore[arg-type]
        poolclass=sa.pool.NullPool,
        # the dialect's hstore probe runs in a SAVEPOINT, which DSQL rejects
        use_native_hstore=False,
    )


# -- renames -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Renames:
    """Declared renames: table old→new, and (table, old column)→new column (new table name)."""

    tables: Mapping[str, str] = field(default_factory=dict)
    columns: Mapping[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def parse(cls, specs: Sequence[str]) -> Renames:
        """``old=new`` renames a table, ``table.old=new`` a column of ``table``."""
        tables: dict[str, str] = {}
        columns: dict[tuple[str, str], str] = {}
        for spec in specs:
            left, sep, new = spec.partition("=")
            if not sep or not left or not new or "." in new:
                raise ConfigError(
                    f"--rename {spec!r}: expected old=new (a table) or table.old=new (a column)")
            if "." in left:
                table, _, old = left.rpartition(".")
                columns[(table, old)] = new
            else:
                tables[left] = new
        return cls(tables=tables, columns=columns)

    def with_model_info(self, metadata: sa.MetaData) -> Renames:
        """Add renames declared with ``info={"renamed_from": "old"}`` on tables and columns."""
        tables = dict(self.tables)
        columns = dict(self.columns)
        for table in metadata.tables.values():
            old = table.info.get("renamed_from")
            if isinstance(old, str):
                tables[old] = table.name
            for column in table.columns:
                old_col = column.info.get("renamed_from")
                if isinstance(old_col, str):
                    columns[(table.name, old_col)] = column.name
        return Renames(tables=tables, columns=columns)


# -- comparison ----------------------------------------------------------------------------------


@dataclass
class Diff:
    ops: list[ops.MigrateOperation]
    desired: sa.MetaData
    warnings: list[str] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not self.ops


def _include_name(schemas: set[str | None],
                  skip: set[tuple[str | None, str]] = frozenset()) -> Any:  # type: ignore[assignment]
    def include(name: str | None, type_: str, parent: Mapping[str, Any]) -> bool:
        if type_ == "schema":
            return name in schemas and (name or "public") not in EXCLUDED_SCHEMAS
        if type_ == "table" and skip:
            return (parent.get("schema_name"), name) not in skip
        return True

    return include


def compare(
    sa_conn: sa.Connection | Callable[[], sa.Connection],
    live: Snapshot,
    desired: sa.MetaData,
    *,
    renames: Renames | None = None,
    facts: Facts | None = None,
    exhaustive: bool = False,
    reflection: Callable[[Sequence[str]], ReflectionFacts] | None = None,
) -> Diff:
    """The ops that turn the live schema (``sa_conn``/``live``) into ``desired``.

    ``sa_conn`` may be a callable that opens the connection: it is called only when Alembic's
    comparison has tables to compare. The tables :func:`.unchanged.unchanged_tables` proves
    unchanged in ``live`` are left out of Alembic's comparison (``facts``: read through the
    connection when not given); ``exhaustive`` compares every table with Alembic (the old way,
    kept for the differential tests). ``reflection`` reads the :class:`.ReflectionFacts` that
    let the snapshot answer Alembic's reflection (:mod:`.reflected`); it is called, before
    ``sa_conn``, only when Alembic has tables to compare. Without it Alembic reflects for
    real."""
    renames = (renames or Renames()).with_model_info(desired)
    warnings: list[str] = []
    active_tables = {
        old: new for old, new in renames.tables.items()
        if live.table(old) is not None and live.table(new) is None
    }
    compared = _metadata_with_old_names(desired, active_tables)
    flat = _alembic_ops(sa_conn, live, compared, facts, exhaustive, reflection)
    out: list[ops.MigrateOperation] = [
        ops.RenameTableOp(old, new) for old, new in sorted(active_tables.items())
    ]
    for op in flat:
        # the comparison ran under the old names: the ops come after the rename
        for attr in ("table_name", "source_table", "referent_table"):
            name = getattr(op, attr, None)
            if isinstance(name, str) and name in active_tables:
                setattr(op, attr, active_tables[name])
        out.append(op)
    out = _apply_column_renames(out, renames, live, active_tables)
    out = _filter_identity_changes(out, warnings, live)
    out = _filter_serial_keys(out, live, desired)
    out = _filter_not_null_checks(out, live)
    out.extend(_dsql_extras(live, desired, out, warnings))
    return Diff(ops=out, desired=desired, warnings=warnings)


def _alembic_ops(sa_conn: sa.Connection | Callable[[], sa.Connection], live: Snapshot,
                 compared: sa.MetaData, facts: Facts | None, exhaustive: bool,
                 reflection: Callable[[Sequence[str]], ReflectionFacts] | None = None,
                 ) -> list[ops.MigrateOperation]:
    """Alembic's ops for the tables of ``compared`` not proven unchanged, flattened."""
    connect = sa_conn if callable(sa_conn) else (lambda: sa_conn)
    schemas: set[str | None] = {t.schema for t in compared.tables.values()} | {None}
    skip: set[tuple[str | None, str]] = set()
    if not exhaustive:
        if facts is None:
            raw = connect().connection.driver_connection
            with raw.transaction():  # type: ignore[union-attr]
                facts = read_facts(raw)
        dialect = (sa_conn.dialect if isinstance(sa_conn, sa.Connection)
                   else _pg_dialect())
        skip = unchanged_tables(compared.tables.values(), live, facts, dialect)
        if not _needs_alembic(compared, live, facts, schemas, skip):
            return []
    from_snapshot = None
    if (reflection is not None and not exhaustive and facts is not None
            and _snapshot_can_reflect(compared, facts)):
        from_snapshot = reflection(sorted(
            t.name for t in live.tables.values()
            if t.schema == facts.default_schema and (None, t.name) not in skip))
    bind = connect()
    default = bind.dialect.default_schema_name
    if facts is not None and default != facts.default_schema:
        skip = set()  # cannot happen (the same connection): compare everything
        from_snapshot = None
    target = _subset(compared, skip, live, facts) if skip and facts is not None else compared
    if from_snapshot is not None and default is not None:
        try:
            return _produce(bind, target, schemas, skip, SnapshotInspector(
                bind, live, default, from_snapshot))
        except Unsupported as exc:
            log.debug("reflecting for real: %s", exc)
    return _produce(bind, target, schemas, skip, None)


def _snapshot_can_reflect(compared: sa.MetaData, facts: Facts) -> bool:
    """Whether the snapshot may answer Alembic's reflection: every compared table in the
    default schema, which the snapshot holds (see :class:`.reflected.SnapshotInspector`)."""
    default = facts.default_schema
    return (default not in EXCLUDED_SCHEMAS and not default.startswith("pg_")
            and all(t.schema in (None, default) for t in compared.tables.values()))


def _produce(bind: sa.Connection, target: sa.MetaData, schemas: set[str | None],
             skip: set[tuple[str | None, str]],
             inspector: SnapshotInspector | None) -> list[ops.MigrateOperation]:
    """Alembic's ``produce_migrations`` over ``bind``, its reflection answered by
    ``inspector`` when given. With the snapshot's inspector the compared schemas are the
    default one alone (checked by the caller), which is what listing the schemas and
    filtering them with ``include_name`` gives, so they are not listed."""
    default = bind.dialect.default_schema_name
    context = MigrationContext.configure(
        connection=bind,
        opts={
            "compare_type": True,
            "compare_server_default": True,
            "include_schemas": inspector is None,
            "include_name": _include_name(schemas, skip),
            "include_object": _include_object(skip, default),
        },
    )
    autogen = AutogenContext(context, metadata=target)
    if inspector is not None:
        autogen.__dict__["inspector"] = inspector  # Alembic's memoized inspector
    script = ops.MigrationScript(rev_id=None, upgrade_ops=ops.UpgradeOps([]),
                                 downgrade_ops=ops.DowngradeOps([]))
    with catch_warnings():
        # Alembic passes the reflected ``dialect_options`` of a NOT VALID constraint back to
        # SQLAlchemy as a keyword, which warns; NOT VALID is handled from the snapshot
        filterwarnings("ignore", message=".*'dialect_options'.*")
        compare_module._populate_migration_script(autogen, script)
    assert script.upgrade_ops is not None
    return list(_flatten(script.upgrade_ops.ops))


class _Subset(sa.MetaData):
    """Some tables of a MetaData (the same Table objects, not copies) for Alembic to compare,
    with their ``sorted_tables`` given: sorting a large model's tables by their foreign keys
    costs more than comparing the few tables that changed."""

    def __init__(self, source: sa.MetaData, tables: Sequence[sa.Table]) -> None:
        super().__init__(naming_convention=source.naming_convention)
        self.info.update(source.info)  # what comparators read from it (declared roles)
        for table in tables:
            self._add_table(table.name, table.schema, table)
        self._ordered = list(tables)

    @property
    def sorted_tables(self) -> list[sa.Table]:
        return list(self._ordered)


def _subset(compared: sa.MetaData, skip: set[tuple[str | None, str]], live: Snapshot,
            facts: Facts) -> sa.MetaData:
    """``compared`` without the tables in ``skip``. Alembic emits the tables it creates in
    ``sorted_tables`` order (and everything else by name): with two or more tables that may
    be created, that order is taken from the whole model's sort, as before."""
    default = facts.default_schema
    kept = [t for t in compared.tables.values()
            if (None if t.schema in (None, default) else t.schema, t.name) not in skip]
    absent = [t for t in kept if f"{t.schema or default}.{t.name}" not in live.tables
              or f"{t.schema or default}.{t.name}" in facts.unprovable]
    if len(absent) >= 2:
        wanted = set(kept)
        kept = [t for t in compared.sorted_tables if t in wanted]
    return _Subset(compared, kept)


def _needs_alembic(compared: sa.MetaData, live: Snapshot, facts: Facts,
                   schemas: set[str | None], skip: set[tuple[str | None, str]]) -> bool:
    """Whether Alembic's comparison would find anything: declared roles (compared by the roles
    comparator), a desired table not proven unchanged, or a live table of a compared schema
    that the target does not have (a drop)."""
    if roles.INFO_KEY in compared.info:  # the roles comparator runs inside Alembic's
        return True
    default = facts.default_schema
    wanted = {(None if t.schema in (None, default) else t.schema, t.name)
              for t in compared.tables.values()}
    if wanted - skip:
        return True
    compared_schemas = {None if s == default else s for s in schemas}
    for table in live.tables.values():
        key = (None if table.schema == default else table.schema, table.name)
        if key[0] not in compared_schemas or key in wanted:
            continue
        if key == (None, "alembic_version"):  # Alembic's own, never compared
            continue
        return True
    return False


def _include_object(skip: set[tuple[str | None, str]], default: str | None) -> Any:
    """Leaves the model's tables proven unchanged out of Alembic's comparison."""
    def include(obj: Any, name: str | None, type_: str, reflected: bool,
                compare_to: Any) -> bool:
        if type_ != "table" or reflected or not skip:
            return True
        schema = None if obj.schema in (None, default) else obj.schema
        return (schema, name) not in skip

    return include


def _metadata_with_old_names(desired: sa.MetaData, renames: Mapping[str, str]) -> sa.MetaData:
    if not renames:
        return desired
    new_to_old = {new: old for old, new in renames.items()}
    copy = sa.MetaData(naming_convention=desired.naming_convention)
    for table in desired.sorted_tables:
        table.to_metadata(copy, name=new_to_old.get(table.name, table.name))
    for table in copy.tables.values():
        for fk in table.foreign_keys:
            _repoint_foreign_key(fk, new_to_old)
    return copy


def _repoint_foreign_key(fk: sa.ForeignKey, new_to_old: Mapping[str, str]) -> None:
    """Make a copied FK that names a renamed table name its old name (resolution is lazy)."""
    tokens = getattr(fk, "_given_tokens", None)
    if tokens is not None:  # SQLAlchemy >= 2.1: the target as given, (schema, table, column)
        if tokens.table_name in new_to_old:
            fk._given_tokens = tokens._replace(table_name=new_to_old[tokens.table_name])
        return
    spec = getattr(fk, "_colspec", None)  # SQLAlchemy 2.0
    if isinstance(spec, str):
        parts = spec.split(".")
        if len(parts) >= 2 and parts[-2] in new_to_old:
            parts[-2] = new_to_old[parts[-2]]
            setattr(fk, "_colspec", ".".join(parts))  # noqa: B010 - read-only in 2.1 stubs


def _flatten(items: Sequence[Any]) -> Iterator[ops.MigrateOperation]:
    for op in items:
        if isinstance(op, ops.OpContainer):
            yield from _flatten(op.ops)
        else:
            yield op


def _apply_column_renames(
    items: list[ops.MigrateOperation], renames: Renames, live: Snapshot,
    table_renames: Mapping[str, str],
) -> list[ops.MigrateOperation]:
    if not renames.columns:
        return items
    new_to_old_table = {new: old for old, new in table_renames.items()}
    out = list(items)
    for (table, old), new in sorted(renames.columns.items()):
        live_table = live.table(new_to_old_table.get(table, table))
        if live_table is None or live_table.column(old) is None or live_table.column(new):
            continue
        add = next((op for op in out if isinstance(op, ops.AddColumnOp)
                    and op.table_name == table and op.column.name == new), None)
        drop = next((op for op in out if isinstance(op, ops.DropColumnOp)
                     and op.table_name == table and op.column_name == old), None)
        if add is None or drop is None:
            continue
        position = min(out.index(add), out.index(drop))
        out.remove(add)
        out.remove(drop)
        out.insert(position, ops.AlterColumnOp(table, old, modify_name=new,
                                               schema=add.schema))
        live_col = live_table.column(old)
        assert live_col is not None
        if live_col.nullable != add.column.nullable:
            out.insert(position + 1, ops.AlterColumnOp(
                table, new, modify_nullable=add.column.nullable,
                existing_type=add.column.type, schema=add.schema))
    return out


def _filter_identity_changes(items: list[ops.MigrateOperation], warnings: list[str],
                             live: Snapshot) -> list[ops.MigrateOperation]:
    out: list[ops.MigrateOperation] = []
    for op in items:
        if isinstance(op, ops.AlterColumnOp) and isinstance(
                op.modify_server_default, sa.Identity):
            table = live.table(op.table_name, op.schema)
            column = table.column(op.column_name) if table is not None else None
            live_cache = column.identity_cache if column is not None else None
            wanted = op.modify_server_default.cache
            warnings.append(
                f"identity of {op.table_name}.{op.column_name} differs from the target (live "
                f"CACHE {live_cache}, target CACHE {wanted if wanted is not None else 1}); "
                "it is left as it is")
            op.modify_server_default = False
            if not op.has_changes():
                continue
        out.append(op)
    return out


def _filter_serial_keys(items: list[ops.MigrateOperation], live: Snapshot,
                        desired: sa.MetaData) -> list[ops.MigrateOperation]:
    """No change for an autoincrement key the planner created as a BIGINT identity
    (planner.tables.serial_identity: DSQL has no SERIAL, identities are BIGINT only): the
    model's INTEGER/no-identity is what that identity stands for."""
    from ..planner.tables import serial_identity

    out: list[ops.MigrateOperation] = []
    for op in items:
        if isinstance(op, ops.AlterColumnOp):
            table = desired.tables.get(f"{op.schema}.{op.table_name}" if op.schema
                                       else op.table_name)
            serial = serial_identity(table) if table is not None else None
            live_table = live.table(op.table_name, op.schema)
            live_col = live_table.column(op.column_name) if live_table is not None else None
            if (serial is not None and serial.name == op.column_name and live_col is not None
                    and live_col.identity is not None and live_col.type == "bigint"):
                op.modify_type = None
                if op.modify_server_default is not False:
                    op.modify_server_default = False
                if not op.has_changes():
                    continue
        out.append(op)
    return out


def _filter_not_null_checks(items: list[ops.MigrateOperation],
                            live: Snapshot) -> list[ops.MigrateOperation]:
    """Drop SET NOT NULL ops already satisfied by a validated ``CHECK (c IS NOT NULL)``."""
    out: list[ops.MigrateOperation] = []
    for op in items:
        if isinstance(op, ops.AlterColumnOp) and op.modify_nullable is False:
            table = live.table(op.table_name, op.schema)
            if table is not None and any(
                    c.kind == "check" and c.validated and c.columns == (op.column_name,)
                    and _is_not_null_check(c.definition) for c in table.constraints):
                op.modify_nullable = None
                if not op.has_changes():
                    continue
        out.append(op)
    return out


def _dsql_extras(
    live: Snapshot,
    desired: sa.MetaData,
    planned: list[ops.MigrateOperation],
    warnings: list[str],
) -> list[ops.MigrateOperation]:
    """Checks, NOT VALID constraints and failed index builds, which Alembic does not compare."""
    created = {op.table_name for op in planned if isinstance(op, ops.CreateTableOp)}
    found: list[tuple[sa.Table, list[ops.MigrateOperation], list[str]]] = []
    for table in desired.tables.values():
        if table.name in created:
            continue
        live_table = live.table(table.name, table.schema)
        if live_table is None:
            continue
        table_extras: list[ops.MigrateOperation] = []
        table_warnings: list[str] = []
        _table_extras(table, live_table, planned, table_extras, table_warnings)
        if table_extras or table_warnings:
            found.append((table, table_extras, table_warnings))
    if len(found) > 1:
        # in the model's table order, as always; sorting a large model costs, so only here
        order = {table: i for i, table in enumerate(desired.sorted_tables)}
        found.sort(key=lambda item: order[item[0]])
    extras: list[ops.MigrateOperation] = []
    for _table, table_extras, table_warnings in found:
        extras.extend(table_extras)
        warnings.extend(table_warnings)
    return extras


def _table_extras(table: sa.Table, live_table: Table, planned: list[ops.MigrateOperation],
                  extras: list[ops.MigrateOperation], warnings: list[str]) -> None:
    """:func:`_dsql_extras` for one table that exists on both sides."""
    desired_pk = tuple(c.name for c in table.primary_key.columns)
    live_pk = live_table.primary_key
    if desired_pk and live_pk is not None and _renamed_pk(
            live_pk.columns, table.name, planned) != desired_pk:
        extras.append(ChangePrimaryKeyOp(table.name, desired_pk, schema=table.schema))
    desired_checks = {c.name: c for c in table.constraints
                      if isinstance(c, sa.CheckConstraint) and isinstance(c.name, str)}
    unnamed = [c for c in table.constraints
               if isinstance(c, sa.CheckConstraint) and not isinstance(c.name, str)]
    if unnamed:
        warnings.append(f"{table.name}: {len(unnamed)} unnamed CHECK constraint(s) are not "
                        "compared; give them a name")
    live_checks = {c.name: c for c in live_table.constraints if c.kind == "check"}
    for name, check in sorted(desired_checks.items()):
        if name not in live_checks:
            extras.append(ops.CreateCheckConstraintOp(
                name, table.name, check.sqltext, schema=table.schema))
    for name in sorted(set(live_checks) - set(desired_checks)):
        live_check = live_checks[name]
        if _is_not_null_check(live_check.definition) and len(live_check.columns) == 1:
            # our stand-in for SET NOT NULL: kept while the target says NOT NULL
            column = table.columns.get(live_check.columns[0])
            if column is not None and not column.nullable:
                continue
        extras.append(ops.DropConstraintOp(name, table.name, type_="check",
                                           schema=table.schema))
    for constraint in live_table.constraints:
        if constraint.validated or constraint.kind not in ("check", "foreign_key"):
            continue
        if constraint.kind == "check" and constraint.name not in desired_checks:
            continue
        extras.append(ValidateConstraintOp(table.name, constraint.name,
                                           schema=table.schema))
    desired_indexes = {i.name for i in table.indexes}
    for index in live_table.indexes:
        if not index.valid and index.name in desired_indexes:
            target = next(i for i in table.indexes if i.name == index.name)
            warnings.append(f"index {index.name} on {table.name} is not valid (a failed or "
                            "unfinished async build): it is dropped and built again")
            extras.append(ops.DropIndexOp(index.name, table_name=table.name,
                                          schema=table.schema))
            extras.append(ops.CreateIndexOp.from_index(target))


def _renamed_pk(columns: Sequence[str], table: str,
               planned: list[ops.MigrateOperation]) -> tuple[str, ...]:
    """The live primary-key column names after the planned column renames."""
    renames = {op.column_name: op.modify_name for op in planned
               if isinstance(op, ops.AlterColumnOp) and op.table_name == table
               and op.modify_name}
    return tuple(renames.get(c, c) for c in columns)


def _is_not_null_check(definition: str) -> bool:
    """``CHECK ((c IS NOT NULL))``: the current profile's stand-in for SET NOT NULL."""
    body = definition.upper().replace("NOT VALID", "").strip()
    return body.startswith("CHECK") and body.rstrip(")").endswith("IS NOT NULL")


def diff_live(conninfo: str, desired: Desired, *, renames: Renames | None = None,
              exact_counts: bool = False, exhaustive: bool = False) -> tuple[Diff, Snapshot]:
    """Snapshot the database at ``conninfo`` and compare it with ``desired``.

    One connection serves both the snapshot and Alembic's comparison (on DSQL every new
    connection costs a token and a TLS handshake); SQLAlchemy takes it over only when Alembic
    has tables to compare (see :func:`compare`)."""
    with cycle_collector_paused():
        return _diff_live(conninfo, desired, renames=renames, exact_counts=exact_counts,
                          exhaustive=exhaustive)


def _diff_live(conninfo: str, desired: Desired, *, renames: Renames | None,
               exact_counts: bool, exhaustive: bool) -> tuple[Diff, Snapshot]:
    raw = psycopg.connect(**conninfo_to_dict(conninfo))  # type: ignore[arg-type]
    engine: sa.Engine | None = None
    try:
        live = snapshot(raw, exact_counts=exact_counts)
        with raw.transaction():
            facts = read_facts(raw)
        with ExitStack() as stack:

            def connect() -> sa.Connection:
                nonlocal engine
                if not bound:
                    engine = _engine_over(raw)
                    bound.append(stack.enter_context(engine.connect()))
                return bound[0]

            bound: list[sa.Connection] = []
            result = compare(connect, live, desired.metadata, renames=renames, facts=facts,
                             exhaustive=exhaustive,
                             reflection=lambda names: read_reflection_facts(raw, names))
    finally:
        if engine is not None:
            engine.dispose()
        raw.close()
    return result, live
