"""Statement classes as DSQL counts them for its transaction rules (DSQL.md §2).

A DSQL transaction holds at most one DDL statement and never mixes DDL with DML. For that
count, every statement that changes the catalog is DDL (``CREATE``, ``ALTER``, ``DROP``,
``COMMENT ON``, ``GRANT``/``REVOKE``, ...); every statement that reads or writes rows is DML
(``SELECT``, ``INSERT``, ``UPDATE``, ``DELETE``, ``MERGE``, ``COPY``, ``TRUNCATE``); ``BEGIN``,
``COMMIT``, ``ROLLBACK`` and savepoints are transaction control; the rest (``SET``, ``SHOW``,
``EXPLAIN``, ``CALL``, ``VACUUM``, ...) is *other* and counts as neither.

The second half classifies a parsed statement into the DSQL *forms* it uses
(:func:`classify`, one function per node type registered with :func:`classifier`): the linter
and the local emulator look each form up in :data:`dsql_migrate.forms.FORM_RULES` for the
profile's verdict, so both decide the same way from one classification.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from enum import Enum
from typing import Any, NamedTuple

from ..forms import Form
from ..profiles import Limits

Node = dict[str, Any]


class StatementKind(str, Enum):
    DDL = "ddl"
    DML = "dml"
    TRANSACTION = "transaction"
    OTHER = "other"
    UNKNOWN = "unknown"  # the statement did not parse


_DML = frozenset(
    {"SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt", "CopyStmt",
     "TruncateStmt"}
)
_DDL_EXTRA = frozenset(
    {"IndexStmt", "ViewStmt", "RenameStmt", "CommentStmt", "GrantStmt", "GrantRoleStmt",
     "DefineStmt", "CompositeTypeStmt", "RuleStmt", "SecLabelStmt", "ReassignOwnedStmt",
     "RefreshMatViewStmt", "ReindexStmt", "ClusterStmt", "ImportForeignSchemaStmt",
     "AwsIamStmt"}
)
_DDL_PREFIXES = ("Create", "Alter", "Drop")


def kind_of(node_type: str | None) -> StatementKind:
    """The class of a statement given its pglast node type (``"CreateStmt"``, ...)."""
    if node_type is None:
        return StatementKind.UNKNOWN
    if node_type == "TransactionStmt":
        return StatementKind.TRANSACTION
    if node_type in _DML:
        return StatementKind.DML
    if node_type in _DDL_EXTRA or node_type.startswith(_DDL_PREFIXES):
        return StatementKind.DDL
    return StatementKind.OTHER


__all__ = ["StatementKind", "kind_of"]


# --- statement forms DSQL decides on (the linter and the emulator share this) -------------------


class Found(NamedTuple):
    """A :class:`~dsql_migrate.forms.Form` a statement uses; ``construct`` names the occurrence
    for the error message (``CREATE EVENT TRIGGER``, ``isolation level serializable``), and
    ``location`` is a pglast location in the statement when one is known."""

    form: Form
    construct: str | None = None
    location: int | None = None


Classifier = Callable[[Node, "_Ctx"], None]
_CLASSIFIERS: dict[str, Classifier] = {}


class _Ctx(NamedTuple):
    limits: Limits
    is_async: bool
    text: str
    out: list[Found]  # classifiers append here (cheaper than generators on the hot path)


def classifier(*kinds: str) -> Callable[[Classifier], Classifier]:
    """Register the classifier of statements of pglast node types ``kinds``."""

    def register(func: Classifier) -> Classifier:
        for kind in kinds:
            _CLASSIFIERS[kind] = func
        return func

    return register


#: lower-cased substrings without which a statement of these kinds uses no form (so the tree
#: need not be decoded): the common DML stays as cheap as it was
_DML_NEEDLES: dict[str, tuple[str, ...]] = {
    "SelectStmt": ("into", "advisory", "share"),
    "InsertStmt": ("advisory",),
    "UpdateStmt": ("advisory",),
    "DeleteStmt": ("advisory",),
    "CallStmt": ("advisory",),
    "ExplainStmt": ("advisory",),
}


def may_use_forms(node_type: str | None, lower: str) -> bool:
    """False when a statement of ``node_type`` with lower-cased text ``lower`` certainly uses no
    form (cheap: no tree). True means: classify it."""
    if node_type is None:
        return False
    needles = _DML_NEEDLES.get(node_type)
    if needles is not None:
        return any(n in lower for n in needles)
    return node_type in _CLASSIFIERS or "advisory" in lower


# Gates: necessary conditions, on the lower-cased text (short: cheap to scan) and on pglast's
# JSON text, for a statement of a frequent kind to use a form the profile rejects. When a gate
# says no, the statement is accepted without decoding its tree (the linter keeps its speed);
# tests/test_rule_parity.py checks on every known statement that a gate never hides a form. The
# emulator has decoded the tree anyway and does not use them.

Gate = Callable[[str, str, "frozenset[Form]", Limits], bool]
_GATES: dict[str, Gate] = {}

#: words in the text of a CREATE TABLE / ADD COLUMN without which a column-level form cannot be
_COLUMN_WORDS: dict[Form, tuple[str, ...]] = {
    Form.SERIAL: ("serial",),
    Form.ARRAY_COLUMN: ("[", "array"),
    Form.INET_COLUMN: ("inet", "cidr"),
    Form.JSONB_COLUMN: ("jsonb",),
    Form.WIDE_NUMERIC: ("numeric", "dec"),
    Form.NUMERIC_BOUNDS: ("numeric", "dec"),
    Form.NUMERIC_KEY: ("numeric", "dec"),
    Form.COLLATE: ("collate",),
    Form.IDENTITY_TYPE: ("identity",),
    Form.IDENTITY_CACHE: ("identity",),
    Form.IDENTITY_CACHE_MISSING: ("identity",),
    Form.FOREIGN_KEY: ("references",),
    Form.EXCLUSION: ("exclude",),
    Form.TEMPORARY: ("temp",),
    Form.INHERITS: ("inherits",),
    Form.PARTITION_BY: ("partition",),
    Form.PARTITION_OF: ("partition",),
    Form.TABLESPACE: ("tablespace",),
}
#: words without which an ALTER TABLE form cannot be
_ALTER_WORDS: dict[Form, tuple[str, ...]] = {
    Form.SET_NOT_NULL: ("null",),
    Form.DROP_NOT_NULL: ("null",),
    Form.ALTER_COLUMN_TYPE: ("type",),
    Form.ALTER_TYPE: ("type",),
    Form.ROW_LEVEL_SECURITY: ("security",),
    Form.INHERITS: ("inherit",),
    Form.PARTITION_OF: ("partition",),
    Form.TABLESPACE: ("tablespace",),
    Form.ADD_IDENTITY: ("identity",),
    Form.REPLICA_IDENTITY: ("replica",),
    Form.DROP_COLUMN: ("drop",),
    Form.DROP_CONSTRAINT: ("drop",),
    Form.COLUMN_DEFAULT: ("default",),
    Form.TRIGGER: ("trigger",),
    Form.VALIDATE_SYNC: ("validate",),
    Form.ADD_PRIMARY_KEY: ("primary",),
    Form.PRIMARY_KEY_USING_INDEX: ("primary",),
    Form.ADD_UNIQUE: ("unique",),
    Form.UNIQUE_USING_INDEX: ("unique",),
    Form.KEY_COLUMNS: ("unique", "primary"),
    Form.EXCLUSION: ("exclude",),
    Form.FOREIGN_KEY: ("references",),
    Form.ADD_CHECK: ("check",),
}
#: words without which a CREATE INDEX ASYNC form cannot be (expressions and operator classes
#: are found in the JSON: their text has no keyword)
_INDEX_WORDS: dict[Form, tuple[str, ...]] = {
    Form.INDEX_CONCURRENTLY: ("concurrently",),
    Form.TABLESPACE: ("tablespace",),
    Form.INDEX_USING: ("using",),
    Form.PARTIAL_INDEX: ("where",),
    Form.INDEX_ORDER: ("asc", "desc"),
    Form.COLLATE: ("collate",),
}
_WORD_TABLES = {"column": _COLUMN_WORDS, "alter": _ALTER_WORDS, "index": _INDEX_WORDS}


@functools.lru_cache(maxsize=64)
def _words(table: str, rejected: frozenset[Form]) -> tuple[str, ...]:
    """The words of table ``table`` (by name) for the forms in ``rejected``, once per profile."""
    return tuple(dict.fromkeys(w for form, words in _WORD_TABLES[table].items()
                               if form in rejected for w in words))


def _contains_any(text: str, needles: tuple[str, ...]) -> bool:
    for needle in needles:  # noqa: SIM110  (a loop beats any() + generator here)
        if needle in text:
            return True
    return False


def gate(kind: str) -> Callable[[Gate], Gate]:
    """Register the gate of statements of pglast node type ``kind``."""

    def register(func: Gate) -> Gate:
        _GATES[kind] = func
        return func

    return register


_STORAGE_PARAMETERS = re.compile(r"\bwith\s*\(")


def _long_key_list(lower: str, limit: int) -> bool:
    return lower.count(",") >= limit and re.search(
        rf"(?:primary\s+key|unique)\s*\((?:[^()]*,){{{limit}}}", lower) is not None


@gate("CreateStmt")
def _create_gate(raw: str, lower: str, rejected: frozenset[Form], limits: Limits) -> bool:
    return (_contains_any(lower, _words("column", rejected))
            or ("with" in lower and _STORAGE_PARAMETERS.search(lower) is not None)
            or lower.count(",") >= limits.columns_per_table
            or _long_key_list(lower, limits.key_columns_per_index))


@gate("AlterTableStmt")
def _alter_gate(raw: str, lower: str, rejected: frozenset[Form], limits: Limits) -> bool:
    if _contains_any(lower, _words("alter", rejected)) or "advisory" in lower:
        return True
    if '"AT_AddColumn"' in raw and ('"constraints"' in raw or '"raw_default"' in raw
                                    or _contains_any(lower, _words("column", rejected))):
        return True
    if "check" in lower or "references" in lower:  # validated CHECK / FOREIGN KEY (every profile)
        return raw.count('"skip_validation":true') < \
            raw.count('"CONSTR_CHECK"') + raw.count('"CONSTR_FOREIGN"')
    return False


@gate("IndexStmt")
def _index_gate(raw: str, lower: str, rejected: frozenset[Form], limits: Limits) -> bool:
    return (_contains_any(lower, _words("index", rejected))
            or (Form.EXPRESSION_INDEX in rejected and '"expr"' in raw)
            or '"opclass"' in raw
            or lower.count(",") >= limits.key_columns_per_index)


@gate("TransactionStmt")
def _transaction_gate(raw: str, lower: str, rejected: frozenset[Form], limits: Limits) -> bool:
    return '"options"' in raw or "SAVEPOINT" in raw or "RELEASE" in raw or \
        "ROLLBACK_TO" in raw or "PREPARE" in raw


def needs_tree(node_type: str, raw: str, lower: str, rejected: frozenset[Form], limits: Limits,
               *, is_async: bool) -> bool:
    """False when the statement (pglast JSON ``raw``, lower-cased text ``lower``) certainly
    uses no form in ``rejected``; True means: decode and :func:`classify` it. A statement
    without ASYNC that creates an index always needs it (CREATE INDEX without ASYNC)."""
    check = _GATES.get(node_type)
    if check is None:
        return True
    if is_async and node_type == "AlterTableStmt":
        if raw.count('"AlterTableCmd"') == 1 and '"AT_ValidateConstraint"' in raw:
            return Form.VALIDATE_ASYNC in rejected
        return True
    if node_type == "IndexStmt" and not is_async:
        return True
    return check(raw, lower, rejected, limits)


def classify(node_type: str, node: Node, limits: Limits, *, is_async: bool = False,
             text: str = "", lower: str | None = None) -> list[Found]:
    """Every form the statement ``node`` (of pglast type ``node_type``) uses, in the order
    DSQL would complain about them. ``text`` is the statement's text (ASYNC blanked or not),
    ``lower`` the same in lower case when the caller has it already."""
    found: list[Found] = []
    if is_async and node_type not in ("IndexStmt", "AlterTableStmt"):
        return found  # a syntax error, left to PostgreSQL
    func = _CLASSIFIERS.get(node_type)
    if func is not None:
        func(node, _Ctx(limits, is_async, text, found))
    if "advisory" in (text.lower() if lower is None else lower):
        _advisory_locks(node, found)
    return found


def _walk(node: Any) -> Iterator[Node]:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _svals(nodes: list[Node] | None) -> list[str]:
    return [n["String"]["sval"] for n in nodes or () if "String" in n]


def _advisory_locks(node: Node, out: list[Found]) -> None:
    for item in _walk(node):
        call = item.get("FuncCall")
        if call is None:
            continue
        names = _svals(call.get("funcname"))
        if names and "advisory" in names[-1].lower():
            out.append(Found(Form.ADVISORY_LOCK, names[-1], call.get("location")))


def _fixed(form: Form, construct: str | None = None) -> Classifier:
    def classify_fixed(node: Node, ctx: _Ctx) -> None:
        ctx.out.append(Found(form, construct))

    return classify_fixed


for _kind, _form, _construct in (
    ("TruncateStmt", Form.TRUNCATE, None),
    ("CreateTrigStmt", Form.TRIGGER, None),
    ("CreateEventTrigStmt", Form.TRIGGER, "CREATE EVENT TRIGGER"),
    ("AlterEventTrigStmt", Form.TRIGGER, "ALTER EVENT TRIGGER"),
    ("CreateExtensionStmt", Form.EXTENSION, None),
    ("AlterExtensionStmt", Form.EXTENSION, "ALTER EXTENSION"),
    ("CreatePLangStmt", Form.CREATE_LANGUAGE, None),
    ("CompositeTypeStmt", Form.CREATE_TYPE, None),
    ("CreateEnumStmt", Form.CREATE_TYPE, "CREATE TYPE ... AS ENUM"),
    ("CreateRangeStmt", Form.CREATE_TYPE, "CREATE TYPE ... AS RANGE"),
    ("AlterEnumStmt", Form.ALTER_TYPE, None),
    ("CreateTableSpaceStmt", Form.TABLESPACE, "CREATE TABLESPACE"),
    ("CreatedbStmt", Form.CREATE_DATABASE, None),
    ("LockStmt", Form.LOCK_TABLE, None),
    ("ListenStmt", Form.LISTEN, None),
    ("UnlistenStmt", Form.UNLISTEN, None),
    ("NotifyStmt", Form.NOTIFY, None),
    ("PrepareStmt", Form.PREPARE, None),
    ("ExecuteStmt", Form.PREPARE, "EXECUTE"),
    ("DeclareCursorStmt", Form.DECLARE_CURSOR, None),
    ("DiscardStmt", Form.DISCARD, None),
    ("CreateForeignServerStmt", Form.FOREIGN_DATA, None),
    ("CreateFdwStmt", Form.FOREIGN_DATA, "CREATE FOREIGN DATA WRAPPER"),
    ("CreateForeignTableStmt", Form.FOREIGN_DATA, "CREATE FOREIGN TABLE"),
    ("CreateUserMappingStmt", Form.FOREIGN_DATA, "CREATE USER MAPPING"),
    ("ImportForeignSchemaStmt", Form.FOREIGN_DATA, "IMPORT FOREIGN SCHEMA"),
    ("CreatePolicyStmt", Form.POLICY, None),
    ("AlterPolicyStmt", Form.ALTER_POLICY, None),
    ("DoStmt", Form.DO, None),
    ("RefreshMatViewStmt", Form.MATERIALIZED_VIEW, None),
    ("RuleStmt", Form.CREATE_RULE, None),
    ("CreateStatsStmt", Form.STATISTICS, None),
    ("AlterStatsStmt", Form.STATISTICS, "ALTER STATISTICS"),
):
    _CLASSIFIERS[_kind] = _fixed(_form, _construct)


@classifier("CreateTableAsStmt")
def _ctas(node: Node, ctx: _Ctx) -> None:
    if node.get("objtype") == "OBJECT_MATVIEW":
        ctx.out.append(Found(Form.MATERIALIZED_VIEW))
    else:
        ctx.out.append(Found(Form.CREATE_TABLE_AS))


@classifier("SelectStmt")
def _select(node: Node, ctx: _Ctx) -> None:
    if node.get("intoClause"):
        ctx.out.append(Found(Form.CREATE_TABLE_AS, "SELECT INTO"))
    for item in node.get("lockingClause") or ():
        if item.get("LockingClause", {}).get("strength") == "LCS_FORKEYSHARE":
            ctx.out.append(Found(Form.FOR_KEY_SHARE))
            return


@classifier("ViewStmt")
def _view(node: Node, ctx: _Ctx) -> None:
    if node.get("view", {}).get("relpersistence") == "t":
        ctx.out.append(Found(Form.TEMP_VIEW))


@classifier("DefineStmt")
def _define(node: Node, ctx: _Ctx) -> None:
    if node.get("kind") == "OBJECT_TYPE":
        ctx.out.append(Found(Form.CREATE_TYPE))


@classifier("CreateFunctionStmt")
def _function(node: Node, ctx: _Ctx) -> None:
    if node.get("is_procedure"):
        ctx.out.append(Found(Form.PROCEDURE))
        return
    for opt in node.get("options", []):
        elem = opt.get("DefElem", {})
        if elem.get("defname") == "language":
            language = elem.get("arg", {}).get("String", {}).get("sval", "").lower()
            if language != "sql":
                ctx.out.append(Found(Form.FUNCTION_LANGUAGE, f"functions in language {language}"))


_DROP_FORMS = {
    "OBJECT_TYPE": Form.DROP_TYPE,
    "OBJECT_POLICY": Form.DROP_POLICY,
    "OBJECT_MATVIEW": Form.DROP_MATERIALIZED_VIEW,
    "OBJECT_STATISTIC_EXT": Form.STATISTICS,
}


@classifier("DropStmt")
def _drop(node: Node, ctx: _Ctx) -> None:
    kind = node.get("removeType")
    form = _DROP_FORMS.get(kind or "")
    if form is Form.STATISTICS:
        ctx.out.append(Found(form, "DROP STATISTICS"))
    elif form is not None:
        ctx.out.append(Found(form))
    elif kind == "OBJECT_TRIGGER" and not node.get("missing_ok"):
        # DSQL has no triggers, so dropping one can only fail; IF EXISTS is fine (AWS's corpus)
        for obj in node.get("objects", []):
            names = _svals(obj.get("List", {}).get("items"))
            if len(names) >= 2:
                ctx.out.append(Found(Form.DROP_MISSING_TRIGGER,
                            f'trigger "{names[-1]}" for table "{names[-2]}"'))
                return


@classifier("CopyStmt")
def _copy(node: Node, ctx: _Ctx) -> None:
    if node.get("filename") or node.get("is_program"):
        ctx.out.append(Found(Form.COPY_FILE))


@classifier("VacuumStmt")
def _vacuum(node: Node, ctx: _Ctx) -> None:
    if node.get("is_vacuumcmd"):
        ctx.out.append(Found(Form.VACUUM))


def _isolation(options: list[Node], out: list[Found]) -> None:
    for opt in options:
        elem = opt.get("DefElem", {})
        if elem.get("defname") in ("transaction_isolation", "default_transaction_isolation"):
            level = elem.get("arg", {}).get("A_Const", {}).get("sval", {}).get("sval", "")
            if level.lower() != "repeatable read":
                out.append(Found(Form.ISOLATION_LEVEL, f"isolation level {level}"))


_TXN_FORMS = {
    "TRANS_STMT_SAVEPOINT": Form.SAVEPOINT,
    "TRANS_STMT_RELEASE": Form.RELEASE_SAVEPOINT,
    "TRANS_STMT_ROLLBACK_TO": Form.ROLLBACK_TO_SAVEPOINT,
    "TRANS_STMT_PREPARE": Form.TWO_PHASE_COMMIT,
    "TRANS_STMT_COMMIT_PREPARED": Form.TWO_PHASE_COMMIT,
    "TRANS_STMT_ROLLBACK_PREPARED": Form.TWO_PHASE_COMMIT,
}


@classifier("TransactionStmt")
def _transaction(node: Node, ctx: _Ctx) -> None:
    form = _TXN_FORMS.get(node.get("kind", ""))
    if form is not None:
        ctx.out.append(Found(form))
        return
    _isolation(node.get("options", []), ctx.out)


@classifier("VariableSetStmt")
def _set(node: Node, ctx: _Ctx) -> None:
    name = (node.get("name") or "").lower()
    if name == "role":
        ctx.out.append(Found(Form.SET_ROLE))
    elif name == "session_authorization":
        ctx.out.append(Found(Form.SET_ROLE, "SET SESSION AUTHORIZATION"))
    elif name in ("transaction", "session characteristics"):
        _isolation(node.get("args", []), ctx.out)
    elif name in ("transaction_isolation", "default_transaction_isolation"):
        args = node.get("args", [])
        level = args[0].get("A_Const", {}).get("sval", {}).get("sval", "") if args else ""
        if level and level.lower() != "repeatable read":
            ctx.out.append(Found(Form.ISOLATION_LEVEL, f"isolation level {level}"))


@classifier("CreateSchemaStmt")
def _schema(node: Node, ctx: _Ctx) -> None:
    for elt in node.get("schemaElts", []):
        ((kind, inner),) = elt.items()
        func = _CLASSIFIERS.get(kind)
        if func is not None:
            func(inner, ctx)


# -- types and columns


def _type_name(type_node: Node) -> str:
    names = type_node.get("names")
    if not names:
        return ""
    return str(names[-1].get("String", {}).get("sval", "")).lower()


_SERIALS = {"serial", "bigserial", "smallserial", "serial2", "serial4", "serial8"}
#: DSQL's classic numeric bounds (AWS docs, supported data types, before 2026-08-25)
CLASSIC_NUMERIC_PRECISION = 38
CLASSIC_NUMERIC_SCALE = 37


def _int_const(node: Node) -> int | None:
    value = node.get("A_Const", {}).get("ival")
    if isinstance(value, dict):
        return int(value.get("ival", 0))
    return None


def _numeric_bounds(type_node: Node, out: list[Found]) -> None:
    mods = [_int_const(m) for m in type_node.get("typmods", [])]
    if not mods or None in mods:
        return
    precision = mods[0] or 0
    scale = mods[1] if len(mods) > 1 and mods[1] is not None else 0
    location = type_node.get("location")
    if not 1 <= precision <= 1000:  # PostgreSQL's bounds, and DSQL's since 2026-08-25
        out.append(Found(Form.NUMERIC_BOUNDS, f"NUMERIC precision {precision} must be between 1 "
                                              "and 1000", location))
    elif not -1000 <= scale <= 1000:
        out.append(Found(Form.NUMERIC_BOUNDS, f"NUMERIC scale {scale} must be between -1000 "
                                              "and 1000", location))
    elif precision > CLASSIC_NUMERIC_PRECISION or not 0 <= scale <= CLASSIC_NUMERIC_SCALE:
        out.append(Found(Form.WIDE_NUMERIC, None, type_node.get("location")))


def _type_forms(type_node: Node, out: list[Found]) -> str:
    """Append the forms of a column type; return the type's name."""
    name = _type_name(type_node)
    location = type_node.get("location")
    if name in _SERIALS:
        out.append(Found(Form.SERIAL, name, location))
    if type_node.get("arrayBounds"):
        out.append(Found(Form.ARRAY_COLUMN, None, location))
    if name in ("inet", "cidr"):
        out.append(Found(Form.INET_COLUMN, f"column type {name}", location))
    if name == "jsonb":
        out.append(Found(Form.JSONB_COLUMN, None, location))
    if name == "numeric":
        _numeric_bounds(type_node, out)
    return name


def _cache_forms(options: list[Node], limits: Limits, what: str,
                 missing: Form, bad: Form, out: list[Found]) -> None:
    cache: int | None = None
    for opt in options:
        elem = opt.get("DefElem", {})
        if elem.get("defname") == "cache":
            arg = elem.get("arg", {})
            cache = arg.get("Integer", {}).get("ival", 1) if "Integer" in arg else \
                int(float(arg.get("Float", {}).get("fval", "1")))
    if cache is None:
        out.append(Found(missing, f"{what} requires an explicit CACHE (1 or >= "
                             f"{limits.min_large_cache})"))
    elif cache != 1 and cache < limits.min_large_cache:
        out.append(Found(bad, f"CACHE {cache} is not supported: use CACHE 1 or CACHE >= "
                         f"{limits.min_large_cache}"))


def _key_count(keys: list[Node], ctx: _Ctx, location: int | None) -> None:
    if len(keys) > ctx.limits.key_columns_per_index:
        ctx.out.append(Found(Form.KEY_COLUMNS, str(ctx.limits.key_columns_per_index), location))


def _constraint_forms(con: Node, ctx: _Ctx, *, in_create: bool) -> None:
    kind = con.get("contype")
    location = con.get("location")
    if kind == "CONSTR_EXCLUSION":
        ctx.out.append(Found(Form.EXCLUSION, None, location))
    elif kind == "CONSTR_FOREIGN":
        ctx.out.append(Found(Form.FOREIGN_KEY, None, location))
        if not in_create and not con.get("skip_validation"):
            ctx.out.append(Found(Form.ADD_FOREIGN_KEY_VALIDATED, None, location))
    elif kind in ("CONSTR_PRIMARY", "CONSTR_UNIQUE"):
        _key_count(con.get("keys", []), ctx, location)


def _column_forms(col: Node, ctx: _Ctx, *, in_create: bool) -> str:
    """Append the forms of a column definition; return its type's name."""
    type_node = col.get("typeName", {})
    type_name = _type_forms(type_node, ctx.out)
    if col.get("collClause"):
        ctx.out.append(Found(Form.COLLATE, None, col["collClause"].get("location")))
    for item in col.get("constraints", []):
        con = item["Constraint"]
        if con.get("contype") == "CONSTR_IDENTITY":
            if type_name != "int8":
                ctx.out.append(Found(Form.IDENTITY_TYPE, None, col.get("location")))
            _cache_forms(con.get("options", []), ctx.limits, "identity column",
                         Form.IDENTITY_CACHE_MISSING, Form.IDENTITY_CACHE, ctx.out)
        else:
            _constraint_forms(con, ctx, in_create=in_create)
    return type_name


def _numeric_keys(node: Node, numeric: list[Node], out: list[Found]) -> None:
    """numeric columns (``numeric``, from the same CREATE TABLE: the only place a statement
    alone shows a key's type) used as keys of a PRIMARY KEY or UNIQUE constraint."""
    names = set()
    for col in numeric:
        names.add(col.get("colname", ""))
        for item in col.get("constraints", []):
            if item["Constraint"].get("contype") in ("CONSTR_PRIMARY", "CONSTR_UNIQUE"):
                out.append(Found(Form.NUMERIC_KEY, None, col.get("location")))
                return
    for elt in node.get("tableElts", []):
        con = elt.get("Constraint")
        if con and con.get("contype") in ("CONSTR_PRIMARY", "CONSTR_UNIQUE") and \
                names.intersection(_svals(con.get("keys"))):
            out.append(Found(Form.NUMERIC_KEY, None, con.get("location")))
            return


@classifier("CreateStmt")
def _create_table(node: Node, ctx: _Ctx) -> None:
    rel = node.get("relation", {})
    if rel.get("relpersistence") == "t":
        ctx.out.append(Found(Form.TEMPORARY, None, rel.get("location")))
    if node.get("inhRelations") and not node.get("partbound"):
        ctx.out.append(Found(Form.INHERITS))
    if node.get("partspec"):
        ctx.out.append(Found(Form.PARTITION_BY))
    if node.get("partbound"):
        ctx.out.append(Found(Form.PARTITION_OF))
    if node.get("tablespacename"):
        ctx.out.append(Found(Form.TABLESPACE))
    if node.get("options"):
        ctx.out.append(Found(Form.STORAGE_PARAMETERS))
    columns = 0
    numeric: list[Node] = []
    for elt in node.get("tableElts", []):
        if "ColumnDef" in elt:
            columns += 1
            if _column_forms(elt["ColumnDef"], ctx, in_create=True) == "numeric":
                numeric.append(elt["ColumnDef"])
        elif "Constraint" in elt:
            _constraint_forms(elt["Constraint"], ctx, in_create=True)
    if numeric:
        _numeric_keys(node, numeric, ctx.out)
    if columns > ctx.limits.columns_per_table:
        ctx.out.append(Found(Form.TOO_MANY_COLUMNS, str(ctx.limits.columns_per_table)))


@classifier("CreateSeqStmt")
def _sequence(node: Node, ctx: _Ctx) -> None:
    if node.get("sequence", {}).get("relpersistence") == "t":
        ctx.out.append(Found(Form.TEMPORARY, "temporary sequence"))
    _sequence_options(node.get("options", []), ctx, create=True)


@classifier("AlterSeqStmt")
def _alter_sequence(node: Node, ctx: _Ctx) -> None:
    _sequence_options(node.get("options", []), ctx, create=False)


def _sequence_options(options: list[Node], ctx: _Ctx, *, create: bool) -> None:
    for opt in options:
        elem = opt.get("DefElem", {})
        if elem.get("defname") == "as" and \
                _type_name(elem.get("arg", {}).get("TypeName", {})) != "int8":
            ctx.out.append(Found(Form.SEQUENCE_TYPE))
    if create or any(o.get("DefElem", {}).get("defname") == "cache" for o in options):
        _cache_forms(options, ctx.limits, "sequence", Form.SEQUENCE_CACHE_MISSING,
                                Form.SEQUENCE_CACHE, ctx.out)


# -- indexes


_EXPLICIT_USING = re.compile(r"\bON\s+(?:ONLY\s+)?[\w.\"]+\s+USING\b", re.IGNORECASE)


@classifier("IndexStmt")
def _index(node: Node, ctx: _Ctx) -> None:
    if node.get("concurrent"):
        ctx.out.append(Found(Form.INDEX_CONCURRENTLY))
    elif not ctx.is_async:
        ctx.out.append(Found(Form.INDEX_SYNC))
    if node.get("tableSpace"):
        ctx.out.append(Found(Form.TABLESPACE))
    method = node.get("accessMethod", "btree")
    if method != "btree":
        ctx.out.append(Found(Form.INDEX_USING, f"USING {method}"))
    elif _EXPLICIT_USING.search(ctx.text):
        ctx.out.append(Found(Form.INDEX_USING, "USING btree"))
    if node.get("whereClause"):
        ctx.out.append(Found(Form.PARTIAL_INDEX))
    params = [p["IndexElem"] for p in node.get("indexParams", []) if "IndexElem" in p]
    _key_count(params, ctx, None)
    for param in params:
        if param.get("expr"):
            ctx.out.append(Found(Form.EXPRESSION_INDEX))
        if param.get("ordering", "SORTBY_DEFAULT") != "SORTBY_DEFAULT":
            ctx.out.append(Found(Form.INDEX_ORDER))
        if param.get("opclass"):
            ctx.out.append(Found(Form.INDEX_OPCLASS))
        if param.get("collation"):
            ctx.out.append(Found(Form.COLLATE, "COLLATE on index keys"))


# -- ALTER TABLE


_ALTER_FORMS = {
    "AT_SetNotNull": (Form.SET_NOT_NULL, None),
    "AT_AlterColumnType": (Form.ALTER_COLUMN_TYPE, None),
    "AT_EnableRowSecurity": (Form.ROW_LEVEL_SECURITY, None),
    "AT_ForceRowSecurity": (Form.ROW_LEVEL_SECURITY, None),
    "AT_AddInherit": (Form.INHERITS, None),
    "AT_AttachPartition": (Form.PARTITION_OF, None),
    "AT_DetachPartition": (Form.PARTITION_OF, None),
    "AT_SetTableSpace": (Form.TABLESPACE, None),
    "AT_AddIdentity": (Form.ADD_IDENTITY, None),
    "AT_ReplicaIdentity": (Form.REPLICA_IDENTITY, None),
    "AT_DropColumn": (Form.DROP_COLUMN, None),
    "AT_ColumnDefault": (Form.COLUMN_DEFAULT, None),
    "AT_DropNotNull": (Form.DROP_NOT_NULL, None),
    "AT_DropConstraint": (Form.DROP_CONSTRAINT, None),
}
_TRIGGER_SUBTYPES = ("AT_EnableTrig", "AT_DisableTrig", "AT_EnableAlwaysTrig",
                     "AT_EnableReplicaTrig", "AT_EnableTrigAll", "AT_DisableTrigAll",
                     "AT_EnableTrigUser", "AT_DisableTrigUser")


@classifier("AlterTableStmt")
def _alter_table(node: Node, ctx: _Ctx) -> None:
    objtype = node.get("objtype")
    if objtype == "OBJECT_TYPE":
        ctx.out.append(Found(Form.ALTER_TYPE))
        return
    if objtype not in (None, "OBJECT_TABLE"):
        return
    cmds = [c["AlterTableCmd"] for c in node.get("cmds", []) if "AlterTableCmd" in c]
    if ctx.is_async:
        if len(cmds) == 1 and cmds[0].get("subtype") == "AT_ValidateConstraint":
            ctx.out.append(Found(Form.VALIDATE_ASYNC))
        else:
            ctx.out.append(Found(Form.ALTER_TABLE_ASYNC_OTHER))
        return
    for cmd in cmds:
        subtype = cmd.get("subtype", "")
        entry = _ALTER_FORMS.get(subtype)
        if entry is not None:
            ctx.out.append(Found(entry[0], entry[1]))
        elif subtype in _TRIGGER_SUBTYPES:
            ctx.out.append(Found(Form.TRIGGER, "triggers"))
        elif subtype == "AT_ValidateConstraint":
            ctx.out.append(Found(Form.VALIDATE_SYNC))
        elif subtype == "AT_AddColumn":
            col = cmd.get("def", {}).get("ColumnDef", {})
            if col.get("constraints") or col.get("raw_default"):
                ctx.out.append(Found(Form.ADD_COLUMN_INLINE, None, col.get("location")))
            _column_forms(col, ctx, in_create=False)
        elif subtype == "AT_AddConstraint":
            _added_constraint(cmd.get("def", {}).get("Constraint", {}), ctx)


def _added_constraint(con: Node, ctx: _Ctx) -> None:
    kind = con.get("contype")
    location = con.get("location")
    if kind == "CONSTR_PRIMARY":
        ctx.out.append(Found(Form.PRIMARY_KEY_USING_INDEX if con.get("indexname") else
                    Form.ADD_PRIMARY_KEY, None, location))
    elif kind == "CONSTR_UNIQUE":
        ctx.out.append(Found(Form.UNIQUE_USING_INDEX if con.get("indexname") else Form.ADD_UNIQUE,
                    None, location))
        _key_count(con.get("keys", []), ctx, location)
    elif kind == "CONSTR_CHECK":
        ctx.out.append(Found(Form.ADD_CHECK, None, location))
        if not con.get("skip_validation"):
            ctx.out.append(Found(Form.ADD_CHECK_VALIDATED, None, location))
    else:
        _constraint_forms(con, ctx, in_create=False)


__all__ += ["Found", "classifier", "classify", "may_use_forms", "needs_tree"]
