"""The plan tree of ``EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON)``, as plain dataclasses.

PostgreSQL's JSON plan is a list holding one object with ``Plan`` (the root node, children in
``Plans``), ``Planning Time`` and ``Execution Time`` (ms). DSQL keeps PostgreSQL's format and
adds its own node types (see :mod:`.nodes`); unknown keys are kept in :attr:`PlanNode.raw`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

#: node keys that hold a predicate, and where it is evaluated
PREDICATE_KEYS = ("Index Cond", "Recheck Cond", "Filter", "Filters", "Storage Filter",
                  "Hash Cond", "Merge Cond", "Join Filter")
JOIN_KEYS = ("Hash Cond", "Merge Cond", "Join Filter")


@dataclass
class PlanNode:
    node_type: str
    relation: str | None = None
    schema: str | None = None
    alias: str | None = None
    index: str | None = None
    plan_rows: float = 0.0
    actual_rows: float | None = None
    actual_total_ms: float | None = None
    loops: int = 1
    rows_removed: int | None = None
    predicates: dict[str, str] = field(default_factory=dict)
    children: list[PlanNode] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    number: int = 0  # position in the depth-first walk, from 1

    @property
    def duration_ms(self) -> float:
        """The node's whole wall-clock time: per-loop time * loops (the guide's Node
        Duration); children's time is inside it."""
        return (self.actual_total_ms or 0.0) * self.loops

    @property
    def total_actual_rows(self) -> float | None:
        return None if self.actual_rows is None else self.actual_rows * self.loops

    @property
    def label(self) -> str:
        text = self.node_type
        if self.index:
            text += f" using {self.index}"
        if self.relation:
            name = f"{self.schema}.{self.relation}" if self.schema else self.relation
            text += f" on {name}"
            if self.alias and self.alias != self.relation:
                text += f" {self.alias}"
        return text

    def walk(self) -> Iterator[PlanNode]:
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass
class CapturedPlan:
    root: PlanNode
    planning_ms: float | None = None
    execution_ms: float | None = None
    query_id: str | None = None
    dpu: str | None = None  # DSQL's "DPU Estimate" line, when the target reports one

    def nodes(self) -> list[PlanNode]:
        return list(self.root.walk())


def parse_plan(document: Any) -> CapturedPlan:
    """A :class:`CapturedPlan` from the JSON EXPLAIN returns (the list, or its one object)."""
    top = document[0] if isinstance(document, list) else document
    if not isinstance(top, Mapping) or not isinstance(top.get("Plan"), Mapping):
        raise ValueError("not an EXPLAIN (FORMAT JSON) document: no 'Plan' object")
    root = _node(top["Plan"])
    for number, node in enumerate(root.walk(), start=1):
        node.number = number
    query_id = top.get("Query Identifier")
    dpu = top.get("DPU Estimate")
    return CapturedPlan(root, _float(top.get("Planning Time")), _float(top.get("Execution Time")),
                        None if query_id is None else str(query_id),
                        None if dpu is None else _dpu_text(dpu))


def _node(data: Mapping[str, Any]) -> PlanNode:
    removed = sum(int(data.get(k) or 0) for k in data if str(k).startswith("Rows Removed by"))
    return PlanNode(
        node_type=str(data.get("Node Type", "?")),
        relation=data.get("Relation Name"),
        schema=data.get("Schema"),
        alias=data.get("Alias"),
        index=data.get("Index Name"),
        plan_rows=float(data.get("Plan Rows") or 0.0),
        actual_rows=_float(data.get("Actual Rows")),
        actual_total_ms=_float(data.get("Actual Total Time")),
        loops=int(data.get("Actual Loops") or 1),
        rows_removed=removed if any(str(k).startswith("Rows Removed by") for k in data) else None,
        predicates={k: str(data[k]) for k in PREDICATE_KEYS if data.get(k)},
        children=[_node(child) for child in data.get("Plans") or ()],
        raw={k: v for k, v in data.items() if k != "Plans"},
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _dpu_text(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return str(value)


# -- the text form --------------------------------------------------------------------------
# DSQL documents its plans in EXPLAIN's text form, which is also where it prints the Query
# Identifier and the "Statement DPU Estimate"; a target that refuses FORMAT JSON is read here.

_NODE_LINE = re.compile(
    r"^(?P<indent>\s*)(?:->\s+)?(?P<label>\S.*?)\s+"
    r"\(cost=[\d.]+\.\.[\d.]+ rows=(?P<rows>\d+) width=\d+\)"
    r"(?:\s+\(actual(?: time=[\d.]+\.\.(?P<time>[\d.]+))? rows=(?P<actual>[\d.]+) "
    r"loops=(?P<loops>\d+)\)|\s+\((?P<never>never executed)\))?\s*$")
_PROPERTY = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Z][\w /-]*?):\s*(?P<value>.*)$")
_LABEL = re.compile(r"^(?P<type>.+?)(?: using (?P<index>\S+))?(?: on (?P<relation>\S+)"
                    r"(?: (?P<alias>\S+))?)?$")


def parse_text_plan(text: str) -> CapturedPlan:
    """A :class:`CapturedPlan` from ``EXPLAIN (ANALYZE, VERBOSE)`` text, one line per row."""
    stack: list[tuple[int, PlanNode]] = []
    root: PlanNode | None = None
    footer: dict[str, str] = {}
    dpu: list[str] = []
    in_dpu = False
    for line in text.splitlines():
        node_match = _NODE_LINE.match(line)
        if node_match is not None:
            in_dpu = False
            node = _text_node(node_match)
            indent = len(node_match["indent"])
            while stack and stack[-1][0] >= indent:
                stack.pop()
            if stack:
                stack[-1][1].children.append(node)
            elif root is None:
                root = node
            stack.append((indent, node))
            continue
        prop = _PROPERTY.match(line)
        if prop is None:
            continue
        key, value = prop["key"].strip(), prop["value"].strip()
        if not prop["indent"]:  # the footer: times, query id, DPU estimate
            in_dpu = key.endswith("DPU Estimate")
            footer[key] = value
        elif in_dpu:
            dpu.append(f"{key}: {value}")
        elif stack:
            _text_property(stack[-1][1], key, value)
    if root is None:
        raise ValueError("no plan node found in the EXPLAIN output")
    for number, node in enumerate(root.walk(), start=1):
        node.number = number
    return CapturedPlan(root, _ms(footer.get("Planning Time")), _ms(footer.get("Execution Time")),
                        footer.get("Query Identifier"), ", ".join(dpu) or None)


def _text_node(match: re.Match[str]) -> PlanNode:
    label = _LABEL.match(match["label"])
    assert label is not None  # the pattern matches any non-empty label
    relation, schema = label["relation"], None
    if relation and "." in relation:
        schema, relation = relation.rsplit(".", 1)
    executed = match["actual"] is not None
    return PlanNode(
        node_type=label["type"], relation=relation, schema=schema,
        alias=label["alias"] or relation, index=label["index"],
        plan_rows=float(match["rows"]),
        actual_rows=float(match["actual"]) if executed else None,
        actual_total_ms=float(match["time"]) if match["time"] else None,
        loops=int(match["loops"]) if executed else 1)


def _text_property(node: PlanNode, key: str, value: str) -> None:
    node.raw[key] = value
    if key in PREDICATE_KEYS:
        node.predicates[key] = value
    elif key.startswith("Rows Removed by"):
        node.rows_removed = (node.rows_removed or 0) + int(value)


def _ms(value: str | None) -> float | None:
    return None if value is None else float(value.split()[0])
