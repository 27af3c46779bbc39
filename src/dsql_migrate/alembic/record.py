"""Recording a revision: its ``upgrade()``/``downgrade()`` run with ``op`` keeping each op
instead of executing it.

Every op is marked with the revision line that asked for it (refusals name it). A revision that
touches the database connection while it is recorded (``op.get_bind().execute(...)``, an ORM
session, ``sa.inspect(bind)``) makes the recorder call its ``on_connection_use`` hook first,
with the ops recorded since the last call: the runtime compiles and runs them (a segment of the
revision's plan, :mod:`.segments`), so the statement sees the schema the revision built so far.

An exception the revision raises (any, ``SystemExit`` included) becomes
:class:`RevisionCodeError` (``file:line: message``, exit 2); a database error raised by a
statement of the revision, :class:`RevisionDatabaseError` naming the line (exit 1).
"""

from __future__ import annotations

import inspect
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import pglast
import sqlalchemy as sa
from alembic import op as op_module
from alembic.operations import Operations, ops
from alembic.runtime.migration import MigrationContext

from ..errors import DsqlMigrateError, ExitCode
from .batch import recording_batch_alter_table
from .model import BuiltCreateTableOp
from .names import settle_op

WHERE = "dsql_migrate_where"
#: the hook called before a statement of the revision runs on the connection:
#: (ops recorded since the last call, "file.py:LINE", the statement)
ConnectionHook = Callable[[list[ops.MigrateOperation], str, str], None]

CODE_HINT = ("fix the code at that line and run the command again (revisions before it stay "
             "applied)")


class RevisionCodeError(DsqlMigrateError):
    """The revision's own code raised: nothing of this revision ran after that line."""

    exit_code = ExitCode.USAGE


class NeedsConnection(DsqlMigrateError):
    """A revision uses the connection in a mode that has none (``--dry-run``, ``--sql``)."""

    exit_code = ExitCode.FAILED

    def __init__(self, where: str, what: str, mode: str) -> None:
        super().__init__(
            f"{where}: the revision {what} while it is recorded; {mode} cannot show what "
            "follows without running the revision's earlier ops",
            hint="its later ops may depend on what the database returns there: run "
            "'dsql-migrate upgrade' against a scratch database (the local emulator) to see "
            "them")
        self.where = where
        self.what = what


class RevisionDatabaseError(DsqlMigrateError):
    """A statement the revision ran through the connection failed."""

    exit_code = ExitCode.FAILED


def where_of(operation: ops.MigrateOperation) -> str | None:
    value = getattr(operation, WHERE, None)
    return value if isinstance(value, str) else None


def mark(operation: ops.MigrateOperation, where: str | None) -> ops.MigrateOperation:
    if where is not None and where_of(operation) is None:
        setattr(operation, WHERE, where)
    return operation


def revision_line(path: str | None, frame: FrameType | None = None) -> str | None:
    """``file.py:LINE`` of the innermost frame running ``path`` (the revision file)."""
    frame = frame or inspect.currentframe()
    while frame is not None:
        if path is not None and frame.f_code.co_filename == path:
            return f"{Path(path).name}:{frame.f_lineno}"
        frame = frame.f_back
    return None


def _traceback_line(exc: BaseException, path: str | None, *,
                    full: bool = False) -> tuple[str | None, str | None]:
    """``file:line`` (the file's name, or its full path) of the innermost frame of the
    revision in ``exc``'s traceback, and the text of that line."""
    found: tuple[str | None, str | None] = (None, None)
    for entry in traceback.extract_tb(exc.__traceback__):
        if path is not None and entry.filename == path:
            found = (f"{path if full else Path(path).name}:{entry.lineno}", entry.line)
    return found


class Recorder:
    """Runs a revision function and keeps its ops (see the module documentation)."""

    def __init__(self, mc: MigrationContext, *,
                 on_connection_use: ConnectionHook | None = None,
                 offline: str | None = None) -> None:
        self.mc = mc
        self.on_connection_use = on_connection_use
        #: the mode without a connection (``upgrade --sql``): op.get_bind() is refused
        self.offline = offline
        self.recorded: list[ops.MigrateOperation] = []
        self.flushed = 0
        self.path: str | None = None
        self._in_hook = False
        #: run the ops up to each ``op.execute`` before recording what follows it (a run, not
        #: a dry run): the planner orders a revision's ops (renames first, recreations before
        #: other changes), and SQL of the revision's own must see exactly the ops before it
        self.sql_in_order = False

    def line(self) -> str | None:
        """``file.py:LINE`` of the revision's line running now."""
        return revision_line(self.path)

    def invoke(self, operation: ops.MigrateOperation) -> Any:
        where = revision_line(self.path)
        dropped = constraint_drops(operation)
        if dropped:
            for drop in dropped:
                self.invoke(mark(drop, where))
            return None
        if not isinstance(operation, ops.ExecuteSQLOp):
            self._after_sql()
        if isinstance(operation, ops.CreateTableOp):
            built = BuiltCreateTableOp.of(operation, self.mc)
            self.recorded.append(mark(built, where))
            return built.table  # revisions pass it to op.bulk_insert
        settle_op(operation, self.mc)  # the names stock Alembic would send
        self.recorded.append(mark(operation, where))
        return None

    def run(self, fn: Callable[..., Any], **kw: Any) -> list[ops.MigrateOperation]:
        code = getattr(fn, "__code__", None)
        self.path = code.co_filename if code is not None else None
        operations = Operations(self.mc)
        operations.invoke = self.invoke  # type: ignore[method-assign]
        if self.offline is not None:
            operations.get_bind = self._no_bind  # type: ignore[method-assign]
        operations.batch_alter_table = recording_batch_alter_table(  # type: ignore[method-assign,assignment]
            operations, self.invoke)
        previous = getattr(op_module, "_proxy", None)
        if previous is not None:
            previous._remove_proxy()
        operations._install_proxy()
        try:
            with self._watching_connection():
                fn(**kw)
        except DsqlMigrateError as exc:
            self._locate(exc)
            raise
        except (Exception, SystemExit) as exc:  # the revision's own code: any exception
            raise self._code_error(exc) from None
        finally:
            operations._remove_proxy()
            if previous is not None:
                previous._install_proxy()
        return self.recorded

    def _after_sql(self) -> None:
        """When the last op recorded is SQL of the revision's own (``op.execute``, or DDL
        sent through the connection) and another op follows: the ops so far, that SQL last,
        run as a part of their own (:mod:`.segments`), so the planner cannot move a later op
        (a rename, a recreation) before the SQL, nor the SQL before an earlier op."""
        pending = self.pending()
        if not (self.sql_in_order and pending and isinstance(pending[-1], ops.ExecuteSQLOp)
                and self.on_connection_use is not None and not self._in_hook):
            return
        last = pending[-1]
        try:
            text = str(last.sqltext)
        except sa.exc.SQLAlchemyError:
            text = type(last.sqltext).__name__
        self._in_hook = True
        try:
            self.on_connection_use(pending, where_of(last) or "the revision",
                                   f"op.execute: {text}")
        finally:
            self._in_hook = False
        self.flushed = len(self.recorded)

    def _no_bind(self) -> Any:
        return _OfflineBind(self, self.mc.dialect)

    def pending(self) -> list[ops.MigrateOperation]:
        """The ops recorded since the last connection use (the last segment)."""
        return self.recorded[self.flushed:]

    # -- the connection ------------------------------------------------------------------------

    @contextmanager
    def _watching_connection(self) -> Iterator[None]:
        engine = _engine_of(self.mc)
        if engine is None or self.on_connection_use is None:
            yield
            return
        sa.event.listen(engine, "before_cursor_execute", self._before_statement)
        # DSQL has no DECLARE CURSOR: a revision's yield_per / stream_results reads through a
        # client-side cursor instead (the same rows, buffered). Left so: the revision may
        # have set stream_results on the connection itself (execution_options works in place)
        engine.dialect.supports_server_side_cursors = False
        restore = _bind_client_side(self.mc.connection)
        try:
            yield
        finally:
            restore()
            sa.event.remove(engine, "before_cursor_execute", self._before_statement)

    def _before_statement(self, conn: Any, cursor: Any, statement: str, parameters: Any,
                          context: Any, executemany: bool) -> None:
        if self._in_hook or self.on_connection_use is None:
            return
        where = revision_line(self.path) or "the revision"
        self._in_hook = True
        try:
            self.on_connection_use(self.pending(), where, statement)
        finally:
            self._in_hook = False
        self.flushed = len(self.recorded)

    # -- errors --------------------------------------------------------------------------------

    def _locate(self, exc: DsqlMigrateError) -> None:
        line, _ = _traceback_line(exc, self.path)
        if line is not None and not exc.message.startswith(line.split(":")[0]):
            exc.message = f"{line}: {exc.message}"

    def _code_error(self, exc: BaseException) -> DsqlMigrateError:
        line, text = _traceback_line(exc, self.path, full=True)
        where = line or (Path(self.path).name if self.path else "the revision")
        if self.offline is not None and isinstance(exc, sa.exc.NoInspectionAvailable):
            short, _ = _traceback_line(exc, self.path)
            return NeedsConnection(short or where, "inspects the database (sa.inspect of "
                                   "op.get_bind())", self.offline)
        if isinstance(exc, sa.exc.DBAPIError):
            first = str(exc.orig or exc).strip().splitlines()[0]
            statement = " ".join(str(exc.statement or "").split())[:200]
            limit = _row_limit(exc)
            return RevisionDatabaseError(
                f"{where}: database error: {first}" + (f" (in: {statement})" if statement
                                                        else ""),
                hint=(f"the statement changes more rows than DSQL allows in a transaction "
                      f"({limit}): use op.backfill(...) for a batched, resumable UPDATE, or cut "
                      "the statement into batches") if limit else
                "fix the statement at that line; the ops recorded before it have been applied "
                "(run again to resume)")
        message = str(exc).strip().splitlines()
        if isinstance(exc, SystemExit):
            detail = f"SystemExit({exc.code!r})"
        else:
            detail = f"{type(exc).__name__}: {message[0]}" if message else type(exc).__name__
        hint = CODE_HINT if not text else f"fix the code at that line ({text.strip()}) and run " \
            "the command again (revisions before it stay applied)"
        return RevisionCodeError(f"{where}: {detail}", hint=hint)


def constraint_drops(operation: ops.MigrateOperation) -> list[ops.DropConstraintOp]:
    """An ``op.execute`` of nothing but ``ALTER TABLE t DROP CONSTRAINT [IF EXISTS] c``, as
    the ``op.drop_constraint(..., if_exists=...)`` ops that send the same SQL (airflow drops
    keys by name in SQL): the model and the planner follow them (a dropped primary key, a
    key of a renamed table), where SQL text is opaque to both."""
    if not isinstance(operation, ops.ExecuteSQLOp) or not isinstance(operation.sqltext, str):
        return []
    try:
        statements = pglast.parse_sql(operation.sqltext)
    except pglast.parser.ParseError:
        return []  # the linter says what is wrong with it
    out: list[ops.DropConstraintOp] = []
    for raw in statements:
        stmt = raw.stmt
        if not (isinstance(stmt, pglast.ast.AlterTableStmt) and stmt.relation is not None
                and stmt.relation.relname and not stmt.missing_ok and stmt.cmds
                and stmt.objtype == pglast.enums.ObjectType.OBJECT_TABLE):
            return []
        for cmd in stmt.cmds:
            if cmd.subtype != pglast.enums.AlterTableType.AT_DropConstraint or not cmd.name \
                    or cmd.behavior != pglast.enums.DropBehavior.DROP_RESTRICT:
                return []
            out.append(ops.DropConstraintOp(
                cmd.name, str(stmt.relation.relname), schema=stmt.relation.schemaname,
                if_exists=bool(cmd.missing_ok) or None))
    return out


class _OfflineBind:
    """``op.get_bind()`` under ``upgrade --sql``: its dialect answers (revisions ask
    ``bind.dialect.name``), anything else says the revision needs a live connection."""

    def __init__(self, recorder: Recorder, dialect: Any) -> None:
        self._recorder = recorder
        self.dialect = dialect

    def __getattr__(self, name: str) -> Any:
        raise NeedsConnection(self._recorder.line() or "the revision",
                              f"uses op.get_bind().{name}", str(self._recorder.offline))


def _bind_client_side(connection: Any) -> Callable[[], None]:
    """The revision's statements bind their values client-side, as psycopg2 does (PostgreSQL's
    default driver in SQLAlchemy, the one revisions are written and tested with): psycopg 3
    binds them on the server, which cannot type a value PostgreSQL has no context for
    (``json_build_object('k', :v)``: "could not determine data type of parameter $1").
    Returns what puts the connection's own cursors back."""
    raw = getattr(getattr(connection, "connection", None), "dbapi_connection", None)
    psycopg = sys.modules.get("psycopg")  # not imported: not a psycopg connection (offline)
    if psycopg is None or not isinstance(raw, psycopg.Connection):
        return lambda: None
    before = raw.cursor_factory
    raw.cursor_factory = psycopg.ClientCursor

    def restore() -> None:
        raw.cursor_factory = before

    return restore


def _row_limit(exc: sa.exc.DBAPIError) -> str | None:
    orig = exc.orig
    state = getattr(orig, "sqlstate", None)
    text = str(orig or "")
    if state == "54000" and "row limit" in text:
        return "3,000 rows"
    return None


def _engine_of(mc: MigrationContext) -> sa.Engine | None:
    connection = mc.connection
    if isinstance(connection, sa.Connection):
        return connection.engine
    return None


def record(fn: Callable[..., Any], mc: MigrationContext, *,
           on_connection_use: ConnectionHook | None = None,
           **kw: Any) -> list[ops.MigrateOperation]:
    """Run ``fn`` (a revision's upgrade or downgrade) and return the ops it asked for."""
    return Recorder(mc, on_connection_use=on_connection_use).run(fn, **kw)


__all__ = ["ConnectionHook", "NeedsConnection", "Recorder", "RevisionCodeError",
           "RevisionDatabaseError", "mark", "record", "where_of"]

