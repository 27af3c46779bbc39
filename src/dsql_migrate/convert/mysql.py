"""MySQL front end of ``dsql-migrate convert``: a MySQL script -> PostgreSQL statements + report.

The script is cut into statements as the ``mysql`` client does (:mod:`.mysql_split`), each is
parsed with sqlglot's MySQL dialect and written out as PostgreSQL here. Statements with no DSQL
counterpart (triggers, routines, events, locks, session settings) are removed with a reason and
a follow-up (:mod:`.mysql_removed`); behaviour that changes is reported as ``CHANGED``. DSQL's own
rules (``CREATE INDEX ASYNC``, foreign keys per profile, identity CACHE, transaction sizes) are
the PostgreSQL converter's job, applied to this output.

Why sqlglot: a maintained, pure-Python parser with a MySQL dialect that reads real mysqldump
DDL (column options, table options, index definitions) into a typed tree and decodes MySQL's
string escapes, so values are carried exactly; see docs/moving-from-mysql.md.
"""

from __future__ import annotations

import functools
import itertools
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlglot
from sqlglot import TokenType, exp
from sqlglot.dialects.mysql import MySQL
from sqlglot.errors import ParseError, TokenError

from .mysql_ddl import (
    START,
    ColumnSql,
    Out,
    create_index,
    create_table,
    foreign_key,
    foreign_key_indexes,
    removed_index,
    table_name,
)
from .mysql_insert import LiteralInsert, from_tree, read_insert
from .mysql_removed import find_removal
from .mysql_split import MySQLScriptError, RawStatement, split_mysql
from .mysql_state import State, Table, first_line, quote_ident
from .mysql_values import Column, Token, ValueError_, render_token
from .report import Action, Change

__all__ = ["MySQLScriptError", "mysql_to_postgresql"]

_SESSION_SETTING = "a MySQL session setting with no effect on the converted schema"


@contextmanager
def _quiet_sqlglot() -> Iterator[None]:
    # sqlglot logs a warning when it falls back to an opaque Command; we report those ourselves
    logger = logging.getLogger("sqlglot")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


_INDEX_USING = re.compile(r"\s+USING\s+(?:BTREE|HASH)\b", re.IGNORECASE)


def _partition_clause(text: str) -> int | None:
    """Where a CREATE TABLE's ``PARTITION BY`` starts (outside parentheses), if it has one."""
    try:
        tokens = MySQL().tokenize(text)
    except TokenError:
        return None
    depth = 0
    for token, following in itertools.pairwise(tokens):
        if token.token_type == TokenType.L_PAREN:
            depth += 1
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
        elif depth == 0 and (
            token.token_type == TokenType.PARTITION_BY
            or (token.text.upper() == "PARTITION" and following.text.upper() == "BY")
        ):
            return int(token.start)
    return None


# sqlglot refuses FLOAT/DOUBLE UNSIGNED (deprecated in MySQL, still in old schemas): the word
# is taken out here and the column remembered, so that it still gets its CHECK (>= 0)
_UNSIGNED_FLOAT = re.compile(
    r"((`(?:[^`]|``)+`|[\w$]+)\s+(?:float|double(?:\s+precision)?|real)\s*"
    r"(?:\(\s*\d+\s*(?:,\s*\d+\s*)?\))?)\s+unsigned\b",
    re.IGNORECASE,
)


def _take_unsigned_floats(text: str, state: State) -> str:
    def take(match: re.Match[str]) -> str:
        name = match.group(2)
        state.unsigned_floats.add(name[1:-1] if name.startswith("`") else name)
        return match.group(1)

    return _UNSIGNED_FLOAT.sub(take, text)


_MUST_PARSE = re.compile(
    r"(CREATE\s+(TEMPORARY\s+)?TABLE|ALTER\s+TABLE|INSERT|CREATE\s+(UNIQUE\s+)?INDEX|UPDATE|DELETE)\b",
    re.IGNORECASE,
)


def _parse(raw: RawStatement, state: State) -> exp.Expression | LiteralInsert:
    text = raw.text
    if text[:6].upper() == "INSERT":
        fast = read_insert(text)
        if fast is not None:
            return fast
    if re.match(r"CREATE\s+(UNIQUE\s+)?INDEX\b", text, re.IGNORECASE):
        text = _INDEX_USING.sub("", text)  # USING BTREE/HASH: PostgreSQL picks its own method
    if re.match(r"(CREATE|ALTER)\s+(TEMPORARY\s+)?TABLE\b", text, re.IGNORECASE):
        text = _take_unsigned_floats(text, state)
    if re.match(r"CREATE\s+(TEMPORARY\s+)?TABLE\b", text, re.IGNORECASE):
        partition = _partition_clause(text)
        if partition is not None:
            state.note(
                raw,
                Action.CHANGED,
                "PARTITION BY dropped: DSQL has no partitioning; the table is one table "
                "(DSQL distributes its storage itself)",
                rule="DSQL.md §1 (no partitioning)",
            )
            text = text[:partition]
    try:
        with _quiet_sqlglot():
            trees = [tree for tree in sqlglot.parse(text, read="mysql") if tree is not None]
    except ParseError as error:
        detail = error.errors[0] if error.errors else {}
        line = raw.line + int(detail.get("line", 1)) - 1
        near = detail.get("highlight") or ""
        raise MySQLScriptError(
            f"{state.source}:{line}:{detail.get('col', 0)}: cannot parse this MySQL statement"
            f" ({detail.get('description', error)}{f' near {near!r}' if near else ''})",
            hint="check the statement in MySQL; if it is valid MySQL, convert it by hand and "
            "leave it out of the script",
        ) from None
    except TokenError as error:
        raise state.error(raw.line, f"cannot read this MySQL statement: {error}") from None
    if len(trees) != 1 or not isinstance(trees[0], exp.Expression):
        raise state.error(raw.line, "expected one statement here, found several")
    if isinstance(trees[0], exp.Command) and _MUST_PARSE.match(text):
        # sqlglot gave up on a statement that carries schema or data: refuse, never drop it
        raise state.error(
            raw.line,
            f"cannot parse this MySQL statement ({first_line(text)}): it uses syntax the "
            "MySQL reader (sqlglot) does not know",
            hint="simplify the statement (or convert it by hand and leave it out), then convert "
            "again",
        )
    return trees[0]


# --- SET -----------------------------------------------------------------------------------

_SET_REASONS = {
    "foreign_key_checks": "foreign keys are added at the end of the script, after the rows",
    "time_zone": "TIMESTAMP values in the script are written with this zone instead",
    "sql_mode": "the MySQL modes that matter for reading the script are applied here",
}


def _set_variable(item: exp.Expression) -> tuple[str, exp.Expression | None]:
    """(name as written, value) of one assignment of a SET; ``@x`` for a user variable."""
    if item.args.get("kind"):  # SET NAMES / SET CHARACTER SET
        return str(item.args["kind"]).upper(), None
    node = item.this
    if isinstance(node, exp.EQ):
        target, value = node.this, node.expression
        if isinstance(target, exp.SessionParameter):
            return target.this.name, value
        if isinstance(target, exp.Parameter):
            return "@" + target.name, value
        return target.sql(dialect="mysql").replace("$", "@"), value
    return node.sql(dialect="mysql"), None


def _settings_read(value: exp.Expression | None) -> str | None:
    """``sql_mode`` / ``time_zone`` when ``value`` reads one (``@@SQL_MODE``)."""
    if isinstance(value, exp.SessionParameter):
        return str(value.this.name).lower()
    if value is not None and value.sql(dialect="mysql").lower().lstrip("@") in (
        "sql_mode", "time_zone", "session.sql_mode", "session.time_zone"
    ):
        return value.sql(dialect="mysql").lower().split(".")[-1].lstrip("@")
    return None


def _apply_sql_mode(raw: RawStatement, modes_text: str, state: State) -> None:
    modes = {mode.strip().upper() for mode in modes_text.split(",")}
    for unsupported in ("NO_BACKSLASH_ESCAPES", "ANSI_QUOTES", "ANSI"):
        if unsupported in modes:
            raise state.error(
                raw.line,
                f"sql_mode {unsupported} changes how this script's strings and names are "
                "read, which the converter does not follow",
                hint="dump with the default sql_mode (mysqldump does)",
            )
    state.no_auto_value_on_zero = "NO_AUTO_VALUE_ON_ZERO" in modes
    state.sql_mode = modes_text


def _apply_set(raw: RawStatement, tree: exp.Expression, state: State) -> None:
    # mysqldump saves sql_mode and time_zone in user variables and restores them: follow that,
    # as they decide how AUTO_INCREMENT 0s and TIMESTAMP values of later rows are read
    names = []
    for item in tree.expressions:
        name, value = _set_variable(item)
        names.append(name)
        variable = name.lower()
        if variable.startswith("@"):
            read = _settings_read(value)
            if read == "sql_mode":
                state.saved[variable] = state.sql_mode
            elif read == "time_zone":
                state.saved[variable] = state.values.time_zone
            continue
        restored = value.sql(dialect="mysql").lower().replace("$", "@") if value else ""
        if variable == "time_zone":
            if isinstance(value, exp.Literal) and value.is_string:
                zone = value.this
                state.values.time_zone = None if zone.upper() == "SYSTEM" else zone
            else:
                state.values.time_zone = state.saved.get(restored)
        elif variable == "sql_mode":
            if isinstance(value, exp.Literal) and value.is_string:
                _apply_sql_mode(raw, value.this, state)
            else:
                _apply_sql_mode(raw, state.saved.get(restored) or "", state)
    reasons = {_SET_REASONS.get(name.lower(), _SESSION_SETTING) for name in names}
    state.note(
        raw,
        Action.REMOVED,
        f"SET {', '.join(names)} removed: " + "; ".join(sorted(reasons)),
        follow_up="nothing to do",
    )


# --- INSERT --------------------------------------------------------------------------------


def _insert_columns(insert: LiteralInsert, table: Table) -> list[Column]:
    if insert.columns is not None:
        return [table.column(name) for name in insert.columns]
    if table.columns:
        return table.ordered()
    width = len(insert.rows[0]) if insert.rows else 0
    return [Column("", "unknown")] * width  # neither listed nor known: positional


def _is_generated(token: Token, state: State) -> bool:
    """Whether MySQL would generate this AUTO_INCREMENT value (NULL, DEFAULT, or 0)."""
    kind = token[0]
    if kind in ("null", "default"):
        return True
    return kind == "num" and _identity_value(token) == 0 and not state.no_auto_value_on_zero


def _identity_value(token: Token) -> int | None:
    kind, payload = token
    if kind in ("num", "str"):
        try:
            return int(str(payload))
        except ValueError:
            return None
    return None


def _identity_position(columns: list[Column], table: Table) -> int | None:
    if table.identity is None:
        return None
    for position, column in enumerate(columns):
        if column.name.lower() == table.identity.lower():
            return position
    return None


def _row_sql(
    values: list[Token], line: int, columns: list[Column], table: Table, state: State,
    identity: int | None,
) -> str:
    if len(values) != len(columns):
        raise state.error(
            line, f"INSERT into {table.name} gives {len(values)} values for {len(columns)} columns"
        )
    rendered: list[str] = []
    for position, (token, column) in enumerate(zip(values, columns, strict=True)):
        if position == identity:
            if _is_generated(token, state):
                rendered.append("DEFAULT")  # MySQL numbers NULL (and 0) itself
                continue
            value = _identity_value(token)
            if value is not None:
                table.counter = max(table.counter, value + 1)
        try:
            rendered.append(render_token(token, column, state.values))
        except ValueError_ as error:
            raise state.error(line, f"value for {table.name}.{column.name} {error}") from None
    return "(" + ", ".join(rendered) + ")"


def _generated_rows(insert: LiteralInsert, columns: list[Column], table: Table,
                    state: State) -> int:
    """How many of the rows get their AUTO_INCREMENT id from the database."""
    if table.identity is None:
        return 0
    position = _identity_position(columns, table)
    if position is None:
        return len(insert.rows)
    return sum(
        1 for row in insert.rows if position < len(row) and _is_generated(row[position], state)
    )


def _restart_identity(table: Table, raw: RawStatement) -> Out:
    """Move PostgreSQL's identity to MySQL's AUTO_INCREMENT counter, when rows set ids."""
    if table.identity is None or table.generated_next >= table.counter:
        return []
    table.generated_next = table.counter
    return [
        (
            raw.line,
            f"ALTER TABLE {quote_ident(table.name)} ALTER COLUMN "
            f"{quote_ident(table.identity)} RESTART WITH {table.counter}",
        )
    ]


def _insert(raw: RawStatement, tree: exp.Expression, state: State) -> Out:
    """An INSERT sqlglot read (the fast reader took the literal-only ones)."""
    assert isinstance(tree, exp.Insert)
    if tree.args.get("conflict") is not None:
        raise state.error(
            raw.line,
            "INSERT ... ON DUPLICATE KEY UPDATE is not translated",
            hint="dump without --insert-ignore/--replace, or rewrite it as INSERT ... ON "
            "CONFLICT (key) DO UPDATE and leave it out of the script",
        )
    name = table_name(tree.this, state, raw)
    if not isinstance(tree.expression, exp.Values):
        state.note(raw, Action.CHANGED, "INSERT ... SELECT translated by sqlglot: review it")
        return [(raw.line, tree.sql(dialect="postgres"))]
    return _insert_rows(raw, from_tree(name, tree), state)


def _insert_rows(raw: RawStatement, insert: LiteralInsert, state: State) -> Out:
    name = insert.table
    table = state.table(name)
    if not table.columns and name not in state.unknown_tables:
        state.unknown_tables.add(name)
        state.note(
            raw,
            Action.CHANGED,
            f"{name} is not created in this script: its values are written as MySQL wrote them, "
            "without knowing the column types (booleans, binary data, zero dates)",
            follow_up="convert the table's CREATE TABLE together with its rows",
        )
    columns = _insert_columns(insert, table)
    zero_before = state.values.zero_dates
    generated = _generated_rows(insert, columns, table, state)
    out: Out = []
    if generated:
        # PostgreSQL numbers these rows from its identity: it must be where MySQL's counter is
        out += _restart_identity(table, raw)
    identity = _identity_position(columns, table)
    rows = [
        _row_sql(values, raw.line - 1 + line, columns, table, state, identity)
        for values, line in zip(insert.rows, insert.lines, strict=True)
    ]
    if generated:
        table.generated_next += generated
        table.counter = max(table.counter, table.generated_next)
    table.last_line = raw.line
    if state.values.zero_dates > zero_before:
        state.note(
            raw,
            Action.CHANGED,
            f"{state.values.zero_dates - zero_before} zero date(s) ('0000-00-00') written as "
            "NULL: PostgreSQL has no zero date",
            follow_up="treat NULL where the application treated the zero date",
        )
    column_list = (
        " (" + ", ".join(quote_ident(column.name) for column in columns) + ")"
        if all(column.name for column in columns)
        else ""
    )
    conflict = ""
    if insert.ignore:
        conflict = " ON CONFLICT DO NOTHING"
        state.note(
            raw,
            Action.CHANGED,
            "INSERT IGNORE became ON CONFLICT DO NOTHING: only duplicate keys are skipped, "
            "other errors (bad values) now fail",
        )
    out.append(
        (
            raw.line,
            f"INSERT INTO {quote_ident(name)}{column_list} VALUES\n"
            + ",\n".join(rows)
            + conflict,
        )
    )
    return out


# --- ALTER TABLE ---------------------------------------------------------------------------


def _alter_action(
    raw: RawStatement, table: str, action: exp.Expression, state: State
) -> Out:
    target = quote_ident(table)
    if isinstance(action, exp.AddConstraint):
        out: Out = []
        for item in action.expressions:
            name: str | None = None
            element = item
            if isinstance(item, exp.Constraint):
                name, element = item.name, item.expressions[0]
            if isinstance(element, exp.ForeignKey):
                foreign_key(state, raw, table, name, element)
            elif isinstance(element, exp.UniqueColumnConstraint):
                key = element.this
                key_name = key.this.name if key.this is not None else name
                out += create_index(state, raw, table, key_name, list(key.expressions), unique=True)
            elif isinstance(element, exp.IndexColumnConstraint):
                kind = str(element.args.get("kind") or "").upper()
                if kind in ("FULLTEXT", "SPATIAL"):
                    removed_index(state, raw, kind, element.name, table)
                else:
                    out += create_index(
                        state, raw, table, element.name or None, list(element.expressions),
                        unique=False,
                    )
            elif isinstance(element, exp.PrimaryKey):
                keys = ", ".join(quote_ident(node.name) for node in element.expressions)
                prefix = f"CONSTRAINT {quote_ident(name)} " if name else ""
                out.append((raw.line, f"ALTER TABLE {target} ADD {prefix}PRIMARY KEY ({keys})"))
            elif isinstance(element, exp.CheckColumnConstraint):
                prefix = f"CONSTRAINT {quote_ident(name)} " if name else ""
                out.append(
                    (
                        raw.line,
                        f"ALTER TABLE {target} ADD {prefix}CHECK "
                        f"({element.this.sql(dialect='postgres')})",
                    )
                )
            else:
                _not_translated(raw, state, element.sql(dialect="mysql"))
        return out
    if isinstance(action, exp.ColumnDef):
        info = state.table(table)
        state.tables.setdefault(table, info)
        columns = ColumnSql(state, raw, info)
        definition = columns.render(action).replace(START, "")
        if action.args.get("position") is not None:
            state.note(
                raw, Action.CHANGED, "column position (FIRST/AFTER) dropped: it goes last"
            )
        out = [(raw.line, f"ALTER TABLE {target} ADD COLUMN {definition}")]
        for key_name, parts in columns.indexes:
            out += create_index(state, raw, table, key_name, parts, unique=True)
        return out + [(raw.line, comment) for comment in columns.comments]
    if isinstance(action, exp.Drop):
        kind = str(action.args.get("kind") or "").upper()
        names = [node.name for node in action.args.get("tables") or []]
        if kind == "COLUMN":
            return [(raw.line, f"ALTER TABLE {target} DROP COLUMN {quote_ident(n)}") for n in names]
        if kind in ("INDEX", "KEY"):
            return [
                (raw.line, f"DROP INDEX {quote_ident(state.index_name(table, n))}") for n in names
            ]
        if kind in ("FOREIGN KEY", "CONSTRAINT", "CHECK"):
            return [
                (raw.line, f"ALTER TABLE {target} DROP CONSTRAINT {quote_ident(n)}") for n in names
            ]
    _not_translated(raw, state, action.sql(dialect="mysql"))
    return []


def _not_translated(raw: RawStatement, state: State, what: str) -> None:
    state.note(
        raw,
        Action.REMOVED,
        f"not translated: {what}",
        follow_up="write the PostgreSQL equivalent by hand and run it after the script",
    )


def _alter(raw: RawStatement, tree: exp.Expression, state: State) -> Out:
    assert isinstance(tree, exp.Alter)
    if str(tree.args.get("kind") or "").upper() != "TABLE":
        _not_translated(raw, state, raw.text.splitlines()[0])
        return []
    name = table_name(tree.this, state, raw)
    out: Out = []
    for action in tree.args.get("actions") or []:
        out += _alter_action(raw, name, action, state)
    for option in tree.args.get("options") or []:
        if isinstance(option, exp.AutoIncrementProperty):
            table = state.table(name)
            table.counter = int(option.this.name)
            out += _restart_identity(table, raw)
        else:
            _not_translated(raw, state, option.sql(dialect="mysql"))
    return out


# --- statements read without sqlglot ------------------------------------------------------

_RENAME_TABLE = re.compile(r"RENAME\s+TABLES?\s+(.*)$", re.IGNORECASE | re.DOTALL)
_RENAME_PAIR = re.compile(r"\s*(`(?:[^`]|``)+`|[\w$]+)\s+TO\s+(`(?:[^`]|``)+`|[\w$]+)\s*(?:,|$)",
                          re.IGNORECASE)
_REPLACE = re.compile(r"REPLACE\b", re.IGNORECASE)


def _unquote(name: str) -> str:
    return name[1:-1].replace("``", "`") if name.startswith("`") else name


def _rename_table(raw: RawStatement, match: re.Match[str], state: State) -> Out:
    pairs = [(_unquote(m[1]), _unquote(m[2])) for m in _RENAME_PAIR.finditer(match[1])]
    if not pairs:
        raise state.error(raw.line, "cannot read this RENAME TABLE")
    out: Out = []
    for old, new in pairs:
        if old in state.tables:
            state.tables[new] = state.tables.pop(old)
            state.tables[new].name = new
        out.append((raw.line, f"ALTER TABLE {quote_ident(old)} RENAME TO {quote_ident(new)}"))
    return out


def _replace(raw: RawStatement, match: re.Match[str], state: State) -> Out:
    raise state.error(
        raw.line,
        "REPLACE is not translated (it deletes the rows any unique key matches, then inserts)",
        hint="dump without --replace, or rewrite it as INSERT ... ON CONFLICT (key) DO UPDATE "
        "and leave it out of the script",
    )


TextHandler = Callable[[RawStatement, re.Match[str], State], Out]
_TEXT_HANDLERS: list[tuple[re.Pattern[str], TextHandler]] = [
    (_RENAME_TABLE, _rename_table),
    (_REPLACE, _replace),
]


# --- the rest ------------------------------------------------------------------------------


def _create(raw: RawStatement, tree: exp.Expression, state: State) -> Out:
    assert isinstance(tree, exp.Create)
    kind = str(tree.args.get("kind") or "").upper()
    if kind == "TABLE":
        return create_table(state, raw, tree)
    if kind == "INDEX":
        index = tree.this
        table = table_name(index.args["table"], state, raw)
        params = index.args.get("params")
        parts = list(params.args.get("columns") or []) if params is not None else []
        return create_index(
            state, raw, table, index.name, parts, unique=bool(tree.args.get("unique")),
            if_not_exists=bool(tree.args.get("exists")),
        )
    if kind == "VIEW":
        name = table_name(tree.this, state, raw)
        replace = "OR REPLACE " if tree.args.get("replace") else ""
        state.note(
            raw,
            Action.CHANGED,
            f"view {name}: its query was translated from MySQL by sqlglot; review it",
        )
        query = tree.expression.sql(dialect="postgres")
        return [(raw.line, f"CREATE {replace}VIEW {quote_ident(name)} AS {query}")]
    _not_translated(raw, state, raw.text.splitlines()[0])
    return []


def _drop(raw: RawStatement, tree: exp.Expression, state: State) -> Out:
    assert isinstance(tree, exp.Drop)
    kind = str(tree.args.get("kind") or "").upper()
    exists = " IF EXISTS" if tree.args.get("exists") else ""
    if kind in ("TABLE", "VIEW"):
        for node in tree.args.get("tables") or []:
            state.tables.pop(node.name, None)  # a later CREATE TABLE may use the name again
        return [
            (raw.line, f"DROP {kind}{exists} {quote_ident(table_name(node, state, raw))}")
            for node in tree.args.get("tables") or []
        ]
    if kind == "INDEX":  # DROP INDEX i ON t: PostgreSQL names the index alone
        on = tree.args.get("cluster")
        index = (tree.args.get("tables") or [tree.this])[0]
        table = on.this.name if isinstance(on, exp.OnProperty) else ""
        pg_name = state.index_name(table, index.name)
        return [(raw.line, f"DROP INDEX{exists} {quote_ident(pg_name)}")]
    _not_translated(raw, state, raw.text.splitlines()[0])
    return []


def _translated(raw: RawStatement, tree: exp.Expression, state: State) -> Out:
    state.note(raw, Action.CHANGED, "translated from MySQL by sqlglot: review it")
    return [(raw.line, tree.sql(dialect="postgres"))]


def _truncate(raw: RawStatement, tree: exp.Expression, state: State) -> Out:
    names = [quote_ident(table_name(node, state, raw)) for node in tree.expressions]
    return [(raw.line, f"TRUNCATE {', '.join(names)}")]


def _set(raw: RawStatement, tree: exp.Expression, state: State) -> Out:
    _apply_set(raw, tree, state)
    return []


_HANDLERS: dict[type[exp.Expression], Callable[[RawStatement, exp.Expression, State], Out]] = {
    exp.Create: _create,
    exp.Insert: _insert,
    exp.Alter: _alter,
    exp.Drop: _drop,
    exp.Set: _set,
    exp.TruncateTable: _truncate,
    exp.Update: _translated,
    exp.Delete: _translated,
}


Parsed = exp.Expression | LiteralInsert | Callable[[], Out]


def _identity_floors(parsed: list[tuple[RawStatement, Parsed]], state: State) -> None:
    """For tables whose rows all carry their AUTO_INCREMENT id, start the identity past them."""
    identity: dict[str, tuple[str, list[str]]] = {}
    highest: dict[str, int] = {}
    generated: set[str] = set()
    for _raw, tree in parsed:
        if isinstance(tree, exp.Create) and isinstance(tree.this, exp.Schema):
            # index names must not take a table's name, even of a table created later
            state.relations.add(tree.this.this.name)
            columns = [c for c in tree.this.expressions if isinstance(c, exp.ColumnDef)]
            for definition in columns:
                kinds = [c.args["kind"] for c in definition.args.get("constraints") or []]
                if any(isinstance(k, exp.AutoIncrementColumnConstraint) for k in kinds):
                    identity[tree.this.this.name] = (definition.name, [c.name for c in columns])
        elif isinstance(tree, exp.Insert) and isinstance(tree.expression, exp.Values):
            name = (tree.this.this if isinstance(tree.this, exp.Schema) else tree.this).name
            if name in identity:
                _scan_ids(from_tree(name, tree), identity[name], state, highest, generated)
        elif isinstance(tree, LiteralInsert) and tree.table in identity:
            _scan_ids(tree, identity[tree.table], state, highest, generated)
    for name, value in highest.items():
        if name not in generated:
            state.identity_floor[name] = value + 1


def _scan_ids(
    insert: LiteralInsert,
    identity: tuple[str, list[str]],
    state: State,
    highest: dict[str, int],
    generated: set[str],
) -> None:
    column, order = identity
    lowered = [name.lower() for name in (insert.columns or order)]
    if column.lower() not in lowered:
        generated.add(insert.table)
        return
    position = lowered.index(column.lower())
    for row in insert.rows:
        token = row[position] if position < len(row) else ("null", None)
        value = _identity_value(token)
        if _is_generated(token, state) or value is None:
            generated.add(insert.table)
        else:
            highest[insert.table] = max(highest.get(insert.table, 0), value)


def _by_text(raw: RawStatement, state: State) -> Callable[[], Out] | None:
    for pattern, handler in _TEXT_HANDLERS:
        match = pattern.match(raw.text)
        if match is not None:
            return functools.partial(handler, raw, match, state)
    return None


def mysql_to_postgresql(text: str, source: str) -> tuple[list[tuple[int, str]], list[Change]]:
    """Translate a MySQL script: (source line, PostgreSQL statement) pairs, and the report.

    Raises :class:`MySQLScriptError` (with ``source:line``) for a script that cannot be read or
    a value with no faithful PostgreSQL form.
    """
    state = State(source)
    parsed: list[tuple[RawStatement, Parsed]] = []
    for raw in split_mysql(text, source):
        by_text = _by_text(raw, state)
        if by_text is not None:
            parsed.append((raw, by_text))
            continue
        removal = find_removal(raw.text)
        if removal is not None:
            rule, match = removal
            state.note(
                raw, Action.REMOVED, rule.reason(match), rule=rule.rule,
                follow_up=rule.follow_up(match),
            )
            continue
        parsed.append((raw, _parse(raw, state)))
    _identity_floors(parsed, state)
    out: Out = []
    for raw, tree in parsed:
        if isinstance(tree, LiteralInsert):
            out += _insert_rows(raw, tree, state)
            continue
        if not isinstance(tree, exp.Expression):
            out += tree()  # in order: a RENAME follows the CREATE before it
            continue
        handler = _HANDLERS.get(type(tree))
        if handler is None:
            _not_translated(raw, state, raw.text.splitlines()[0])
            continue
        out += handler(raw, tree, state)
    out += foreign_key_indexes(state)
    out += state.deferred
    for table in state.tables.values():  # rows that set their own ids moved the counter
        if table.identity is not None and table.generated_next < table.counter:
            out += _restart_identity(table, RawStatement(table.last_line, "", ";"))
    changes = sorted(state.changes, key=lambda change: change.line)
    return out, changes

