"""Parse statements with pglast, with DSQL's own syntax understood.

PostgreSQL's grammar lacks DSQL's ``ASYNC`` keyword. Worse, it *accepts*
``CREATE INDEX ASYNC ON t (a)`` as an index named ``async``. So before parsing, the keyword is
recognised at the head of ``CREATE [UNIQUE] INDEX ASYNC ...`` and ``ALTER TABLE ASYNC ...``,
remembered on the statement (:attr:`ParsedStatement.is_async`) and blanked out with spaces of
the same length, so every position pglast reports still points into the original text.

Parsing uses pglast's JSON output (``parse_sql_json``), which is an order of magnitude faster
than building pglast's Python node objects, and decodes that JSON only when a tree is asked
for (:attr:`ParsedStatement.node`). Each statement is parsed on its own, so one bad statement
costs its own diagnostic and nothing else.

Trees are plain ``dict``/``list`` values exactly as in pglast's JSON: a statement node is
``{"CreateStmt": {...}}`` and :attr:`ParsedStatement.node_type` / :attr:`ParsedStatement.node`
give its type name and body.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import re
import sys
import types
from typing import Any, NamedTuple

from .classify import StatementKind, kind_of
from .splitter import Statement, split_script

Node = dict[str, Any]


class _Deferred(types.ModuleType):
    """A module whose code runs when one of its attributes is first read (then it is the plain,
    complete module: the same object, so every reference to it stays valid)."""

    def __getattr__(self, name: str) -> Any:
        spec = self.__spec__
        assert spec is not None and spec.loader is not None
        self.__class__ = types.ModuleType  # type: ignore[assignment]
        spec.loader.exec_module(self)
        return getattr(self, name)

    def __dir__(self) -> list[str]:
        self.__getattr__("__name__")  # load, then list what the module really has
        return list(self.__dict__)


def _import_parser() -> types.ModuleType:
    """pglast's C parser, without paying for pglast's enums and node classes up front.

    Importing ``pglast`` builds its ~400 enums and ~300 node classes (about 25 ms, more than a
    one-statement lint takes: issue 18), but parsing to JSON needs neither: the parser module
    only keeps a reference to ``pglast.enums`` and ``pglast.ast`` for building object trees.
    So, unless pglast is imported already, those two modules are registered as
    :class:`_Deferred`: they run (completely, as a normal import would) the first time anything
    reads them, e.g. ``--fix`` building an object tree.
    """
    if "pglast" not in sys.modules:
        package = importlib.util.find_spec("pglast")  # finds it, does not import it
        where = list(package.submodule_search_locations or ()) if package else []
        deferred: list[types.ModuleType] = []
        for name in ("pglast.enums", "pglast.ast"):
            spec = importlib.machinery.PathFinder.find_spec(name, where) if where else None
            if spec is None or spec.loader is None or name in sys.modules:
                continue
            module = importlib.util.module_from_spec(spec)
            module.__class__ = _Deferred
            sys.modules[name] = module
            deferred.append(module)
        import pglast

        for module in deferred:  # as the import system would have bound them
            setattr(pglast, module.__name__.rpartition(".")[2], module)
    from pglast import parser

    return parser


_pg = _import_parser()

_ASYNC_HEAD = re.compile(
    r"(?:CREATE\s+(?:UNIQUE\s+)?INDEX|ALTER\s+TABLE)\s+(ASYNC)\b", re.IGNORECASE
)
_AWS_IAM = re.compile(r"AWS\s+IAM\s+(GRANT|REVOKE)\b", re.IGNORECASE)


class ParseFailure(NamedTuple):  # not a dataclass: start-up (see sql/_record.py)
    """Why a statement did not parse, and where (character offset in the statement text)."""

    message: str
    offset: int


class ParsedStatement:
    """A :class:`Statement` with its parse tree, DSQL flags and class.

    The tree (:attr:`node`) is decoded from pglast's JSON on first use: building Python objects
    is the dominant cost of parsing, and most statements never need their tree (a linter rule
    first checks cheap facts such as keywords in :attr:`lower`). :attr:`json` is the raw text.
    """

    __slots__ = ("_lower", "_node", "error", "is_async", "json", "kind", "node_type",
                 "statement")

    def __init__(
        self,
        statement: Statement,
        node_type: str | None,
        node: Node | None = None,
        is_async: bool = False,
        *,
        error: ParseFailure | None = None,
        kind: StatementKind = StatementKind.UNKNOWN,
        json_text: str | None = None,
    ) -> None:
        self.statement = statement
        self.node_type = node_type
        self._node = node
        self.is_async = is_async
        self.error = error
        self.kind = kind
        self.json = json_text
        self._lower: str | None = None

    def __repr__(self) -> str:
        return (f"ParsedStatement(line={self.line}, node_type={self.node_type!r}, "
                f"is_async={self.is_async}, text={self.text[:40]!r})")

    @property
    def node(self) -> Node | None:
        """The statement's node body (``{"relation": ..., ...}``), or None if it did not parse."""
        if self._node is None and self.json is not None:
            stmts = json.loads(self.json).get("stmts") or ()
            self._node = _unwrap(stmts[0])[1] if stmts else {}
        return self._node

    @property
    def lower(self) -> str:
        """The statement text in lower case (cached), for cheap keyword checks."""
        if self._lower is None:
            self._lower = self.statement.text.lower()
        return self._lower

    @property
    def text(self) -> str:
        return self.statement.text

    @property
    def line(self) -> int:
        return self.statement.line

    @property
    def column(self) -> int:
        return self.statement.column

    def char_offset(self, location: int | None) -> int:
        """Character offset in :attr:`text` of a pglast ``location`` value (a byte offset)."""
        if location is None or location < 0:
            return 0
        rel = location
        text = self.statement.text
        if text.isascii():
            return max(0, min(rel, len(text)))
        return len(text.encode("utf-8")[: max(rel, 0)].decode("utf-8", errors="ignore"))

    def location_of(self, char_offset: int) -> int:
        """The pglast-style ``location`` (a byte offset) of a character offset in :attr:`text`."""
        return len(self.statement.text[:char_offset].encode("utf-8"))

    def position(self, location: int | None = None) -> tuple[int, int]:
        """Line and column (1-based) in the script of a pglast ``location`` in this statement."""
        if location is None:
            return self.statement.line, self.statement.column
        return self.statement.position_of(self.char_offset(location))


def dsql_syntax(text: str) -> tuple[str, bool]:
    """``text`` with a leading DSQL ``ASYNC`` keyword blanked, and whether there was one."""
    m = _ASYNC_HEAD.match(text)
    if m is None:
        return text, False
    a, b = m.span(1)
    return text[:a] + " " * (b - a) + text[b:], True


def _unwrap(raw: Node) -> tuple[str, Node]:
    stmt = raw.get("stmt")
    if not stmt:
        return "EmptyStmt", {}
    ((node_type, node),) = stmt.items()
    return node_type, node


_NODE_TYPE = re.compile(r'\{"version":\d+,"stmts":\[\{"stmt":\{"(\w+)"')


def _parse_one(stmt: Statement, text: str, is_async: bool) -> ParsedStatement:
    try:
        raw = _pg.parse_sql_json(text)
    except _pg.ParseError as exc:
        iam = _AWS_IAM.match(text)
        if iam:
            return ParsedStatement(stmt, "AwsIamStmt", {"action": iam.group(1).upper()},
                                   is_async, kind=kind_of("AwsIamStmt"))
        # pglast gives a 0-based character index, or None for "at end of input"
        at = exc.args[1] if len(exc.args) > 1 else None
        offset = at if isinstance(at, int) else len(text)
        message = str(exc.args[0]) if exc.args else str(exc)
        return ParsedStatement(
            stmt, None, None, is_async, error=ParseFailure(message, max(0, min(offset, len(text))))
        )
    m = _NODE_TYPE.match(raw)
    if m is None:  # no statement at all, or an unexpected layout: decode to find out
        stmts = json.loads(raw).get("stmts") or ()
        if not stmts:
            return ParsedStatement(stmt, "EmptyStmt", {}, is_async, kind=StatementKind.OTHER)
        node_type, node = _unwrap(stmts[0])
        return ParsedStatement(stmt, node_type, node, is_async, kind=kind_of(node_type))
    node_type = m.group(1)
    return ParsedStatement(stmt, node_type, None, is_async, kind=kind_of(node_type),
                           json_text=raw)


def parse_statement(stmt: Statement) -> ParsedStatement:
    """Parse one statement on its own."""
    text, is_async = dsql_syntax(stmt.text)
    return _parse_one(stmt, text, is_async)


def parse_statements(statements: list[Statement]) -> list[ParsedStatement]:
    """Parse statements from :func:`split_script`, each on its own (so one syntax error costs
    one diagnostic), with trees decoded lazily."""
    out = []
    for stmt in statements:
        text, is_async = dsql_syntax(stmt.text)
        out.append(_parse_one(stmt, text, is_async))
    return out


def parse_script(script: str) -> list[ParsedStatement]:
    """Split and parse a whole script; never raises on bad SQL (see ``ParsedStatement.error``)."""
    return parse_statements(split_script(script))


__all__ = [
    "Node",
    "ParseFailure",
    "ParsedStatement",
    "dsql_syntax",
    "parse_script",
    "parse_statement",
    "parse_statements",
]
