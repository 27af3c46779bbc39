"""A pg_dump / psql script → a DSQL script for a profile, with a report of every change.

Two passes over the statements (pglast trees):

1. **collect** what later statements depend on: partitions and their root table (from
   ``PARTITION OF`` and pg_dump's ``ATTACH PARTITION``), enum types and their labels, the
   sequences pg_dump uses to spell SERIAL (``CREATE SEQUENCE`` + ``OWNED BY`` + ``SET DEFAULT
   nextval(...)``) or an identity column, roles the script creates, removed functions.
2. **convert** statement by statement through :data:`HANDLERS` (one function per statement
   type). A ``CREATE TABLE`` stays a live tree until the end, so later ``ALTER TABLE`` statements
   DSQL rejects (``ADD PRIMARY KEY``, ``ADD UNIQUE``, ``SET DEFAULT``, identity, ``SET NOT NULL``)
   are folded into it: the data a dump loads after them satisfied them in the source.

Whatever cannot run on DSQL is converted (with a note when behaviour changes), removed (with a
reason and the application-side follow-up) or, when no faithful conversion exists, flagged
(kept as written; ``convert`` exits 1). Finally the output is linted for the profile: a DSQL
error the handlers missed is flagged too, so the report never claims a script DSQL rejects.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pglast import ast, enums, parse_sql
from pglast.parser import ParseError
from pglast.stream import RawStream

from ..lint import LintSettings, Severity, lint_script
from ..profiles import Capability, Profile
from ..sql import dsql_syntax, quote_ident, quote_literal, quote_qualified
from .items import Item, SourceError, items_from_script, items_from_statements
from .report import Action, Change, Conversion

Key = tuple[str, str]  #: (schema, name) of a relation, type or sequence; schema "public" if none
AT = enums.AlterTableType
CT = enums.ConstrType
OT = enums.ObjectType

_NO_TRIGGERS = "DSQL has no triggers (DSQL.md §1)"
_ONE_DB = "DSQL has one database, postgres (DSQL.md §1)"
_SESSION = ("a session setting: `dsql-migrate sql -f` runs each statement in its own "
            "transaction, possibly on a new connection, so it would not carry over")


# -- small helpers ---------------------------------------------------------------------------


def deparse(node: Any) -> str:
    return str(RawStream()(node))


def _name_key(names: Iterable[str]) -> Key:
    parts = list(names)
    return ("public" if len(parts) < 2 else parts[-2], parts[-1])


def _rel_key(rv: Any) -> Key:
    return (rv.schemaname or "public", rv.relname)


#: how the script spelled each relation (schema or None, name), so that generated statements
#: name it the same way (an unqualified name follows the connection's search_path)
Written = dict[Key, tuple[str | None, str]]


def _svals(nodes: Any) -> list[str]:
    return [str(n.sval) for n in nodes or () if isinstance(n, ast.String)]


def _display(key: Key) -> str:
    return key[1] if key[0] == "public" else f"{key[0]}.{key[1]}"


def _regclass_key(text: str) -> Key:
    """The key of a name written as text (``'public.t_id_seq'``, ``'"My"."Seq"'``)."""
    parts = [p[1:-1].replace('""', '"') if p.startswith('"') else p.lower()
             for p in re.findall(r'"(?:[^"]|"")*"|[^.]+', text)]
    return _name_key(parts)


def _int_option(options: Any, name: str) -> int | None:
    for o in options or ():
        if isinstance(o, ast.DefElem) and o.defname == name and isinstance(o.arg, ast.Integer):
            return int(o.arg.ival or 0)
        if isinstance(o, ast.DefElem) and o.defname == name and isinstance(o.arg, ast.Float):
            return int(float(o.arg.fval or 0))
    return None


def _walk(node: Any) -> Iterator[ast.Node]:
    """Every pglast node under ``node`` (itself included)."""
    if isinstance(node, ast.Node):
        yield node
        for slot in getattr(node, "__slots__", ()):
            yield from _walk(getattr(node, slot, None))
    elif isinstance(node, (tuple, list)):
        for child in node:
            yield from _walk(child)


def _type_name(tn: Any) -> str:
    names = _svals(tn.names) if tn is not None else []
    return names[-1] if names else ""


def _text_type() -> ast.TypeName:
    return ast.TypeName(names=(ast.String(sval="text"),), typemod=-1)


def _func_name(call: Any) -> str:
    return _svals(call.funcname)[-1] if call.funcname else ""


# -- the output being built ------------------------------------------------------------------


@dataclass
class Table:
    """A ``CREATE TABLE`` of the script, kept as a tree until the end (later folds change it)."""

    key: Key
    stmt: Any  #: pglast CreateStmt (its fields are all Optional: typed Any)
    slot: int
    item: Item
    original: str = ""  #: the statement as pglast prints it before any change

    def column(self, name: str) -> ast.ColumnDef | None:
        for element in self.stmt.tableElts or ():
            if isinstance(element, ast.ColumnDef) and element.colname == name:
                return element
        return None

    def add_constraint(self, con: Any) -> None:
        self.stmt.tableElts = (*(self.stmt.tableElts or ()), con)


@dataclass
class Slot:
    sql: str | None = None
    table: Table | None = None
    data: str | None = None
    notes: list[str] = field(default_factory=list)
    line: int = 0


@dataclass
class Facts:
    """What pass 1 found (see the module docstring)."""

    parent: dict[Key, Key] = field(default_factory=dict)  #: partition → its parent
    partitioned: set[Key] = field(default_factory=set)
    tables: set[Key] = field(default_factory=set)
    columns: dict[Key, list[str]] = field(default_factory=dict)
    enums: dict[Key, list[str]] = field(default_factory=dict)
    owned: dict[Key, tuple[Key, str]] = field(default_factory=dict)  #: sequence → column
    defaults: dict[tuple[Key, str], Key] = field(default_factory=dict)  #: column → nextval seq
    identity: dict[Key, tuple[Key, str]] = field(default_factory=dict)  #: seq → identity column
    sequences: dict[Key, ast.CreateSeqStmt] = field(default_factory=dict)
    roles: set[str] = field(default_factory=set)
    removed_functions: set[str] = field(default_factory=set)
    matviews: set[Key] = field(default_factory=set)
    domains: set[Key] = field(default_factory=set)
    written: Written = field(default_factory=dict)

    def spell(self, key: Key) -> str:
        """The relation's name as the script wrote it, quoted."""
        return quote_qualified(*self.written.get(key, key))

    def range_var(self, key: Key) -> ast.RangeVar:
        schema, name = self.written.get(key, key)
        return ast.RangeVar(schemaname=schema, relname=name, inh=True, relpersistence="p")
    attached_indexes: set[Key] = field(default_factory=set)
    copied: set[Key] = field(default_factory=set)  #: tables a COPY loads

    def loaded_by_copy(self, key: Key) -> bool:
        """Whether a COPY loads rows into the table (or into one of its partitions)."""
        return any(self.root(k) == key for k in self.copied)

    def root(self, key: Key) -> Key:
        seen = set()
        while key in self.parent and key not in seen:
            seen.add(key)
            key = self.parent[key]
        return key


class Converter:
    """Converts one list of items for one profile (see the module docstring)."""

    def __init__(self, profile: Profile, source: str) -> None:
        self.profile = profile
        self.source = source
        self.facts = Facts()
        self.slots: list[Slot] = []
        self.tables: dict[Key, Table] = {}
        self.changes: list[Change] = []
        self.kept = 0
        self._pending: list[str] = []
        self._trees: dict[int, ast.Node | None] = {}
        self._touched = False
        self._names: set[str] = set()
        self._line = 0
        self.position = 0
        self.last_relation = -1
        #: SQL functions held back (name, sql, line, comment lines); see defer_function
        self.deferred: list[tuple[str, str, int, list[str]]] = []
        self.held: dict[str, list[Slot]] = {}
        self._hold: str | None = None

    # -- parsing and recording --

    def tree(self, item: Item) -> ast.Node | None:
        """The pglast tree of a statement (DSQL's ASYNC keyword blanked), parsed once."""
        ident = id(item)
        if ident not in self._trees:
            text, _ = dsql_syntax(item.text)
            try:
                stmts = parse_sql(text)
                self._trees[ident] = stmts[0].stmt if stmts else None
            except ParseError:
                self._trees[ident] = None
        return self._trees[ident]

    def note(self, item: Item, action: Action, message: str, *, rule: str | None = None,
             follow_up: str | None = None, slot: int | None = None,
             preview: str | None = None) -> None:
        self._touched = True
        preview = preview or item.preview
        self.changes.append(Change(action, item.source, item.line, preview, message,
                                   rule, follow_up))
        comment = f"-- {action.value} ({item.where}): {message}"
        if follow_up:
            comment += f" Follow-up: {follow_up}"
        if action is Action.REMOVED:
            comment = f"-- {action.value} ({item.where}): {preview}: {message}" + (
                f" Follow-up: {follow_up}" if follow_up else "")
        lines = [" ".join(comment.split())]
        if slot is not None:
            self.slots[slot].notes.extend(lines)
        else:
            self._pending.extend(lines)

    def remove(self, item: Item, reason: str, follow_up: str | None = None, *,
               rule: str | None = None, preview: str | None = None) -> None:
        self.note(item, Action.REMOVED, reason, rule=rule, follow_up=follow_up,
                  preview=preview)

    def emit(self, sql: str | None = None, *, table: Table | None = None,
             data: str | None = None) -> int:
        if self._hold is not None:
            self.held[self._hold].append(Slot(sql, table, data, self._pending, self._line))
            self._pending = []
            return -1
        self.slots.append(Slot(sql, table, data, self._pending, self._line))
        self._pending = []
        return len(self.slots) - 1

    def name(self, base: str) -> str:
        """A new object name (for an unnamed index or constraint), unique in the output."""
        base = base[:55]
        candidate, n = base, 1
        while candidate in self._names:
            n += 1
            candidate = f"{base}{n}"
        self._names.add(candidate)
        return candidate

    # -- the passes --

    def run(self, items: list[Item]) -> Conversion:
        for item in items:
            collect(self, item)
        self.last_relation = max((i for i, item in enumerate(items) if item.parsed.node_type
                                  in _RELATION_NODES), default=-1)
        for index, item in enumerate(items):
            self._touched, self._line = False, item.line
            self._hold = self._held_with(item)
            if self._hold is None:
                self._release_functions(item)
            handle(self, item)
            self._hold = None
            if not self._touched:
                self.kept += 1
            self.position = index + 1
            if index == self.last_relation:
                self._release_functions(None)
        self._release_functions(None)
        return self.finish()

    def defer_function(self, name: str, sql: str, line: int) -> None:
        """Hold a SQL function until the tables and views its body may read exist (pg_dump
        creates functions first, relying on ``check_function_bodies = false``, a session
        setting that does not carry across `sql -f`'s transactions)."""
        self.deferred.append((name, sql, line, self._pending))
        self._pending = []
        self.held[name] = []

    def _held_with(self, item: Item) -> str | None:
        """The deferred function an OWNER TO / GRANT / COMMENT statement names: it is held
        back with it (it cannot run before the function exists)."""
        if item.parsed.node_type not in _FOLLOWS_FUNCTION:
            return None
        lower = item.text.lower()
        return next((name for name, *_ in self.deferred
                     if re.search(rf"\b{re.escape(name.lower())}\s*\(", lower)), None)

    def _release_functions(self, item: Item | None) -> None:
        if not self.deferred:
            return
        lower = item.text.lower() if item is not None and item.data is None and \
            item.parsed.node_type != "InsertStmt" else None
        keep = []
        for name, sql, line, notes in self.deferred:
            calls = lower is not None and re.search(rf"\b{re.escape(name.lower())}\s*\(", lower)
            if item is not None and not calls:
                keep.append((name, sql, line, notes))
                continue
            self._pending = notes + self._pending
            self.slots.append(Slot(sql, None, None, self._pending, line))
            self._pending = []
            self.slots.extend(self.held.pop(name, []))
        self.deferred = keep

    def finish(self) -> Conversion:
        out = Conversion(changes=self.changes, kept=self.kept)
        for slot in self.slots:
            if slot.table is not None:
                sql = deparse(slot.table.stmt)
                if sql == slot.table.original:  # unchanged: keep the author's text
                    sql = slot.table.item.text
            elif slot.sql is not None:
                sql = slot.sql
            else:
                continue
            index = len(out.statements)
            out.statements.append(sql)
            out.lines.append(slot.line)
            if slot.notes:
                out.notes[index] = slot.notes
            if slot.data is not None:
                out.data[index] = slot.data
        out.trailer = self._pending
        return out


_RELATION_NODES = frozenset({"CreateStmt", "ViewStmt", "CreateTableAsStmt"})
_FOLLOWS_FUNCTION = frozenset({"AlterOwnerStmt", "GrantStmt", "CommentStmt",
                               "AlterFunctionStmt"})


# -- pass 1 ----------------------------------------------------------------------------------


Collector = Callable[[Converter, Item, Any], None]
COLLECTORS: dict[type[ast.Node], Collector] = {}


def collector(*types: type[ast.Node]) -> Callable[[Collector], Collector]:
    def register(func: Collector) -> Collector:
        for t in types:
            COLLECTORS[t] = func
        return func
    return register


def collect(cv: Converter, item: Item) -> None:
    if item.parsed.node_type in ("InsertStmt", "SelectStmt", "UpdateStmt", "DeleteStmt"):
        return  # data: nothing to learn, and large
    if item.parsed.node_type == "CopyStmt":
        rel = (item.parsed.node or {}).get("relation") or {}
        cv.facts.copied.add((rel.get("schemaname") or "public", str(rel.get("relname"))))
        return
    node = cv.tree(item)
    func = COLLECTORS.get(type(node)) if node is not None else None
    if func is not None:
        func(cv, item, node)


@collector(ast.CreateStmt)
def _collect_table(cv: Converter, item: Item, node: Any) -> None:
    key = _rel_key(node.relation)
    cv.facts.written[key] = (node.relation.schemaname, node.relation.relname)
    cv.facts.tables.add(key)
    cv.facts.columns[key] = [str(e.colname) for e in node.tableElts or ()
                             if isinstance(e, ast.ColumnDef)]
    if node.partspec is not None:
        cv.facts.partitioned.add(key)
    if node.partbound is not None and node.inhRelations:
        cv.facts.parent[key] = _rel_key(node.inhRelations[0])


@collector(ast.AlterTableStmt)
def _collect_alter(cv: Converter, item: Item, node: Any) -> None:
    key = _rel_key(node.relation)
    for cmd in node.cmds or ():
        if cmd.subtype == AT.AT_AttachPartition and isinstance(cmd.def_, ast.PartitionCmd):
            child = _rel_key(cmd.def_.name)
            if node.objtype == OT.OBJECT_INDEX:
                cv.facts.attached_indexes.add(child)
            else:
                cv.facts.parent[child] = key
        elif cmd.subtype == AT.AT_ColumnDefault and cmd.def_ is not None:
            seq = _nextval_sequence(cmd.def_)
            if seq is not None:
                cv.facts.defaults[(key, cmd.name)] = seq
        elif cmd.subtype == AT.AT_AddIdentity and isinstance(cmd.def_, ast.Constraint):
            for o in cmd.def_.options or ():
                if o.defname == "sequence_name":
                    cv.facts.identity[_name_key(_svals(o.arg))] = (key, cmd.name)


@collector(ast.AlterSeqStmt)
def _collect_alter_seq(cv: Converter, item: Item, node: Any) -> None:
    for o in node.options or ():
        if o.defname == "owned_by":
            names = _svals(o.arg)
            if len(names) >= 2:
                cv.facts.owned[_rel_key(node.sequence)] = (_name_key(names[:-1]), names[-1])


@collector(ast.CreateSeqStmt)
def _collect_seq(cv: Converter, item: Item, node: Any) -> None:
    cv.facts.sequences[_rel_key(node.sequence)] = node


@collector(ast.CreateEnumStmt)
def _collect_enum(cv: Converter, item: Item, node: Any) -> None:
    cv.facts.enums[_name_key(_svals(node.typeName))] = _svals(node.vals)


@collector(ast.CreateDomainStmt)
def _collect_domain(cv: Converter, item: Item, node: Any) -> None:
    cv.facts.domains.add(_name_key(_svals(node.domainname)))


@collector(ast.CreateRoleStmt)
def _collect_role(cv: Converter, item: Item, node: Any) -> None:
    cv.facts.roles.add(node.role)


@collector(ast.CreateFunctionStmt)
def _collect_function(cv: Converter, item: Item, node: Any) -> None:
    if _language(node) != "sql" or node.is_procedure:
        cv.facts.removed_functions.add(_svals(node.funcname)[-1])


@collector(ast.CreateTableAsStmt)
def _collect_ctas(cv: Converter, item: Item, node: Any) -> None:
    if node.objtype == OT.OBJECT_MATVIEW:
        cv.facts.matviews.add(_rel_key(node.into.rel))


def _nextval_sequence(expr: Any) -> Key | None:
    for n in _walk(expr):
        if isinstance(n, ast.FuncCall) and _func_name(n) == "nextval" and n.args:
            for c in _walk(n.args[0]):
                if isinstance(c, ast.A_Const) and isinstance(c.val, ast.String):
                    return _regclass_key(str(c.val.sval))
    return None


def _language(node: Any) -> str:
    for o in node.options or ():
        if o.defname == "language" and isinstance(o.arg, ast.String):
            return str(o.arg.sval).lower()
    return "sql"


def serial_column(cv: Converter, seq: Key) -> tuple[Key, str] | None:
    """The column a sequence numbers as pg_dump spells SERIAL or identity, if it becomes an
    identity column here (its table is created by the script, and is not a partition)."""
    target = cv.facts.identity.get(seq)
    if target is None:
        owner = cv.facts.owned.get(seq)
        if owner is not None and cv.facts.defaults.get(owner) == seq:
            target = owner
    if target is None or target[0] not in cv.facts.tables or target[0] in cv.facts.parent:
        return None
    return target


# -- pass 2: dispatch ------------------------------------------------------------------------


Handler = Callable[[Converter, Item, Any], None]
HANDLERS: dict[type[ast.Node], Handler] = {}


def handler(*types: type[ast.Node]) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        for t in types:
            HANDLERS[t] = func
        return func
    return register


def handle(cv: Converter, item: Item) -> None:
    p = item.parsed
    if p.error is not None and item.text.startswith("\\"):
        cv.remove(item, "a psql meta-command (" + item.text.split()[0] + ")",
                  "connect to the DSQL cluster's database postgres instead" if
                  item.text.split()[0] in ("\\c", "\\connect") else None)
        return
    if p.node_type in ("InsertStmt", "CopyStmt"):
        _data(cv, item)
        return
    if p.node_type in ("UpdateStmt", "DeleteStmt"):
        cv.emit(item.text)
        return
    node = cv.tree(item)
    if node is None:
        line, column = p.statement.position_of(p.error.offset) if p.error else (p.line, 1)
        raise SourceError(f"{item.source}:{line}:{column}: does not parse as PostgreSQL: "
                          f"{p.error.message if p.error else 'empty statement'}",
                          hint="fix the statement (or remove it) and convert again; a MySQL "
                          "script needs --from mysql")
    func = HANDLERS.get(type(node))
    if func is None:
        cv.emit(item.text)
        return
    func(cv, item, node)


# -- session and database statements ---------------------------------------------------------


@handler(ast.VariableSetStmt)
def _set(cv: Converter, item: Item, node: Any) -> None:
    name = (node.name or "").lower()
    if name == "search_path":
        cv.remove(item, "SET search_path is " + _SESSION + "; unqualified names go to public",
                  "qualify names in the application, or set search_path per connection")
        return
    cv.remove(item, _SESSION.capitalize() + "; the statements below do not depend on it")


@handler(ast.CreatedbStmt, ast.DropdbStmt)
def _database(cv: Converter, item: Item, node: Any) -> None:
    cv.remove(item, _ONE_DB, "connect to database postgres; use schemas to separate "
              "applications", rule="unsupported_create_database")


@handler(ast.TransactionStmt)
def _transaction(cv: Converter, item: Item, node: Any) -> None:
    cv.remove(item, "transaction control: `dsql-migrate sql -f` runs each statement in its own "
              "transaction (DSQL allows one DDL statement per transaction, never with DML)",
              "none for a schema/data load; group DML in the application where it must be "
              "atomic")


@handler(ast.VacuumStmt)
def _vacuum(cv: Converter, item: Item, node: Any) -> None:
    if node.is_vacuumcmd:
        cv.remove(item, "VACUUM: DSQL manages storage itself", rule="unsupported_vacuum")
    else:
        cv.emit(item.text)


@handler(ast.SelectStmt)
def _select(cv: Converter, item: Item, node: Any) -> None:
    calls = [n for t in node.targetList or () for n in _walk(t)
             if isinstance(n, ast.FuncCall)]
    names = {_func_name(c) for c in calls}
    if node.fromClause is None and names & {"set_config"}:
        cv.remove(item, "set_config(): " + _SESSION)
        return
    setval = next((c for c in calls if _func_name(c) == "setval"), None)
    if setval is not None and node.fromClause is None and setval.args:
        _setval(cv, item, setval)
        return
    if names & {"pg_advisory_lock", "pg_try_advisory_lock", "pg_advisory_unlock"}:
        cv.remove(item, "advisory locks do not exist on DSQL", rule="advisory_lock")
        return
    cv.emit(item.text)


def _setval(cv: Converter, item: Item, call: Any) -> None:
    arg = call.args[0]
    const: Any = next((n for n in _walk(arg) if isinstance(n, ast.A_Const)
                       and isinstance(n.val, ast.String)), None)
    target = serial_column(cv, _regclass_key(const.val.sval)) if const is not None else None
    if target is None:
        cv.emit(item.text)
        return
    (table, column), rest = target, list(call.args[1:])
    args = ", ".join([f"pg_catalog.pg_get_serial_sequence({quote_literal(cv.facts.spell(table))}, "
                      f"{quote_literal(column)})"] + [deparse(a) for a in rest])
    cv.note(item, Action.CONVERTED, f"the sequence is now {_display(table)}.{column}'s "
            "identity: setval() names it through pg_get_serial_sequence()")
    cv.emit(f"SELECT pg_catalog.setval({args})")


# -- types, extensions, functions, triggers --------------------------------------------------


@handler(ast.CreateEnumStmt)
def _enum(cv: Converter, item: Item, node: Any) -> None:
    key = _name_key(_svals(node.typeName))
    cv.note(item, Action.CHANGED, f"enum type {_display(key)} removed (DSQL has no CREATE "
            "TYPE): its columns become text with a CHECK of the labels. Text sorts "
            "alphabetically, not in the labels' order", rule="unsupported_create_type",
            follow_up="ORDER BY an enum column in the application needs a CASE over the labels;"
            " adding a label later means replacing the CHECK")
    cv._touched = True


@handler(ast.AlterEnumStmt)
def _alter_enum(cv: Converter, item: Item, node: Any) -> None:
    cv.note(item, Action.FLAGGED, "ALTER TYPE on an enum: the enum is a CHECK constraint now; "
            "replace the CHECK (drop and add it NOT VALID, then validate)",
            rule="unsupported_alter_type")
    cv.emit(item.text)


@handler(ast.CompositeTypeStmt, ast.CreateRangeStmt, ast.DefineStmt)
def _create_type(cv: Converter, item: Item, node: Any) -> None:
    if isinstance(node, ast.DefineStmt) and node.kind != OT.OBJECT_TYPE:
        cv.note(item, Action.FLAGGED, "user-defined aggregates, operators and collations are "
                "not supported by DSQL", follow_up="compute it in the application")
        cv.emit(item.text)
        return
    cv.note(item, Action.FLAGGED, "composite and range types are not supported by DSQL "
            "(CREATE TYPE)", rule="unsupported_create_type",
            follow_up="store the fields as columns (or json) and adapt the columns using it")
    cv.emit(item.text)


@handler(ast.CreateExtensionStmt)
def _extension(cv: Converter, item: Item, node: Any) -> None:
    follow = {"plpgsql": None,
              "pgcrypto": "gen_random_uuid() is built in; digest()/crypt() move to the "
              "application",
              "uuid-ossp": "uuid_generate_v4() calls become gen_random_uuid() here; others "
              "move to the application",
              "vector": "vector columns are flagged below: store embeddings elsewhere"}
    cv.remove(item, f"extension {node.extname}: DSQL has no extensions",
              follow.get(node.extname, "replace what the script uses from it"),
              rule="unsupported_create_extension")


@handler(ast.CreateFunctionStmt)
def _function(cv: Converter, item: Item, node: Any) -> None:
    name = ".".join(_svals(node.funcname))
    if node.is_procedure:
        cv.remove(item, f"procedure {name}: DSQL has no procedures",
                  "run its statements from the application", rule="unsupported_create_procedure")
    elif _type_name(node.returnType) in ("trigger", "event_trigger"):
        cv.remove(item, f"trigger function {name}: {_NO_TRIGGERS}",
                  "do its work in the application where the table is written",
                  rule="unsupported_create_trigger")
    elif _language(node) != "sql":
        cv.remove(item, f"function {name} in LANGUAGE {_language(node)}: DSQL runs SQL "
                  "functions only", "rewrite it as LANGUAGE sql, or move it to the "
                  "application", rule="unsupported_create_function_non_sql")
    elif cv.position < cv.last_relation:
        notes = rewrite_types(cv, node)
        cv.note(item, Action.CONVERTED, "moved after the tables and views its body may read "
                "(the source created it first with check_function_bodies = false, a session "
                "setting `sql -f` cannot keep)" + ("; " + "; ".join(notes) if notes else ""))
        cv.defer_function(_svals(node.funcname)[-1], deparse(node), item.line)
    else:
        _emit_rewritten(cv, item, node)


@handler(ast.CreateTrigStmt, ast.CreateEventTrigStmt)
def _trigger(cv: Converter, item: Item, node: Any) -> None:
    what = getattr(node, "trigname", None) or "event trigger"
    cv.remove(item, f"trigger {what}: {_NO_TRIGGERS}",
              "do what the trigger did in the application, in the same transaction as the "
              "write", rule="unsupported_create_trigger")


@handler(ast.DoStmt)
def _do(cv: Converter, item: Item, node: Any) -> None:
    cv.remove(item, "DO block: DSQL has no procedural languages",
              "run its statements from the application", rule="unsupported_do")


@handler(ast.CreatePolicyStmt, ast.AlterPolicyStmt)
def _policy(cv: Converter, item: Item, node: Any) -> None:
    cv.remove(item, "row-level security policy: DSQL has no row-level security",
              "filter rows in the application (or through views)",
              rule="unsupported_create_policy")


@handler(ast.RuleStmt)
def _rule(cv: Converter, item: Item, node: Any) -> None:
    cv.remove(item, f"rule {node.rulename}: DSQL has no rules", "do the work in the "
              "application", rule="unsupported_create_rule")


@handler(ast.CreatePublicationStmt, ast.CreateSubscriptionStmt, ast.AlterPublicationStmt)
def _publication(cv: Converter, item: Item, node: Any) -> None:
    cv.remove(item, "logical replication is not available on DSQL",
              "use a DSQL CDC stream (DSQL.md §8) to follow changes")


@handler(ast.CreateStatsStmt)
def _statistics(cv: Converter, item: Item, node: Any) -> None:
    if cv.profile.allows(Capability.STATISTICS):
        cv.emit(item.text)
    else:
        cv.remove(item, "extended statistics need the current profile", None,
                  rule="unsupported_statistics")


@handler(ast.RefreshMatViewStmt)
def _refresh(cv: Converter, item: Item, node: Any) -> None:
    cv.remove(item, "REFRESH MATERIALIZED VIEW: the materialized view is a plain view here, "
              "always current", rule="unsupported_materialized_view")


@handler(ast.CreateTableAsStmt)
def _ctas(cv: Converter, item: Item, node: Any) -> None:
    if node.objtype != OT.OBJECT_MATVIEW:
        cv.note(item, Action.FLAGGED, "CREATE TABLE ... AS is not supported by DSQL",
                rule="create_table_as", follow_up="create the table, then INSERT ... SELECT "
                "in batches")
        cv.emit(item.text)
        return
    view = ast.ViewStmt(view=node.into.rel, query=node.query, replace=False,
                        withCheckOption=enums.ViewCheckOption.NO_CHECK_OPTION)
    cv.note(item, Action.CHANGED, "materialized view became a plain view: it computes its "
            "rows on every query (always current, maybe slower)",
            rule="unsupported_materialized_view",
            follow_up="if the query is expensive, keep a table the application refreshes")
    cv.emit(deparse(view))


# -- roles -----------------------------------------------------------------------------------

#: role options DSQL's IAM-based roles keep; the rest (PASSWORD, SUPERUSER, ...) do not apply
_ROLE_OPTIONS = frozenset({"canlogin", "inherit", "rolemembers", "addroleto", "connectionlimit"})


@handler(ast.CreateRoleStmt, ast.AlterRoleStmt)
def _role(cv: Converter, item: Item, node: Any) -> None:
    name = node.role if isinstance(node, ast.CreateRoleStmt) else node.role.rolename
    dropped = sorted({o.defname for o in node.options or () if o.defname not in _ROLE_OPTIONS})
    # never echo a password (hash) into the script or the report
    preview = re.sub(r"(?i)(PASSWORD\s+)'(?:[^']|'')*'", r"\1'***'", item.preview)
    if isinstance(node, ast.AlterRoleStmt) and name not in cv.facts.roles:
        cv.remove(item, f"alters role {name}, which the script does not create",
                  f"create role {name} on the cluster if the application needs it",
                  preview=preview)
        return
    if not dropped:
        cv.emit(item.text)
        return
    node.options = tuple(o for o in node.options or () if o.defname in _ROLE_OPTIONS)
    if isinstance(node, ast.AlterRoleStmt) and not node.options:
        cv.remove(item, f"role options DSQL does not use ({', '.join(dropped)})",
                  "roles sign in with IAM tokens: AWS IAM GRANT the role to an IAM role",
                  preview=preview)
        return
    cv.note(item, Action.CHANGED, f"role {name}: {', '.join(dropped)} removed (DSQL roles "
            "sign in with IAM tokens, not passwords, and have no superuser)",
            follow_up=f"AWS IAM GRANT {name} TO '<IAM role ARN>'", preview=preview)
    cv.emit(deparse(node))


# -- grants, owners, comments ----------------------------------------------------------------


def _known_role(cv: Converter, spec: Any) -> bool:
    if spec is None or spec.roletype != enums.RoleSpecType.ROLESPEC_CSTRING:
        return True  # PUBLIC, CURRENT_USER, SESSION_USER
    return spec.rolename in cv.facts.roles or spec.rolename == "admin"


@handler(ast.GrantStmt)
def _grant(cv: Converter, item: Item, node: Any) -> None:
    gone = [why for o in node.objects or () if (why := removed_object(
        cv, node.objtype, [o.schemaname, o.relname] if isinstance(o, ast.RangeVar) else o))]
    if gone and len(gone) == len(node.objects or ()):
        cv.remove(item, f"grants on an object this conversion removes: {gone[0]}")
        return
    unknown = [g.rolename for g in node.grantees or () if not _known_role(cv, g)]
    if not unknown:
        cv.emit(item.text)
        return
    known = tuple(g for g in node.grantees or () if _known_role(cv, g))
    follow = (f"create role(s) {', '.join(unknown)} on the cluster (CREATE ROLE ... WITH LOGIN; "
              "AWS IAM GRANT ...), then run this grant")
    if not known:
        cv.remove(item, f"grant to role(s) the script does not create: {', '.join(unknown)}",
                  follow)
        return
    node.grantees = known
    cv.note(item, Action.CHANGED, f"grantee(s) {', '.join(unknown)} left out: the script does "
            "not create them", follow_up=follow)
    cv.emit(deparse(node))


@handler(ast.GrantRoleStmt, ast.AlterDefaultPrivilegesStmt)
def _grant_role(cv: Converter, item: Item, node: Any) -> None:
    specs = [n for n in _walk(node) if isinstance(n, ast.RoleSpec)]
    names = [str(a.rolename) for a in specs if not _known_role(cv, a)]
    if isinstance(node, ast.GrantRoleStmt):
        names += [str(r.sval) for r in _walk(node.granted_roles) if isinstance(r, ast.String)
                  and r.sval not in cv.facts.roles]
    if names:
        cv.remove(item, f"names role(s) the script does not create: {', '.join(names)}",
                  "create the roles on the cluster first, then run it")
    else:
        cv.emit(item.text)


def removed_object(cv: Converter, objtype: Any, target: Any) -> str | None:
    """Why the object a statement names (an OWNER TO, a GRANT, a COMMENT) is not in the
    output, or None when it is."""
    names = _svals(getattr(target, "objname", None) or getattr(target, "names", None)
                   or target) if isinstance(target, (ast.Node, tuple, list)) else []
    if not names and isinstance(target, ast.String):
        names = [str(target.sval)]
    if not names:
        return None
    if objtype in (OT.OBJECT_TYPE, OT.OBJECT_DOMAIN) and _name_key(names) in cv.facts.enums:
        return "the enum type is removed (its columns are text + CHECK)"
    if objtype in (OT.OBJECT_FUNCTION, OT.OBJECT_PROCEDURE) and \
            names[-1] in cv.facts.removed_functions:
        return "the function is removed"
    if objtype == OT.OBJECT_SEQUENCE and serial_column(cv, _name_key(names)) is not None:
        return "the sequence became an identity column"
    if objtype == OT.OBJECT_TABLE and _name_key(names) in cv.facts.parent:
        return "the partition is folded into its parent"
    return None


@handler(ast.AlterOwnerStmt)
def _owner(cv: Converter, item: Item, node: Any) -> None:
    gone = removed_object(cv, node.objectType, node.object)
    if gone:
        cv.remove(item, f"changes the owner of an object this conversion removes: {gone}")
        return
    if _known_role(cv, node.newowner):
        cv.emit(item.text)
    else:
        cv.remove(item, f"OWNER TO {node.newowner.rolename}: the script does not create that "
                  "role; objects belong to the role that runs the script",
                  f"create role {node.newowner.rolename} and change the owner if it matters")


@handler(ast.CommentStmt)
def _comment(cv: Converter, item: Item, node: Any) -> None:
    target = node.object
    if node.objtype == OT.OBJECT_EXTENSION:
        cv.remove(item, "comment on an extension: the extension is removed")
        return
    gone = removed_object(cv, node.objtype, target)
    if gone:
        cv.remove(item, f"comment on an object this conversion removes: {gone}")
        return
    if node.objtype == OT.OBJECT_MATVIEW:
        node.objtype = OT.OBJECT_VIEW
        cv.note(item, Action.CONVERTED, "COMMENT ON MATERIALIZED VIEW became COMMENT ON VIEW")
        cv.emit(deparse(node))
        return
    if node.objtype in (OT.OBJECT_TABLE, OT.OBJECT_COLUMN):
        names = _svals(target if isinstance(target, tuple) else getattr(target, "names", ()))
        rel = _name_key(names if node.objtype == OT.OBJECT_TABLE else names[:-1])
        if rel in cv.facts.parent:
            cv.remove(item, f"comment on partition {_display(rel)}: its rows are in "
                      f"{_display(cv.facts.root(rel))}")
            return
    if node.objtype in (OT.OBJECT_TYPE, OT.OBJECT_DOMAIN):
        names = _svals(getattr(target, "names", ()))
        if names and _name_key(names) in cv.facts.enums:
            cv.remove(item, "comment on an enum type: the type is removed (its columns are text)")
            return
    if node.objtype in (OT.OBJECT_FUNCTION, OT.OBJECT_PROCEDURE, OT.OBJECT_TRIGGER,
                        OT.OBJECT_POLICY, OT.OBJECT_RULE):
        what = _svals(getattr(target, "objname", None) or target) if target else []
        if node.objtype != OT.OBJECT_FUNCTION or (what and what[-1] in
                                                  cv.facts.removed_functions):
            cv.remove(item, "comment on an object this conversion removes")
            return
    cv.emit(item.text)


# -- sequences -------------------------------------------------------------------------------


def legal_cache(cv: Converter, cache: int | None) -> tuple[int, str | None]:
    """A CACHE DSQL accepts (1 or >= 65536) and a note when it differs from ``cache``."""
    large = cv.profile.limits.min_large_cache
    if cache is None:
        return 1, "CACHE 1 made explicit (DSQL requires it; PostgreSQL's default)"
    if cache == 1 or cache >= large:
        return cache, None
    return large, (f"CACHE {cache} became CACHE {large} (DSQL accepts 1 or >= {large}): "
                   "values are still unique, but gaps between sessions grow")


def _sequence_options(cv: Converter, options: Any, notes: list[str]) -> tuple[Any, ...]:
    out = []
    for o in options or ():
        if o.defname == "as":
            kind = _type_name(o.arg)
            if kind != "int8":
                notes.append(f"AS {kind} removed: DSQL sequences are bigint (the maximum "
                             "grows to 2^63-1 unless MAXVALUE says otherwise)")
            continue
        if o.defname == "cache":
            continue
        out.append(o)
    cache, note = legal_cache(cv, _int_option(options, "cache"))
    if note:
        notes.append(note)
    out.append(ast.DefElem(defname="cache", arg=ast.Integer(ival=cache),
                               defaction=enums.DefElemAction.DEFELEM_UNSPEC))
    return tuple(out)


@handler(ast.CreateSeqStmt)
def _create_seq(cv: Converter, item: Item, node: Any) -> None:
    key = _rel_key(node.sequence)
    target = serial_column(cv, key)
    if target is not None:
        cv.note(item, Action.CONVERTED, f"sequence {_display(key)} numbers "
                f"{_display(target[0])}.{target[1]}: that column is an identity column now "
                "(DSQL's way), with this sequence's options")
        return
    notes: list[str] = []
    node.options = _sequence_options(cv, node.options, notes)
    if notes:
        cv.note(item, Action.CONVERTED, "; ".join(notes), rule="sequence_cache")
    cv.emit(deparse(node))


@handler(ast.AlterSeqStmt)
def _alter_seq(cv: Converter, item: Item, node: Any) -> None:
    key = _rel_key(node.sequence)
    if serial_column(cv, key) is not None:
        cv.note(item, Action.CONVERTED, "the sequence became an identity column: its "
                "OWNED BY is implied")
        return
    if any(o.defname in ("cache", "as") for o in node.options or ()):
        notes: list[str] = []
        node.options = _sequence_options(cv, node.options, notes)
        cv.note(item, Action.CONVERTED, "; ".join(notes) or "CACHE made legal",
                rule="sequence_cache")
        cv.emit(deparse(node))
        return
    cv.emit(item.text)


# -- data ------------------------------------------------------------------------------------


_IDENT = r'(?:"(?:[^"]|"")*"|[A-Za-z_][\w$]*)'
_QUALIFIED = re.compile(rf"{_IDENT}(?:\s*\.\s*{_IDENT})?")


def _data(cv: Converter, item: Item) -> None:
    """COPY / INSERT: kept as written; rows into a partition go to its root table."""
    node = item.parsed.node or {}
    rel = node.get("relation") or {}
    key = (rel.get("schemaname") or "public", str(rel.get("relname")))
    text = item.text
    if key in cv.facts.parent:
        root = cv.facts.root(key)
        start = item.parsed.char_offset(rel.get("location"))
        m = _QUALIFIED.match(text, start)
        if m is None:  # pragma: no cover - pglast's location always points at the name
            raise SourceError(f"{item.where}: cannot find the table name to retarget")
        columns = ""
        has_cols = node.get("attlist") if item.parsed.node_type == "CopyStmt" else \
            node.get("cols")
        if not has_cols and key in cv.facts.columns:
            columns = " (" + ", ".join(quote_ident(c) for c in cv.facts.columns[key]) + ")"
        text = text[:m.start()] + cv.facts.spell(root) + columns + text[m.end():]
        cv.note(item, Action.CONVERTED, f"rows of partition {_display(key)} go to "
                f"{_display(root)} (partitions are folded into one table)")
    _note_split(cv, item, node)
    cv.emit(text, data=item.data)


def _note_split(cv: Converter, item: Item, node: Any) -> None:
    """A data statement over the rows per transaction: `sql -f` runs it in parts."""
    if item.data is not None:
        rows = item.data.count("\n") - 1  # the data lines, without the closing \.
    else:
        select = (node.get("selectStmt") or {}).get("SelectStmt") or {}
        rows = len(select.get("valuesLists") or ())
    limit = cv.profile.limits.rows_per_transaction
    if rows > limit:
        cv.note(item, Action.SPLIT, f"{rows:,} rows: `dsql-migrate sql -f` runs them in "
                f"transactions of at most {limit:,} rows (and bytes within the limit), each "
                "committed on its own: the statement is no longer atomic, and a rerun resumes "
                "after the last committed part")


@handler(ast.TruncateStmt)
def _truncate(cv: Converter, item: Item, node: Any) -> None:
    for rel in node.relations:
        rel.inh = True
    sql = "; ".join(f"DELETE FROM {deparse(rel)}" for rel in node.relations)
    cv.note(item, Action.CHANGED, "TRUNCATE became DELETE (DSQL has no TRUNCATE): on a table "
            "over 3,000 rows it fails at the row limit", rule="truncate",
            follow_up="delete in batches, or drop and recreate the table")
    for part in sql.split("; "):
        cv.emit(part)


@handler(ast.DropStmt)
def _drop(cv: Converter, item: Item, node: Any) -> None:
    removed_types = {OT.OBJECT_TYPE: "type", OT.OBJECT_TRIGGER: "trigger",
                     OT.OBJECT_EXTENSION: "extension", OT.OBJECT_POLICY: "policy",
                     OT.OBJECT_RULE: "rule", OT.OBJECT_MATVIEW: "materialized view",
                     OT.OBJECT_PROCEDURE: "procedure"}
    if node.removeType in removed_types:
        cv.remove(item, f"DROP of a {removed_types[node.removeType]}: this conversion creates "
                  "none (enums are text + CHECK, triggers and extensions are removed)")
        return
    if node.removeType == OT.OBJECT_TABLE:
        names = [_name_key(_svals(o)) for o in node.objects or ()]
        if names and all(n in cv.facts.parent for n in names):
            cv.remove(item, "DROP of a partition: partitions are folded into their parent")
            return
    if node.removeType == OT.OBJECT_FUNCTION:
        funcs = [_svals(getattr(o, "objname", ()))[-1:] for o in node.objects or ()]
        if funcs and all(n and n[0] in cv.facts.removed_functions for n in funcs):
            cv.remove(item, "DROP of a function this conversion removes")
            return
    cv.emit(item.text)


# -- views and SQL functions: type names inside expressions ----------------------------------


def rewrite_types(cv: Converter, node: Any) -> list[str]:
    """Casts to enum types become casts to text; ``uuid_generate_v4()``/PostgreSQL 18's
    ``uuidv7()`` become ``gen_random_uuid()``. Returns notes for what changed."""
    notes: list[str] = []
    for n in _walk(node):
        if isinstance(n, ast.TypeName) and not n.arrayBounds:
            key = _name_key(_svals(n.names))
            if key in cv.facts.enums:
                n.names, n.typmods = (ast.String(sval="text"),), None
        elif isinstance(n, ast.FuncCall) and _func_name(n) in ("uuid_generate_v4", "uuidv4"):
            n.funcname, n.args = (ast.String(sval="gen_random_uuid"),), None
            notes.append(f"{_func_name(n)}() became gen_random_uuid() (the same random UUIDs)")
        elif isinstance(n, ast.FuncCall) and _func_name(n) == "uuidv7":
            n.funcname, n.args = (ast.String(sval="gen_random_uuid"),), None
            notes.append("uuidv7() (PostgreSQL 18) became gen_random_uuid(): DSQL is "
                         "PostgreSQL 16 compatible; the UUIDs are random (v4), not time-ordered")
    return notes


def _emit_rewritten(cv: Converter, item: Item, node: Any) -> None:
    before = deparse(node)
    notes = rewrite_types(cv, node)
    after = deparse(node)
    if after != before:
        cv.note(item, Action.CHANGED if any("uuidv7" in n for n in notes) else
                Action.CONVERTED, "; ".join(notes) or "casts to enum types became casts to "
                "text (the enums are text + CHECK)")
        cv.emit(after)
    else:
        cv.emit(item.text)


@handler(ast.ViewStmt)
def _view(cv: Converter, item: Item, node: Any) -> None:
    _emit_rewritten(cv, item, node)


@handler(ast.CreateDomainStmt)
def _domain(cv: Converter, item: Item, node: Any) -> None:
    labels = cv.facts.enums.get(_name_key(_svals(node.typeName.names)))
    if labels is None or node.typeName.arrayBounds:
        _emit_rewritten(cv, item, node)
        return
    check: Any = parse_sql("CREATE DOMAIN d AS text CHECK (VALUE IN ("
                           + ", ".join(quote_literal(v) for v in labels) + "))")[0].stmt
    node.typeName = check.typeName
    node.constraints = (*(node.constraints or ()), *check.constraints)
    cv.note(item, Action.CHANGED, "a domain over an enum became text + CHECK of the labels "
            "(text sorts alphabetically, not in the labels' order)", rule="unsupported_create_type")
    cv.emit(deparse(node))


# the table and index handlers register themselves on import
from . import pgtables  # noqa: E402,F401,I001


# -- entry points ----------------------------------------------------------------------------


def convert_items(items: list[Item], profile: Profile, source: str) -> Conversion:
    conversion = Converter(profile, source).run(items)
    verify(conversion, profile, source)
    return conversion


def convert_postgresql(text: str, source: str, profile: Profile) -> Conversion:
    """Convert a pg_dump / psql script (see the module docstring)."""
    return convert_items(items_from_script(_pg18(text), source), profile, source)


def convert_statements(statements: Iterable[tuple[int, str]], source: str, profile: Profile,
                       changes: Iterable[Change] = ()) -> Conversion:
    """Convert PostgreSQL statements another front end produced (``(line, sql)`` in order);
    ``changes`` are that front end's report entries, kept first in the report."""
    conversion = convert_items(items_from_statements(statements, source), profile, source)
    front = list(changes)
    conversion.changes[:0] = front
    _place_notes(conversion, front)
    return conversion


def comment_for(change: Change) -> str:
    """The script's comment line for one report entry (above the statement it concerns)."""
    where = f"{change.source}:{change.line}"
    text = f"-- {change.action.value} ({where}): "
    if change.action is Action.REMOVED:
        text += f"{change.statement}: "
    text += change.message + (f" Follow-up: {change.follow_up}" if change.follow_up else "")
    return " ".join(text.split())


def _place_notes(conversion: Conversion, changes: list[Change]) -> None:
    """A front end's entries as comments in the script too, as the converter's own are: above
    the first statement from that source line on (a removed statement's note stands where it
    was), or at the end."""
    exact: dict[int, int] = {}
    for i, line in enumerate(conversion.lines):
        exact.setdefault(line, i)
    # a front end may move statements (MySQL's foreign keys go last): the first statement in
    # output order among those from line L on is the suffix minimum over lines sorted
    by_line = sorted((line, i) for i, line in enumerate(conversion.lines))
    keys = [line for line, _ in by_line]
    first_from = [len(conversion.statements)] * (len(by_line) + 1)
    for k in range(len(by_line) - 1, -1, -1):
        first_from[k] = min(by_line[k][1], first_from[k + 1])
    for change in reversed(changes):
        if change.action is Action.KEPT:
            continue
        index = exact.get(change.line, first_from[bisect.bisect_left(keys, change.line)])
        if index < len(conversion.statements):
            conversion.notes.setdefault(index, [])
            conversion.notes[index][:0] = [comment_for(change)]
        else:
            conversion.trailer.append(comment_for(change))


_VIRTUAL = re.compile(r"(GENERATED\s+ALWAYS\s+AS\s*\((?:[^()]|\([^()]*\))*\))\s+VIRTUAL\b",
                      re.IGNORECASE)


def _pg18(text: str) -> str:
    """PostgreSQL 18's virtual generated columns, which pglast (PostgreSQL 17's grammar) cannot
    parse, are read as stored ones; :func:`convert_items` notes them (see ``pgtables``)."""
    return _VIRTUAL.sub(lambda m: m.group(1) + " STORED /*VIRTUAL*/", text)


def verify(conversion: Conversion, profile: Profile, source: str) -> None:
    """Lint the output for the profile; each DSQL error left is flagged in the report."""
    script = "".join(s + ";\n" + conversion.data.get(i, "")
                     for i, s in enumerate(conversion.statements))
    result = lint_script(script, LintSettings.build(profile), path=source)
    starts = [s.line for s in result.statements]
    for d in result.diagnostics:
        if d.severity is not Severity.ERROR:
            continue
        index = max(bisect.bisect_right(starts, d.line) - 1, 0)
        text = result.statements[index].text if result.statements else ""
        line = conversion.lines[index] if index < len(conversion.lines) else 0
        conversion.changes.append(Change(
            Action.FLAGGED, source, line, " ".join(text.split())[:80],
            f"the converted statement still fails DSQL's rules: {d.message}", d.rule,
            d.suggestion))


__all__ = ["HANDLERS", "Converter", "convert_items", "convert_postgresql",
           "convert_statements", "deparse"]
