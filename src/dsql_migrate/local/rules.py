"""Which statements DSQL rejects (DSQL.md §1, §3), and what the proxy sends instead.

:func:`rewrite` takes the text of a simple-protocol Query or of a Parse message and returns
``None`` when it can go to PostgreSQL unchanged (the common case, decided by a keyword fast path
without parsing), or the text to send instead: rejected statements become a call of
``sys.dsql_error(sqlstate, message)``, which fails at execution exactly where the statement would
have, so transactions, pipelines and Sync behave as with any server error; ``CREATE INDEX ASYNC``
and ``ALTER TABLE ASYNC ... VALIDATE CONSTRAINT`` become a call that submits a job and returns its
``job_id``.

Statements are parsed with pglast's JSON output (a few microseconds) and checked by one function
per statement kind, registered with :func:`rule`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from pglast import parser

from ..profiles import Capability, Profile

Node = dict[str, Any]


#: an index a statement names: (schema or None when unqualified, name)
IndexName: TypeAlias = "tuple[str | None, str]"


@dataclass(frozen=True)
class Reject:
    sqlstate: str
    message: str


@dataclass
class Analysis:
    """What one statement does, as far as the proxy cares."""

    reject: Reject | None = None
    replacement: str | None = None
    dropped_indexes: list[IndexName] = field(default_factory=list)


@dataclass(frozen=True)
class Rewrite:
    """The outcome for a whole Query/Parse text."""

    sql: str | None  # None: send the original unchanged
    dropped_indexes: tuple[IndexName, ...] = ()


Check = Callable[[Node, Profile], "Reject | None"]
_RULES: dict[str, Check] = {}


def rule(kind: str) -> Callable[[Check], Check]:
    """Register the check for statements of pglast node type ``kind``."""

    def register(func: Check) -> Check:
        _RULES[kind] = func
        return func

    return register


def unsupported(construct: str) -> Reject:
    return Reject("0A000", f"{construct} is not supported")


# -- fast path ------------------------------------------------------------------------------

_FAST_FIRST = {"select", "insert", "update", "delete", "values", "show", "table", "with"}
_TXN_WORDS = {
    "begin", "commit", "end", "rollback", "abort", "start transaction", "begin transaction",
    "begin read write", "begin read only", "commit transaction", "rollback transaction",
    "begin work", "commit work", "rollback work",
}
#: substrings that send even a SELECT/INSERT to the full check
_NEEDLES = ("advisory", "into", "wait_for_job", ";", "--", "/*")
_NEEDLES_NO_INTO = ("advisory", "wait_for_job", ";", "--", "/*")
_FIRST_WORD = re.compile(r"\s*([A-Za-z]+)")


def needs_check(sql: str) -> bool:
    """False when ``sql`` certainly needs no rule (cheap: no parsing)."""
    match = _FIRST_WORD.match(sql)
    if match is None:
        return True
    first = match.group(1).lower()
    if first in _FAST_FIRST:
        lowered = sql.lower()
        body = lowered.rstrip().rstrip(";") if lowered.rstrip().endswith(";") else lowered
        needles = _NEEDLES if first in ("select", "with", "table", "values") else _NEEDLES_NO_INTO
        return any(n in body for n in needles)
    if first in ("begin", "commit", "end", "rollback", "abort", "start"):
        return " ".join(sql.lower().split()).rstrip(";").strip() not in _TXN_WORDS
    return True


def normalized_txn_word(sql: str) -> str:
    return " ".join(sql.lower().split()).rstrip(";").strip()


# -- ASYNC ----------------------------------------------------------------------------------

_ASYNC = re.compile(
    r"\b(CREATE\s+(?:UNIQUE\s+)?INDEX|ALTER\s+TABLE)\s+(ASYNC)\b", re.IGNORECASE
)


_EXPLICIT_USING = re.compile(r"\bON\s+(?:ONLY\s+)?[\w.\"]+\s+USING\b", re.IGNORECASE)


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quote_ident(name: str) -> str:
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


def _relation_name(rel: Node) -> str:
    parts = [rel.get("schemaname"), rel["relname"]]
    return ".".join(_quote_ident(p) for p in parts if p)


def _error_call(reject: Reject) -> str:
    return f"SELECT sys.dsql_error({_quote_literal(reject.sqlstate)}, " \
           f"{_quote_literal(reject.message)})"


# -- the entry point ------------------------------------------------------------------------


def rewrite(sql: str, profile: Profile) -> Rewrite:
    """What to send to PostgreSQL instead of ``sql`` (see the module docstring)."""
    if not needs_check(sql):
        return Rewrite(None)
    async_spans: list[tuple[int, int]] = []  # character offsets of ASYNC keywords

    def blank(match: re.Match[str]) -> str:
        async_spans.append((match.start(2), match.end(2)))
        return match.group(0)[: match.start(2) - match.start()] + " " * 5

    stripped = _ASYNC.sub(blank, sql)
    try:
        parsed = json.loads(parser.parse_sql_json(stripped))
    except Exception:  # a syntax error: PostgreSQL reports it as it would
        return Rewrite(None)
    raw = stripped.encode()
    async_bytes = [len(stripped[:start].encode()) for start, _ in async_spans]
    pieces: list[bytes] = []
    cursor = 0
    changed = False
    dropped: list[IndexName] = []
    for entry in parsed.get("stmts", []):
        start = entry.get("stmt_location", 0)
        length = entry.get("stmt_len", 0) or len(raw) - start
        stmt = entry["stmt"]
        asynced = next((b for b in async_bytes if start <= b < start + length), None)
        text = raw[start:start + length].decode()
        result = analyse(stmt, profile, text, None if asynced is None else asynced - start)
        dropped.extend(result.dropped_indexes)
        new_text: str | None = None
        if result.reject is not None:
            new_text = _error_call(result.reject)
        elif result.replacement is not None:
            new_text = result.replacement
        if new_text is not None:
            pieces.append(raw[cursor:start])
            pieces.append(new_text.encode())
            cursor = start + length
            changed = True
    if not changed:
        if async_spans:  # ASYNC where DSQL does not take it: let PostgreSQL say why
            return Rewrite(None, tuple(dropped))
        return Rewrite(None, tuple(dropped))
    pieces.append(raw[cursor:])
    return Rewrite(b"".join(pieces).decode(), tuple(dropped))


def analyse(stmt: Node, profile: Profile, text: str, async_at: int | None) -> Analysis:
    """Check one parsed statement; ``async_at`` is where ASYNC stood in ``text``, if anywhere."""
    (kind, node), = stmt.items()
    if async_at is not None:
        return _analyse_async(kind, node, profile, text, async_at)
    check = _RULES.get(kind)
    reject = check(node, profile) if check is not None else None
    if reject is None:
        reject = _advisory_locks(node) if "advisory" in text.lower() else None
    analysis = Analysis(reject=reject)
    if reject is None and kind == "DropStmt" and node.get("removeType") == "OBJECT_INDEX":
        analysis.dropped_indexes = [_index_name(_names(obj)) for obj in node.get("objects", [])]
    return analysis


def _index_name(names: list[str]) -> IndexName:
    return (names[-2] if len(names) >= 2 else None), names[-1]


def _names(obj: Node) -> list[str]:
    items = obj.get("List", {}).get("items", [])
    return [item["String"]["sval"] for item in items if "String" in item]


def _analyse_async(kind: str, node: Node, profile: Profile, text: str, at: int) -> Analysis:
    if kind == "IndexStmt":
        reject = check_index(node, profile)
        if reject is None and _EXPLICIT_USING.search(text):
            reject = unsupported("USING btree")
        if reject is not None:
            return Analysis(reject=reject)
        name = node.get("idxname")
        if name is None:
            return Analysis(reject=Reject("42601", "CREATE INDEX ASYNC requires an index name"))
        statement = text[:at] + "CONCURRENTLY" + text[at + 5:]
        call = (
            "SELECT job_id FROM sys._submit_job('INDEX_BUILD', "
            f"{_quote_literal(name)}, {_quote_literal(statement)}, "
            f"{_quote_literal(_relation_name(node['relation']))}, 1, "
            f"{'true' if node.get('if_not_exists') else 'false'})"
        )
        return Analysis(replacement=call)
    if kind == "AlterTableStmt":
        cmds = [c["AlterTableCmd"] for c in node.get("cmds", [])]
        if len(cmds) == 1 and cmds[0].get("subtype") == "AT_ValidateConstraint":
            if not profile.allows(Capability.VALIDATE_CONSTRAINT_ASYNC):
                return Analysis(reject=unsupported("ALTER TABLE ASYNC"))
            table = _relation_name(node["relation"])
            statement = f"ALTER TABLE {table} VALIDATE CONSTRAINT {_quote_ident(cmds[0]['name'])}"
            call = (
                "SELECT job_id FROM sys._submit_job('CONSTRAINT_VALIDATION', "
                f"{_quote_literal(cmds[0]['name'])}, {_quote_literal(statement)}, "
                f"{_quote_literal(table)}, 0)"
            )
            return Analysis(replacement=call)
        return Analysis(reject=Reject(
            "0A000", "ALTER TABLE ASYNC supports only VALIDATE CONSTRAINT"))
    return Analysis(reject=Reject("42601", "syntax error at or near \"ASYNC\""))


def _walk(node: Any) -> Any:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _advisory_locks(node: Node) -> Reject | None:
    for item in _walk(node):
        call = item.get("FuncCall")
        if call is None:
            continue
        name = [n["String"]["sval"] for n in call.get("funcname", []) if "String" in n][-1]
        if "advisory" in name:
            return Reject("0A000", f"function {name} not supported")
    return None


# -- rules, one per statement kind ----------------------------------------------------------


def _type_name(type_node: Node) -> str:
    names = [n["String"]["sval"] for n in type_node.get("names", []) if "String" in n]
    return names[-1].lower() if names else ""


_SERIALS = {"serial", "bigserial", "smallserial", "serial2", "serial4", "serial8"}


def check_type(type_node: Node, profile: Profile) -> Reject | None:
    name = _type_name(type_node)
    if name in _SERIALS:
        return Reject("42704", f'type "{name}" does not exist')
    if type_node.get("arrayBounds"):
        return unsupported("array column type")
    if name == "inet":
        return unsupported("column type inet")
    if name == "jsonb" and not profile.allows(Capability.JSONB):
        return unsupported("column type jsonb")
    return None


def _cache_ok(options: list[Node], profile: Profile, what: str) -> Reject | None:
    cache: int | None = None
    for opt in options:
        elem = opt.get("DefElem", {})
        if elem.get("defname") == "cache":
            cache = elem.get("arg", {}).get("Integer", {}).get("ival", 1)
        if elem.get("defname") == "as" and \
                _type_name(elem.get("arg", {}).get("TypeName", {})) != "int8":
            return unsupported(f"{what} of a type other than BIGINT")
    if cache is None:
        return Reject("0A000", f"{what} requires an explicit CACHE (1 or >= "
                               f"{profile.limits.min_large_cache})")
    if cache != 1 and cache < profile.limits.min_large_cache:
        return Reject("0A000", f"CACHE {cache} is not supported: use CACHE 1 or CACHE >= "
                               f"{profile.limits.min_large_cache}")
    return None


def check_constraint(con: Node, profile: Profile, *, in_create: bool) -> Reject | None:
    kind = con.get("contype")
    if kind == "CONSTR_EXCLUSION":
        return unsupported("exclusion constraint")
    if kind == "CONSTR_FOREIGN":
        if not profile.allows(Capability.FOREIGN_KEYS):
            return unsupported("FOREIGN KEY constraint")
        if not in_create and not con.get("skip_validation"):
            return unsupported("ADD FOREIGN KEY without NOT VALID")
    if kind in ("CONSTR_PRIMARY", "CONSTR_UNIQUE") and len(con.get("keys", [])) > \
            profile.limits.key_columns_per_index:
        return Reject("54011", f"more than {profile.limits.key_columns_per_index} key columns")
    return None


def check_column(col: Node, profile: Profile, *, in_create: bool) -> Reject | None:
    reject = check_type(col.get("typeName", {}), profile)
    if reject is not None:
        return reject
    if col.get("collClause"):
        return unsupported("COLLATE on a column")
    for item in col.get("constraints", []):
        con = item["Constraint"]
        if con.get("contype") == "CONSTR_IDENTITY":
            if _type_name(col.get("typeName", {})) != "int8":
                return unsupported("identity column of a type other than BIGINT")
            reject = _cache_ok(con.get("options", []), profile, "identity column")
        else:
            reject = check_constraint(con, profile, in_create=in_create)
        if reject is not None:
            return reject
    return None


@rule("CreateStmt")
def check_create_table(node: Node, profile: Profile) -> Reject | None:
    rel = node.get("relation", {})
    if rel.get("relpersistence") == "t":
        return unsupported("temporary table")
    if node.get("inhRelations"):
        return unsupported("INHERITS")
    if node.get("partspec") or node.get("partbound"):
        return unsupported("partitioning")
    if node.get("tablespacename"):
        return unsupported("tablespace")
    columns = 0
    for elt in node.get("tableElts", []):
        if "ColumnDef" in elt:
            columns += 1
            reject = check_column(elt["ColumnDef"], profile, in_create=True)
        elif "Constraint" in elt:
            reject = check_constraint(elt["Constraint"], profile, in_create=True)
        else:
            reject = None
        if reject is not None:
            return reject
    if columns > profile.limits.columns_per_table:
        return Reject("54011", f"tables can have at most {profile.limits.columns_per_table} "
                               "columns")
    return None


def check_index(node: Node, profile: Profile) -> Reject | None:
    if node.get("concurrent"):
        return unsupported("CREATE INDEX CONCURRENTLY")
    if node.get("tableSpace"):
        return unsupported("tablespace")
    if node.get("accessMethod", "btree") != "btree":
        return unsupported("USING " + str(node.get("accessMethod")))
    if node.get("whereClause") and not profile.allows(Capability.PARTIAL_INDEX):
        return unsupported("partial index")
    params = [p["IndexElem"] for p in node.get("indexParams", [])]
    if len(params) > profile.limits.key_columns_per_index:
        return Reject("54011", f"more than {profile.limits.key_columns_per_index} key columns "
                               "in an index")
    for param in params:
        if param.get("expr") and not profile.allows(Capability.EXPRESSION_INDEX):
            return unsupported("expression index")
        if param.get("ordering", "SORTBY_DEFAULT") != "SORTBY_DEFAULT":
            return unsupported("ASC/DESC on index keys")
        if param.get("opclass"):
            return unsupported("operator class on index keys")
        if param.get("collation"):
            return unsupported("COLLATE on index keys")
    return None


@rule("IndexStmt")
def check_sync_index(node: Node, profile: Profile) -> Reject | None:
    return check_index(node, profile) or unsupported("CREATE INDEX without ASYNC")


_ALTER_ALWAYS_REJECTED = {
    "AT_SetNotNull": "ALTER COLUMN SET NOT NULL",
    "AT_AlterColumnType": "ALTER COLUMN TYPE",
    "AT_ValidateConstraint": "VALIDATE CONSTRAINT without ASYNC",
    "AT_EnableRowSecurity": "row-level security",
    "AT_ForceRowSecurity": "row-level security",
    "AT_AddInherit": "INHERITS",
    "AT_AttachPartition": "partitioning",
    "AT_DetachPartition": "partitioning",
    "AT_SetTableSpace": "tablespace",
    "AT_AddIdentity": "ALTER COLUMN ADD GENERATED AS IDENTITY",
    "AT_EnableTrig": "triggers",
    "AT_DisableTrig": "triggers",
}
_ALTER_BY_CAPABILITY = {
    "AT_DropColumn": (Capability.DROP_COLUMN, "DROP COLUMN"),
    "AT_ColumnDefault": (Capability.ALTER_COLUMN_DEFAULT, "ALTER COLUMN SET/DROP DEFAULT"),
    "AT_DropNotNull": (Capability.DROP_NOT_NULL, "ALTER COLUMN DROP NOT NULL"),
    "AT_DropConstraint": (Capability.DROP_CONSTRAINT, "DROP CONSTRAINT"),
}


@rule("AlterTableStmt")
def check_alter_table(node: Node, profile: Profile) -> Reject | None:
    if node.get("objtype") not in (None, "OBJECT_TABLE"):
        return None
    for item in node.get("cmds", []):
        cmd = item["AlterTableCmd"]
        subtype = cmd.get("subtype", "")
        if subtype in _ALTER_ALWAYS_REJECTED:
            return unsupported(_ALTER_ALWAYS_REJECTED[subtype])
        if subtype in _ALTER_BY_CAPABILITY:
            capability, construct = _ALTER_BY_CAPABILITY[subtype]
            if not profile.allows(capability):
                return unsupported(construct)
        if subtype == "AT_AddColumn":
            col = cmd.get("def", {}).get("ColumnDef", {})
            if col.get("constraints") or col.get("raw_default"):
                return unsupported("ADD COLUMN with constraint or default")
            reject = check_column(col, profile, in_create=False)
            if reject is not None:
                return reject
        if subtype == "AT_AddConstraint":
            reject = _check_add_constraint(cmd.get("def", {}).get("Constraint", {}), profile)
            if reject is not None:
                return reject
    return None


def _check_add_constraint(con: Node, profile: Profile) -> Reject | None:
    kind = con.get("contype")
    if kind == "CONSTR_PRIMARY":
        return unsupported("ADD PRIMARY KEY")
    if kind == "CONSTR_UNIQUE":
        if con.get("indexname") and profile.allows(Capability.ADD_UNIQUE_USING_INDEX):
            return None
        return unsupported("ADD CONSTRAINT UNIQUE" + (" USING INDEX" if con.get("indexname")
                                                      else ""))
    if kind == "CONSTR_CHECK":
        if not profile.allows(Capability.CHECK_NOT_VALID):
            return unsupported("ADD CONSTRAINT CHECK")
        if not con.get("skip_validation"):
            return unsupported("ADD CONSTRAINT CHECK without NOT VALID")
        return None
    return check_constraint(con, profile, in_create=False)


def _fixed(construct: str) -> Check:
    def check(node: Node, profile: Profile) -> Reject | None:
        return unsupported(construct)

    return check


for _kind, _construct in {
    "TruncateStmt": "TRUNCATE",
    "CreateTrigStmt": "CREATE TRIGGER",
    "CreateEventTrigStmt": "CREATE EVENT TRIGGER",
    "CreateExtensionStmt": "CREATE EXTENSION",
    "CompositeTypeStmt": "CREATE TYPE",
    "CreateEnumStmt": "CREATE TYPE",
    "CreateRangeStmt": "CREATE TYPE",
    "CreateTableSpaceStmt": "tablespace",
    "CreatedbStmt": "CREATE DATABASE",
    "LockStmt": "LOCK TABLE",
    "ListenStmt": "LISTEN",
    "UnlistenStmt": "UNLISTEN",
    "NotifyStmt": "NOTIFY",
    "PrepareStmt": "PREPARE",
    "ExecuteStmt": "EXECUTE",
    "DeclareCursorStmt": "DECLARE CURSOR",
    "CreatePolicyStmt": "row-level security",
    "AlterPolicyStmt": "row-level security",
    "DoStmt": "DO (procedural language)",
    "RefreshMatViewStmt": "materialized views",
    "CreatePLangStmt": "CREATE LANGUAGE",
    "RuleStmt": "CREATE RULE",
}.items():
    _RULES[_kind] = _fixed(_construct)


@rule("CreateTableAsStmt")
def check_ctas(node: Node, profile: Profile) -> Reject | None:
    if node.get("objtype") == "OBJECT_MATVIEW":
        return unsupported("materialized views")
    return unsupported("CREATE TABLE AS")


@rule("SelectStmt")
def check_select(node: Node, profile: Profile) -> Reject | None:
    if node.get("intoClause"):
        return unsupported("SELECT INTO")
    return None


@rule("ViewStmt")
def check_view(node: Node, profile: Profile) -> Reject | None:
    if node.get("view", {}).get("relpersistence") == "t":
        return unsupported("temporary view")
    return None


@rule("DefineStmt")
def check_define(node: Node, profile: Profile) -> Reject | None:
    if node.get("kind") == "OBJECT_TYPE":
        return unsupported("CREATE TYPE")
    return None


@rule("CreateFunctionStmt")
def check_function(node: Node, profile: Profile) -> Reject | None:
    if node.get("is_procedure"):
        return unsupported("CREATE PROCEDURE")
    for opt in node.get("options", []):
        elem = opt.get("DefElem", {})
        if elem.get("defname") == "language":
            language = elem.get("arg", {}).get("String", {}).get("sval", "").lower()
            if language != "sql":
                return unsupported(f"functions in language {language}")
    return None


@rule("CreateSeqStmt")
def check_sequence(node: Node, profile: Profile) -> Reject | None:
    if node.get("sequence", {}).get("relpersistence") == "t":
        return unsupported("temporary sequence")
    return _cache_ok(node.get("options", []), profile, "sequence")


@rule("AlterSeqStmt")
def check_alter_sequence(node: Node, profile: Profile) -> Reject | None:
    options = node.get("options", [])
    if any(o.get("DefElem", {}).get("defname") in ("cache", "as") for o in options):
        return _cache_ok(options, profile, "sequence")
    return None


@rule("VacuumStmt")
def check_vacuum(node: Node, profile: Profile) -> Reject | None:
    return unsupported("VACUUM") if node.get("is_vacuumcmd") else None


def _isolation_reject(options: list[Node]) -> Reject | None:
    for opt in options:
        elem = opt.get("DefElem", {})
        if elem.get("defname") in ("transaction_isolation", "default_transaction_isolation"):
            level = elem.get("arg", {}).get("A_Const", {}).get("sval", {}).get("sval", "")
            if level.lower() != "repeatable read":
                return unsupported(f"isolation level {level}")
    return None


@rule("TransactionStmt")
def check_transaction(node: Node, profile: Profile) -> Reject | None:
    kind = node.get("kind", "")
    if kind in ("TRANS_STMT_SAVEPOINT", "TRANS_STMT_RELEASE", "TRANS_STMT_ROLLBACK_TO"):
        return unsupported("SAVEPOINT")
    if kind in ("TRANS_STMT_PREPARE", "TRANS_STMT_COMMIT_PREPARED",
                "TRANS_STMT_ROLLBACK_PREPARED"):
        return unsupported("two-phase commit")
    return _isolation_reject(node.get("options", []))


@rule("VariableSetStmt")
def check_set(node: Node, profile: Profile) -> Reject | None:
    name = (node.get("name") or "").lower()
    if name in ("role", "session_authorization"):
        return unsupported("SET ROLE" if name == "role" else "SET SESSION AUTHORIZATION")
    if name in ("transaction", "session characteristics"):
        return _isolation_reject(node.get("args", []))
    if name in ("transaction_isolation", "default_transaction_isolation"):
        args = node.get("args", [])
        level = args[0].get("A_Const", {}).get("sval", {}).get("sval", "") if args else ""
        if level and level.lower() != "repeatable read":
            return unsupported(f"isolation level {level}")
    return None


@rule("CreateSchemaStmt")
def check_schema(node: Node, profile: Profile) -> Reject | None:
    for elt in node.get("schemaElts", []):
        (kind, inner), = elt.items()
        check = _RULES.get(kind)
        reject = check(inner, profile) if check else None
        if reject is not None:
            return reject
    return None
