"""Small readers for pglast's JSON parse trees (plain dicts and lists)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ..sql import ParsedStatement, transaction_kind

Node = dict[str, Any]

# pg_catalog names of the types people write
_TYPE_ALIASES = {
    "int8": "bigint", "int4": "integer", "int2": "smallint", "int": "integer",
    "float8": "double precision", "float4": "real", "bool": "boolean",
    "bpchar": "char", "serial4": "serial", "serial8": "bigserial", "serial2": "smallserial",
}


def type_name(type_node: Node | None) -> str:
    """The SQL name of a ``TypeName`` node: ``bigint``, ``text``, ``jsonb``, ``serial``..."""
    if not type_node:
        return ""
    names = type_node.get("names") or ()
    if not names:
        return ""
    last = str(names[-1]["String"]["sval"]).lower()
    return _TYPE_ALIASES.get(last, last)


def is_array(type_node: Node | None) -> bool:
    return bool(type_node and type_node.get("arrayBounds"))


def sval(node: Node | None) -> str:
    """The text of a ``String`` node (or of a one-element list of them)."""
    if not node:
        return ""
    if "String" in node:
        return str(node["String"]["sval"])
    return ""


def svals(nodes: list[Node] | None) -> list[str]:
    return [sval(n) for n in nodes or ()]


def relname(relation: Node | None) -> str:
    if not relation:
        return ""
    name = str(relation.get("relname", ""))
    schema = relation.get("schemaname")
    return f"{schema}.{name}" if schema else name


def options(defelems: list[Node] | None) -> dict[str, Node]:
    """``DefElem`` list (``WITH (...)``, sequence options) as name → DefElem body."""
    out: dict[str, Node] = {}
    for item in defelems or ():
        body = item.get("DefElem")
        if body:
            out[str(body.get("defname", "")).lower()] = body
    return out


def int_arg(defelem: Node | None) -> int | None:
    """The integer argument of a DefElem (``CACHE 5``), if it has one."""
    if not defelem:
        return None
    arg = defelem.get("arg") or {}
    if "Integer" in arg:
        return int(arg["Integer"].get("ival", 0))
    if "Float" in arg:  # large values come back as Float with a string
        try:
            return int(str(arg["Float"].get("fval")))
        except ValueError:
            return None
    return None


def str_arg(defelem: Node | None) -> str:
    if not defelem:
        return ""
    arg = defelem.get("arg") or {}
    if "String" in arg:
        return str(arg["String"]["sval"])
    if isinstance(arg, list):
        return ".".join(svals(arg))
    return ""


_RELATION = re.compile(r'"relation":\{(?:"catalogname":"(?:[^"\\]|\\.)*",)?'
                       r'(?:"schemaname":"((?:[^"\\]|\\.)*)",)?"relname":"((?:[^"\\]|\\.)*)"')


def statement_relation(p: ParsedStatement) -> str:
    """The first ``relation`` of a statement (the table of CREATE TABLE / INDEX / ALTER
    TABLE), read from the raw JSON when possible so that the tree is not decoded."""
    if p.json is not None:
        m = _RELATION.search(p.json)
        if m is not None and "\\" not in m.group(0):
            schema, name = m.group(1), m.group(2)
            return f"{schema}.{name}" if schema else name
    return relname((p.node or {}).get("relation"))


def walk(node: Any, kind: str) -> Iterator[Node]:
    """Every node body of type ``kind`` (e.g. ``"FuncCall"``) anywhere below ``node``."""
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            for key, value in cur.items():
                if key == kind and isinstance(value, dict):
                    yield value
                if isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(cur, list):
            stack.extend(cur)


def func_name(call: Node) -> str:
    """Dotted, lower-cased name of a ``FuncCall``: ``sys.wait_for_job``, ``pg_advisory_lock``."""
    return ".".join(svals(call.get("funcname"))).lower()


def column_defs(create: Node) -> Iterator[Node]:
    for elt in create.get("tableElts") or ():
        if "ColumnDef" in elt:
            yield elt["ColumnDef"]


def table_constraints(create: Node) -> Iterator[Node]:
    for elt in create.get("tableElts") or ():
        if "Constraint" in elt:
            yield elt["Constraint"]


def column_constraints(coldef: Node) -> Iterator[Node]:
    for c in coldef.get("constraints") or ():
        if "Constraint" in c:
            yield c["Constraint"]


def alter_cmds(alter: Node) -> Iterator[Node]:
    for c in alter.get("cmds") or ():
        if "AlterTableCmd" in c:
            yield c["AlterTableCmd"]


def added_column(cmd: Node) -> Node | None:
    if cmd.get("subtype") == "AT_AddColumn":
        return (cmd.get("def") or {}).get("ColumnDef")
    return None


def added_constraint(cmd: Node) -> Node | None:
    if cmd.get("subtype") == "AT_AddConstraint":
        return (cmd.get("def") or {}).get("Constraint")
    return None


__all__ = [
    "Node",
    "added_column",
    "added_constraint",
    "alter_cmds",
    "column_constraints",
    "column_defs",
    "func_name",
    "int_arg",
    "is_array",
    "options",
    "relname",
    "statement_relation",
    "str_arg",
    "sval",
    "svals",
    "table_constraints",
    "transaction_kind",
    "type_name",
    "walk",
]
