"""What the MySQL front end remembers while it reads a script: tables, names, report entries."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .mysql_split import MySQLScriptError, RawStatement
from .mysql_values import Column, ValueContext
from .report import Action, Change


def quote_ident(name: str) -> str:
    """A PostgreSQL identifier keeping MySQL's spelling (PostgreSQL folds unquoted names)."""
    return '"' + name.replace('"', '""') + '"'


def first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    line = re.sub(r"\s+", " ", line).strip()
    return line if len(line) <= 80 else line[:77] + "..."


@dataclass
class Table:
    name: str
    columns: dict[str, Column] = field(default_factory=dict)  #: by lower-cased name, in order
    identity: str | None = None  #: the AUTO_INCREMENT column
    #: MySQL's next AUTO_INCREMENT value, and where PostgreSQL's identity would generate next
    counter: int = 1
    generated_next: int = 1
    last_line: int = 0  #: of the last INSERT into it

    def column(self, name: str) -> Column:
        # MySQL column names are case-insensitive
        found = self.columns.get(name.lower())
        return found if found is not None else Column(name, "unknown")

    def ordered(self) -> list[Column]:
        return list(self.columns.values())


@dataclass
class State:
    source: str
    tables: dict[str, Table] = field(default_factory=dict)
    relations: set[str] = field(default_factory=set)  #: PostgreSQL names of tables and indexes
    index_names: dict[tuple[str, str], str] = field(default_factory=dict)  #: (table, index)
    changes: list[Change] = field(default_factory=list)
    deferred: list[tuple[int, str]] = field(default_factory=list)  #: FKs, added at the end
    #: (statement, table, constraint name, columns) of every foreign key
    foreign_keys: list[tuple[RawStatement, str, str | None, list[str]]] = field(
        default_factory=list
    )
    unsigned_floats: set[str] = field(default_factory=set)  #: FLOAT/DOUBLE UNSIGNED columns
    unknown_tables: set[str] = field(default_factory=set)  #: INSERTed, never created
    keys: dict[str, list[list[str]]] = field(default_factory=dict)  #: index columns per table
    values: ValueContext = field(default_factory=ValueContext)
    no_auto_value_on_zero: bool = False
    sql_mode: str = ""
    saved: dict[str, str | None] = field(default_factory=dict)  #: user variables of settings
    #: per table, the lowest identity start that clears the ids the script inserts itself
    #: (only for tables whose rows all carry their ids)
    identity_floor: dict[str, int] = field(default_factory=dict)

    def note(
        self,
        raw: RawStatement,
        action: Action,
        message: str,
        *,
        rule: str | None = None,
        follow_up: str | None = None,
    ) -> None:
        self.changes.append(
            Change(
                action=action,
                source=self.source,
                line=raw.line,
                statement=first_line(raw.text),
                message=message,
                rule=rule,
                follow_up=follow_up,
            )
        )

    def error(self, line: int, message: str, hint: str | None = None) -> MySQLScriptError:
        return MySQLScriptError(f"{self.source}:{line}: {message}", hint=hint)

    def table(self, name: str) -> Table:
        found = self.tables.get(name)
        if found is None:  # MySQL table names are case-insensitive on some systems: try that
            lowered = {key.lower(): table for key, table in self.tables.items()}
            found = lowered.get(name.lower())
        return found if found is not None else Table(name)

    def claim_index_name(self, table: str, name: str) -> str:
        """A schema-unique PostgreSQL name for MySQL index ``name`` of ``table``.

        MySQL index names are per table, PostgreSQL's per schema: a second ``idx_created`` (or
        an index named like a table) becomes ``<table>_<name>``.
        """
        candidate = name
        if candidate in self.relations:
            candidate = f"{table}_{name}"
        suffix = 2
        base = candidate
        while candidate in self.relations:
            candidate = f"{base}_{suffix}"
            suffix += 1
        self.relations.add(candidate)
        self.index_names[(table, name)] = candidate
        return candidate

    def add_key(self, table: str, columns: list[str]) -> None:
        self.keys.setdefault(table, []).append([column.lower() for column in columns])

    def has_key_prefix(self, table: str, columns: list[str]) -> bool:
        wanted = [column.lower() for column in columns]
        return any(key[: len(wanted)] == wanted for key in self.keys.get(table, []))

    def index_name(self, table: str, name: str) -> str:
        return self.index_names.get((table, name), name)
