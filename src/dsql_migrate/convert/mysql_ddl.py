"""MySQL DDL -> PostgreSQL: CREATE TABLE (columns, keys, options), indexes, foreign keys, ALTER.

Foreign keys are collected and added at the end of the script: mysqldump creates tables in
alphabetical order and loads their rows with ``FOREIGN_KEY_CHECKS=0``, so a key may name a table
that comes later and rows may arrive before their parents. The end state is the same.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot import exp

from .mysql_split import RawStatement
from .mysql_state import State, Table, quote_ident
from .mysql_types import MappedType, map_type
from .mysql_values import Column, ValueError_, render_value
from .report import Action

Out = list[tuple[int, str]]
START = "\x00start\x00"  # where an identity's START WITH goes, once the table is read

_FOLLOW_ON_UPDATE = (
    "set the column in every UPDATE from the application (or the ORM's onupdate hook): "
    "DSQL has no triggers"
)


def table_name(node: exp.Expression, state: State, raw: RawStatement) -> str:
    """The table's name; a ``db.`` qualifier is dropped (the script loads into one schema)."""
    table = node.this if isinstance(node, exp.Schema) else node
    if not isinstance(table, exp.Table):
        raise state.error(raw.line, f"expected a table name, found {table.sql(dialect='mysql')}")
    if table.args.get("db") is not None:
        state.note(
            raw,
            Action.CHANGED,
            f"database qualifier {table.args['db'].name} dropped: the table is created in the "
            "target's current schema",
        )
    return table.name


def _key_part(node: exp.Expression, state: State, raw: RawStatement, notes: list[str]) -> str:
    desc = ""
    if isinstance(node, exp.Ordered):
        desc = " DESC" if node.args.get("desc") else ""
        node = node.this
    prefix = _prefix(node)
    if prefix is not None:
        notes.append(
            f"prefix length ({prefix[1]}) on {prefix[0]} dropped: PostgreSQL indexes the "
            "whole value (a UNIQUE key now compares whole values)"
        )
        return quote_ident(prefix[0]) + desc
    if isinstance(node, (exp.Column, exp.Identifier)):
        return quote_ident(str(node.name)) + desc
    if isinstance(node, exp.Paren):  # MySQL 8 functional key part ((expr))
        return "(" + str(node.this.sql(dialect="postgres")) + ")" + desc
    raise state.error(raw.line, f"unsupported index key part {node.sql(dialect='mysql')}")


def _prefix(node: exp.Expression) -> tuple[str, str] | None:
    """(column, length) of a MySQL key prefix ``col(10)``, which sqlglot reads two ways."""
    if isinstance(node, exp.ColumnPrefix):
        return node.this.name, node.expression.sql()
    if (
        isinstance(node, exp.Anonymous)
        and len(node.expressions) == 1
        and isinstance(node.expressions[0], exp.Literal)
    ):
        return str(node.this), node.expressions[0].sql()
    return None


def _key_columns(parts: Iterable[exp.Expression]) -> list[str]:
    names: list[str] = []
    for part in parts:
        node = part.this if isinstance(part, exp.Ordered) else part
        prefix = _prefix(node)
        names.append(prefix[0] if prefix is not None else node.name)
    return names


def create_index(
    state: State,
    raw: RawStatement,
    table: str,
    name: str | None,
    parts: list[exp.Expression],
    *,
    unique: bool,
    if_not_exists: bool = False,
) -> Out:
    notes: list[str] = []
    keys = ", ".join(_key_part(part, state, raw, notes) for part in parts)
    state.add_key(table, _key_columns(parts))
    mysql_name = name or _key_columns(parts)[0]  # MySQL names an unnamed key by its column
    pg_name = state.claim_index_name(table, mysql_name)
    if pg_name != mysql_name:
        state.note(
            raw,
            Action.CHANGED,
            f"index {mysql_name} of {table} renamed {pg_name}: PostgreSQL index names are "
            "unique per schema, MySQL's per table",
        )
    for note in notes:
        state.note(raw, Action.CHANGED, note)
    kind = "UNIQUE INDEX" if unique else "INDEX"
    exists = " IF NOT EXISTS" if if_not_exists else ""
    return [
        (
            raw.line,
            f"CREATE {kind}{exists} {quote_ident(pg_name)} ON {quote_ident(table)} ({keys})",
        )
    ]


def foreign_key(
    state: State, raw: RawStatement, table: str, name: str | None, fk: exp.ForeignKey
) -> None:
    columns = ", ".join(quote_ident(node.name) for node in fk.expressions)
    reference = fk.args["reference"]
    target = table_name(reference.this, state, raw)
    target_columns = ", ".join(quote_ident(node.name) for node in reference.this.expressions)
    options = "".join(f" {option}" for option in reference.args.get("options") or [])
    constraint = f"CONSTRAINT {quote_ident(name)} " if name else ""
    state.foreign_keys.append((raw, table, name, [node.name for node in fk.expressions]))
    state.deferred.append(
        (
            raw.line,
            f"ALTER TABLE {quote_ident(table)} ADD {constraint}FOREIGN KEY ({columns}) "
            f"REFERENCES {quote_ident(target)} ({target_columns}){options}",
        )
    )


def foreign_key_indexes(state: State) -> Out:
    """The indexes InnoDB creates by itself for foreign keys no index serves.

    InnoDB needs an index whose first columns are the key's and creates one (named after the
    constraint) when the table has none; PostgreSQL does not, so without it the MySQL database
    had an index the converted one would lack.
    """
    out: Out = []
    for raw, table, name, columns in state.foreign_keys:
        if state.has_key_prefix(table, columns):
            continue
        parts: list[exp.Expression] = [exp.to_identifier(column) for column in columns]
        index = name or columns[0]
        out += create_index(state, raw, table, index, parts, unique=False)
        state.note(
            raw,
            Action.CONVERTED,
            f"index {state.index_name(table, index)} on {table} ({', '.join(columns)}) added: "
            "InnoDB creates this index for the foreign key itself",
        )
    return out


def removed_index(state: State, raw: RawStatement, kind: str, name: str, table: str) -> None:
    follow_up = {
        "FULLTEXT": "search with ILIKE/regular expressions, or keep the text in a search "
        "service (OpenSearch) fed from the application",
        "SPATIAL": "store coordinates in numeric columns with a B-tree index, or use a "
        "geospatial service",
    }[kind]
    state.note(
        raw,
        Action.REMOVED,
        f"{kind} index {name} on {table} removed: DSQL has no {kind.lower()} indexes",
        rule="DSQL.md §6",
        follow_up=follow_up,
    )


class ColumnSql:
    """One column definition being written, with what it adds outside the CREATE TABLE."""

    def __init__(self, state: State, raw: RawStatement, table: Table) -> None:
        self.state = state
        self.raw = raw
        self.table = table
        self.indexes: list[tuple[str | None, list[exp.Expression]]] = []
        self.comments: list[str] = []
        #: per text column: its own collation is case-insensitive (None: the table's)
        self.text_collations: list[bool | None] = []

    def render(self, column: exp.ColumnDef) -> str:
        state, raw, table = self.state, self.raw, self.table
        name = column.name
        dtype = column.args["kind"]
        mapped = map_type(dtype) if isinstance(dtype, exp.DataType) else None
        if mapped is None:
            shown = dtype.sql(dialect="mysql") if dtype is not None else "(none)"
            raise state.error(
                raw.line,
                f"column {table.name}.{name} has type {shown}, which DSQL has no type for",
                hint="spatial types have no DSQL equivalent: store coordinates in numeric "
                "columns, then convert again",
            )
        if mapped.kind == "float" and name in state.unsigned_floats:
            mapped.check = "{col} >= 0"
        if mapped.kind == "text" and mapped.enum_values is None:
            self.text_collations.append(None)
        constraints = [c.args["kind"] for c in column.args.get("constraints") or []]
        not_null = any(
            isinstance(c, exp.NotNullColumnConstraint) and not c.args.get("allow_null")
            for c in constraints
        )
        identity = any(isinstance(c, exp.AutoIncrementColumnConstraint) for c in constraints)
        info = Column(name, mapped.kind, not_null=not_null)
        table.columns[name.lower()] = info
        for note in mapped.notes:
            state.note(raw, Action.CHANGED, f"{table.name}.{name}: {note}")
        parts = [quote_ident(name), self._type_sql(mapped, identity, name)]
        if identity:
            table.identity = name
            parts.append(self._identity_sql())
        for constraint in constraints:
            sql = self._constraint_sql(constraint, info, mapped)
            if sql:
                parts.append(sql)
        if mapped.check is not None:
            parts.append(f"CHECK ({mapped.check.format(col=quote_ident(name))})")
        return " ".join(parts)

    def _type_sql(self, mapped: MappedType, identity: bool, name: str) -> str:
        if not identity:
            return mapped.sql
        if mapped.kind != "int":
            raise self.state.error(
                self.raw.line, f"AUTO_INCREMENT on {self.table.name}.{name}, a {mapped.sql}"
            )
        if mapped.sql != "BIGINT":
            self.state.note(
                self.raw,
                Action.CONVERTED,
                f"{self.table.name}.{name}: AUTO_INCREMENT became a BIGINT identity "
                f"(was {mapped.sql}): DSQL identities are BIGINT",
            )
        return "BIGINT"

    def _identity_sql(self) -> str:
        # the start is set by the caller from the table's AUTO_INCREMENT= and the script's
        # rows; CACHE 1 keeps MySQL's one-by-one numbering (and is legal on DSQL)
        return f"GENERATED BY DEFAULT AS IDENTITY ({START}CACHE 1)"

    def _constraint_sql(
        self, constraint: exp.Expression, info: Column, mapped: MappedType
    ) -> str | None:
        state, raw, table = self.state, self.raw, self.table
        name = info.name
        if isinstance(constraint, exp.NotNullColumnConstraint):
            return None if constraint.args.get("allow_null") else "NOT NULL"
        if isinstance(constraint, exp.AutoIncrementColumnConstraint):
            return None
        if isinstance(constraint, exp.DefaultColumnConstraint):
            return self._default_sql(constraint.this, info)
        if isinstance(constraint, exp.OnUpdateColumnConstraint):
            state.note(
                raw,
                Action.REMOVED,
                f"{table.name}.{name}: ON UPDATE "
                f"{constraint.this.sql(dialect='mysql').removesuffix('()')} "
                "removed: DSQL has no triggers, so nothing sets the column when a row changes",
                rule="DSQL.md §1 (no CREATE TRIGGER)",
                follow_up=_FOLLOW_ON_UPDATE,
            )
            return None
        if isinstance(constraint, exp.CommentColumnConstraint):
            self.comments.append(
                f"COMMENT ON COLUMN {quote_ident(table.name)}.{quote_ident(name)} IS "
                + render_value(constraint.this, Column(name, "text"), state.values)
            )
            return None
        if isinstance(constraint, exp.CollateColumnConstraint):
            collation = constraint.name.lower()
            if mapped.kind == "text" and mapped.enum_values is None:
                self.text_collations[-1] = not _binary_collation(collation)
            return None
        if isinstance(constraint, exp.CharacterSetColumnConstraint):
            return None
        if isinstance(constraint, exp.PrimaryKeyColumnConstraint):
            state.add_key(table.name, [name])
            return "PRIMARY KEY"
        if isinstance(constraint, exp.UniqueColumnConstraint):
            self.indexes.append((None, [exp.to_identifier(name)]))
            return None
        if isinstance(constraint, exp.CheckColumnConstraint):
            return f"CHECK ({constraint.this.sql(dialect='postgres')})"
        if isinstance(constraint, exp.ComputedColumnConstraint):
            if not constraint.args.get("persisted"):
                state.note(
                    raw,
                    Action.CHANGED,
                    f"{table.name}.{name}: VIRTUAL generated column became STORED "
                    "(PostgreSQL 16 stores generated columns)",
                )
            return f"GENERATED ALWAYS AS ({constraint.this.sql(dialect='postgres')}) STORED"
        if isinstance(constraint, exp.ZeroFillColumnConstraint):
            state.note(
                raw,
                Action.CHANGED,
                f"{table.name}.{name}: ZEROFILL dropped: values are no longer shown padded "
                "with zeros",
            )
            return None
        if isinstance(constraint, exp.InvisibleColumnConstraint):
            state.note(
                raw, Action.CHANGED, f"{table.name}.{name}: INVISIBLE dropped: SELECT * shows it"
            )
            return None
        state.note(
            raw,
            Action.REMOVED,
            f"{table.name}.{name}: column clause {constraint.sql(dialect='mysql')} has no "
            "PostgreSQL equivalent and was left out",
            follow_up="check whether the application relied on it",
        )
        return None

    def _default_sql(self, value: exp.Expression, info: Column) -> str | None:
        state, raw = self.state, self.raw
        if isinstance(value, exp.CurrentTimestamp):
            precision = value.this
            return "DEFAULT CURRENT_TIMESTAMP" + (
                f"({precision.sql()})" if precision is not None else ""
            )
        if (
            isinstance(value, exp.Literal)
            and value.is_string
            and info.kind in ("date", "timestamp", "timestamptz")
            and value.this.startswith("0000-00-00")
        ):
            state.note(
                raw,
                Action.CHANGED,
                f"{self.table.name}.{info.name}: DEFAULT {value.sql(dialect='mysql')} dropped: "
                "PostgreSQL has no zero date (rows that omit the column get NULL, or fail "
                "if it is NOT NULL)",
                follow_up="give the column a real default or make the application set it",
            )
            return None
        try:
            return "DEFAULT " + render_value(value, info, state.values)
        except ValueError_ as error:
            raise state.error(
                raw.line, f"default of {self.table.name}.{info.name} {error}"
            ) from None


def _binary_collation(collation: str) -> bool:
    return collation.endswith("_bin") or collation == "binary"


def _table_options(state: State, raw: RawStatement, create: exp.Create, table: Table) -> tuple[
    list[str], bool
]:
    """Table comment statements; whether the table's collation compares case-insensitively."""
    comments: list[str] = []
    dropped: list[str] = []
    case_insensitive = True  # MySQL's default collations (utf8mb4_0900_ai_ci, ...) are _ci
    properties = create.args.get("properties")
    for prop in properties.expressions if properties is not None else []:
        if isinstance(prop, exp.SchemaCommentProperty):
            comments.append(
                f"COMMENT ON TABLE {quote_ident(table.name)} IS "
                + render_value(prop.this, Column("comment", "text"), state.values)
            )
        elif isinstance(prop, exp.AutoIncrementProperty):
            table.counter = int(prop.this.name)
        elif isinstance(prop, exp.CollateProperty):
            collation = prop.this.name.lower()
            case_insensitive = not _binary_collation(collation)
            dropped.append(prop.sql(dialect="mysql"))
        elif isinstance(prop, exp.EngineProperty) and prop.this.name.upper() not in ("INNODB",):
            state.note(
                raw,
                Action.CHANGED,
                f"{table.name}: ENGINE={prop.this.name} dropped: the table is now transactional "
                "(and its foreign keys are enforced)",
            )
        else:
            dropped.append(prop.sql(dialect="mysql"))
    if dropped:
        state.note(
            raw,
            Action.CONVERTED,
            f"{table.name}: table options dropped (DSQL manages storage itself): "
            + ", ".join(dropped),
        )
    return comments, case_insensitive


def create_table(state: State, raw: RawStatement, create: exp.Create) -> Out:
    schema = create.this
    if not isinstance(schema, exp.Schema):
        state.note(
            raw,
            Action.REMOVED,
            "CREATE TABLE ... LIKE / AS SELECT is not translated",
            rule="DSQL.md §1 (no CREATE TABLE ... AS SELECT)",
            follow_up="write the table's columns out, then copy rows with INSERT ... SELECT",
        )
        return []
    name = table_name(schema, state, raw)
    if name in state.tables and not create.args.get("exists"):
        raise state.error(
            raw.line,
            f"table {name} is created a second time (by a dump of several databases?): the "
            "converted script loads into one schema",
            hint="convert one database at a time (mysqldump DATABASE > file.sql)",
        )
    table = Table(name)
    state.tables[name] = table
    state.relations.add(name)
    columns = ColumnSql(state, raw, table)
    elements: list[str] = []
    indexes: list[tuple[str | None, list[exp.Expression], bool]] = []
    for item in schema.expressions:
        if isinstance(item, exp.ColumnDef):
            elements.append(columns.render(item))
            continue
        constraint_name: str | None = None
        element = item
        if isinstance(item, exp.Constraint):
            constraint_name = item.name
            element = item.expressions[0]
        if isinstance(element, exp.PrimaryKey):
            state.add_key(name, [node.name for node in element.expressions])
            keys = ", ".join(quote_ident(node.name) for node in element.expressions)
            prefix = f"CONSTRAINT {quote_ident(constraint_name)} " if constraint_name else ""
            state.relations.add(constraint_name or f"{name}_pkey")
            elements.append(f"{prefix}PRIMARY KEY ({keys})")
        elif isinstance(element, exp.ForeignKey):
            foreign_key(state, raw, name, constraint_name, element)
        elif isinstance(element, exp.UniqueColumnConstraint):
            key = element.this
            key_name = key.this.name if key.this is not None else constraint_name
            indexes.append((key_name or constraint_name, list(key.expressions), True))
        elif isinstance(element, exp.IndexColumnConstraint):
            kind = str(element.args.get("kind") or "").upper()
            if kind in ("FULLTEXT", "SPATIAL"):
                removed_index(state, raw, kind, element.name, name)
            else:
                indexes.append((element.name or None, list(element.expressions), False))
        elif isinstance(element, exp.CheckColumnConstraint):
            prefix = f"CONSTRAINT {quote_ident(constraint_name)} " if constraint_name else ""
            elements.append(f"{prefix}CHECK ({element.this.sql(dialect='postgres')})")
        else:
            raise state.error(
                raw.line, f"unsupported table element {element.sql(dialect='mysql')}"
            )
    comments, table_ci = _table_options(state, raw, create, table)
    if any(table_ci if ci is None else ci for ci in columns.text_collations):
        state.note(
            raw,
            Action.CHANGED,
            f"{name}: text comparisons become case- and accent-sensitive (MySQL's default "
            "collations are _ci; DSQL has only the C collation): equality, UNIQUE keys and "
            "ORDER BY on its text columns behave differently",
            rule="DSQL.md §1 (COLLATE)",
            follow_up="compare lower(column) in queries that relied on case-insensitive matching",
        )
    table.counter = max(table.counter, state.identity_floor.get(name, 1))
    table.generated_next = table.counter
    start = "" if table.counter <= 1 else f"START WITH {table.counter} "
    body = ",\n    ".join(element.replace(START, start) for element in elements)
    exists = "IF NOT EXISTS " if create.args.get("exists") else ""
    out: Out = [(raw.line, f"CREATE TABLE {exists}{quote_ident(name)} (\n    {body}\n)")]
    for key_name, parts, unique in [(n, p, True) for n, p in columns.indexes] + indexes:
        out += create_index(state, raw, name, key_name, parts, unique=unique)
    out += [(raw.line, comment) for comment in comments + columns.comments]
    return out
