"""Fingerprints of tables: a canonical, JSON-able form of what the live snapshot says about a
table, and a readable difference between two of them (DESIGN.md §3.2a).

A plan records the fingerprint of every table it touches as the planner saw it (its *premise*)
and as it will be when the plan has run (its *promise*); the runner compares both with the live
schema (:mod:`dsql_migrate.runner.guard`).

The fingerprint is derived generically from the snapshot's :class:`~dsql_migrate.catalog.Table`
dataclass, so a field added to the snapshot later (grants, comments, dependent views, storage
parameters, ...) is part of every fingerprint without a change here:

- a tuple of dataclasses that have a ``name`` (columns, constraints, indexes, ...) becomes a
  mapping ``name -> fields``: each item is one *object*, compared by name, order-free;
- any other tuple of dataclasses (grants, say) becomes a sorted list: a set, compared whole;
- every other field is a value compared whole (the table's comment, say).

What changes without anyone changing the schema is left out (:data:`VOLATILE`): row counts and
estimates, column positions, and the validity of indexes and constraints (an async build or a
``NOT VALID`` constraint the plan validates later is timing, not drift; the runner's own steps
wait for both). Values are normalised to one spelling (:data:`NORMALISERS`): type names as
PostgreSQL's ``format_type`` prints them, default expressions without the casts PostgreSQL adds
to literals, constraint definitions without ``NOT VALID``.

An object in a *promise* may carry only the fields the planner can predict (a new CHECK
constraint's definition is printed by PostgreSQL, not by us): :func:`diff` compares the fields an
expected object has.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: fields that change without a schema change (statistics, timing), never fingerprinted
VOLATILE: frozenset[str] = frozenset({
    "row_estimate", "row_count", "row_bytes", "position", "valid", "validated",
    # which table owns a sequence moves to the new table within a recreation (one step after
    # its swap); the column's default, which names the sequence, is fingerprinted
    "owned_sequence",
})
#: fields that identify a table or an object (the key it is found under), not part of its body
IDENTITY: frozenset[str] = frozenset({"schema", "name"})
#: a key of a promised table that says the planner cannot predict the table's end state
UNCHECKED = "$unchecked"
#: a key of a promised table: the plan renames the table, which had this key in the premise
RENAMED_FROM = "$renamed_from"
#: a key of a promised table: objects as the plan's own steps leave them part-way (a partial
#: fingerprint), neither as in the premise nor as promised; e.g. a column added in place before
#: a data change of the revision, and changed by a recreation after it. The runner's check
#: before a destructive step accepts exactly these values too; the end state must be as promised
PASSING = "$passing"
#: keys of a fingerprint that describe the plan's view of the table, not the table
RESERVED = frozenset({UNCHECKED, RENAMED_FROM, PASSING})

Fingerprint = dict[str, Any]


# -- normalisation -------------------------------------------------------------------------------

_TYPE_ALIASES = {
    "int": "integer", "int4": "integer", "int8": "bigint", "int2": "smallint",
    "serial": "integer", "bigserial": "bigint", "smallserial": "smallint",
    "bool": "boolean", "float8": "double precision", "float": "double precision",
    "float4": "real", "decimal": "numeric", "varchar": "character varying",
    "char": "character", "bpchar": "character", "timestamp": "timestamp without time zone",
    "timestamptz": "timestamp with time zone", "time": "time without time zone",
    "timetz": "time with time zone", "datetime": "timestamp without time zone",
}
_TYPE = re.compile(r"^(?P<base>[a-z_ ][a-z0-9_ ]*?)\s*(?P<mod>\([^)]*\))?"
                   r"(?P<tail>(?:\s+with(?:out)?\s+time\s+zone)?)\s*(?P<array>(?:\[\])*)$")


def normalise_type(text: str) -> str:
    """A type name as ``format_type()`` prints it: ``VARCHAR(20)`` and
    ``character varying(20)`` are the same type."""
    lowered = " ".join(text.strip().lower().split())
    match = _TYPE.match(lowered)
    if match is None:
        return lowered
    base = _TYPE_ALIASES.get(match["base"].strip(), match["base"].strip())
    mod = (match["mod"] or "").replace(" ", "")
    zone = (match["tail"] or "").strip()
    word = base.split(" ", 1)[0]
    if match["base"].strip() == "float" and mod:
        # FLOAT(p) is a spelling, not a type: real for p <= 24, double precision for 25..53
        digits = mod.strip("()")
        small = digits.isdigit() and int(digits) <= 24
        return f"{'real' if small else 'double precision'}{match['array']}"
    if word in ("timestamp", "time"):  # timestamp(3) with time zone: the modifier goes first
        zone = zone or (base.split(" ", 1)[1] if " " in base else "without time zone")
        return f"{word}{mod} {zone}{match['array']}"
    return f"{base}{mod}{match['array']}"


_CAST = re.compile(r"::[a-z_][a-z0-9_ ]*(?:\([^)]*\))?(?:\[\])*", re.IGNORECASE)
_NUMERIC_LITERAL = re.compile(r"^'(-?\d+(?:\.\d+)?)'$")


def normalise_default(text: str | None) -> str | None:
    """A default expression without the casts PostgreSQL adds (``'new'::text`` is ``'new'``),
    without outer parentheses, with keywords in lower case outside string literals."""
    if text is None:
        return None
    parts = re.split(r"('(?:[^']|'')*')", text.strip())
    out = []
    for index, part in enumerate(parts):
        if index % 2:  # a string literal: as it is
            out.append(part)
        else:
            out.append(_CAST.sub("", part).lower())
    value = "".join(out).strip()
    while value.startswith("(") and value.endswith(")") and _balanced(value[1:-1]):
        value = value[1:-1].strip()
    numeric = _NUMERIC_LITERAL.match(value)
    return numeric[1] if numeric else value


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def normalise_definition(text: str | None) -> str | None:
    """A constraint definition without ``NOT VALID`` (validity is timing, see VOLATILE)."""
    if text is None:
        return None
    return re.sub(r"\s+NOT VALID\s*$", "", text.strip())


#: field name -> its normaliser (registry: a field added to the snapshot can add one here)
NORMALISERS: dict[str, Callable[[Any], Any]] = {
    "type": lambda v: normalise_type(v) if isinstance(v, str) else v,
    "data_type": lambda v: normalise_type(v) if isinstance(v, str) else v,
    "default": lambda v: normalise_default(v) if isinstance(v, str) or v is None else v,
    "definition": lambda v: normalise_definition(v) if isinstance(v, str) else v,
    "keys": lambda v: [normalise_key(k) if isinstance(k, str) else canonical(k) for k in v]
    if isinstance(v, (list, tuple)) else canonical(v),
}

_QUOTED = re.compile(r'^"((?:[^"]|"")+)"$')


def normalise_key(key: str) -> str:
    """An index key as a name: PostgreSQL prints a column key quoted where the name needs it
    (``"select"``, ``"my col"``), a plan names the column itself; expressions stay as printed."""
    quoted = _QUOTED.match(key)
    return quoted.group(1).replace('""', '"') if quoted else key


# -- canonical form ------------------------------------------------------------------------------


def canonical(value: Any) -> Any:
    """``value`` (a snapshot dataclass, tuple, mapping or scalar) in canonical JSON form."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: {} if _empty_named(value, f) else _field(f.name, getattr(value, f.name))
                for f in dataclasses.fields(value)
                if f.name not in VOLATILE and f.name not in IDENTITY}
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (tuple, list, frozenset, set)):
        items = list(value)
        if items and all(dataclasses.is_dataclass(i) and hasattr(i, "name") for i in items):
            return {str(i.name): canonical(i) for i in items}
        if items and all(dataclasses.is_dataclass(i) for i in items):
            return sorted((canonical(i) for i in items), key=_json)
        if isinstance(value, (frozenset, set)):
            return sorted((canonical(i) for i in items), key=_json)
        return [canonical(i) for i in items]
    return value


_ITEM_TYPE = re.compile(r"^(?:tuple|list|frozenset|set)\[\s*([A-Za-z_][\w.]*)\s*(?:,\s*\.\.\.)?\]$")


def _empty_named(owner: Any, item: dataclasses.Field[Any]) -> bool:
    """An empty collection whose items (by the field's annotation) are named dataclasses: a
    mapping, like a full one (``indexes: tuple[Index, ...] = ()`` is ``{}``)."""
    value = getattr(owner, item.name)
    if not isinstance(value, (tuple, list, frozenset, set)) or value:
        return False
    match = _ITEM_TYPE.match(str(item.type).replace("typing.", ""))
    if match is None:
        return False
    module = sys.modules.get(type(owner).__module__)
    cls = getattr(module, match[1].rsplit(".", 1)[-1], None)
    return isinstance(cls, type) and dataclasses.is_dataclass(cls) and any(
        f.name == "name" for f in dataclasses.fields(cls))


def _field(name: str, value: Any) -> Any:
    normalise = NORMALISERS.get(name)
    return normalise(value) if normalise is not None else canonical(value)


def table_fingerprint(table: Any) -> Fingerprint:
    """The fingerprint of a :class:`~dsql_migrate.catalog.Table` (see the module doc)."""
    result = canonical(table)
    assert isinstance(result, dict)
    return result


def _is_collection(value: Mapping[str, Any]) -> bool:
    return bool(value) and all(isinstance(v, Mapping) for v in value.values())


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# -- differences ---------------------------------------------------------------------------------

#: collection field -> the word for one of its objects
OBJECT_WORDS = {"columns": "column", "constraints": "constraint", "indexes": "index",
                "grants": "grant", "views": "view", "statistics": "statistics object"}


@dataclass(frozen=True)
class Difference:
    """One object that differs: ``sign`` is ``+`` (live has it, expected does not), ``-``
    (expected, not live) or ``~`` (both, with other values)."""

    table: str
    sign: str
    kind: str  # "table", "column", "constraint", ... or a table-level field's name
    name: str | None
    live: Any = None
    expected: Any = None

    @property
    def path(self) -> tuple[str, str, str | None]:
        return (self.table, self.kind, self.name)

    def text(self, *, expected_as: str = "the plan's source", live_as: str = "live") -> str:
        """One readable line, e.g. ``+ column important_zz text NOT NULL (not in the plan's
        source)``."""
        what = self.kind if self.name is None else f"{self.kind} {self.name}"
        if self.kind == "table":
            if self.sign == "+":
                return f"+ table {self.table} (exists; not in {expected_as})"
            return f"- table {self.table} (in {expected_as}; missing {live_as})"
        if self.sign == "+":
            return f"+ {what}{describe(self.kind, self.live)} (not in {expected_as})"
        if self.sign == "-":
            return f"- {what}{describe(self.kind, self.expected)} (in {expected_as}; " \
                   f"missing {live_as})"
        changes = _changed_fields(self.expected, self.live)
        return f"~ {what}: " + "; ".join(
            f"{field} {_show(before)} in {expected_as}, {_show(after)} {live_as}"
            for field, before, after in changes)


def describe(kind: str, value: Any) -> str:
    """`` text NOT NULL DEFAULT 'x'`` for a column, `` <definition>`` for a constraint or index,
    nothing or `` = <value>`` for other fields."""
    if not isinstance(value, Mapping):
        return "" if value is None else f" = {_show(value)}"
    if kind == "column":
        text = f" {value.get('type', '?')}" if value.get("type") else ""
        if value.get("nullable") is False:
            text += " NOT NULL"
        if value.get("default") is not None:
            text += f" DEFAULT {value['default']}"
        if value.get("identity"):
            text += f" GENERATED {str(value['identity']).upper()} AS IDENTITY"
        return text
    definition = value.get("definition")
    if isinstance(definition, str) and definition:
        return f" {definition}"
    keys = value.get("keys") or value.get("columns")
    return f" ({', '.join(map(str, keys))})" if keys else ""


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, str):
        return value
    return _json(value)


def _changed_fields(expected: Any, live: Any) -> list[tuple[str, Any, Any]]:
    if not isinstance(expected, Mapping) or not isinstance(live, Mapping):
        return [("value", expected, live)]
    return [(k, expected.get(k), live.get(k)) for k in sorted(expected)
            if expected.get(k) != live.get(k)]


def matches(expected: Any, live: Any) -> bool:
    """``live`` has every field ``expected`` states, with the same value (an expected object
    may state fewer fields than the live one has: what the planner could predict)."""
    if isinstance(expected, Mapping) and isinstance(live, Mapping):
        return all(k in live and live[k] == v for k, v in expected.items())
    return bool(expected == live)


def diff_table(table: str, expected: Mapping[str, Any] | None,
               live: Mapping[str, Any] | None) -> list[Difference]:
    """The objects of one table that differ between ``expected`` and ``live`` fingerprints
    (``None``: the table does not exist)."""
    if expected is None and live is None:
        return []
    if expected is None:
        return [Difference(table, "+", "table", None, live=live)]
    if live is None:
        return [Difference(table, "-", "table", None, expected=expected)]
    out: list[Difference] = []
    for field in sorted(set(expected) | set(live)):
        if field in RESERVED:
            continue
        want, have = expected.get(field), live.get(field)
        if field not in expected:
            continue  # a field the expectation does not state (made by an older snapshot)
        if isinstance(want, Mapping) and isinstance(have, Mapping) and (
                _is_collection(want) or _is_collection(have) or field in OBJECT_WORDS):
            out.extend(_diff_objects(table, OBJECT_WORDS.get(field, field), want, have))
        elif not matches(want, have):
            out.append(Difference(table, "~", field, None, live=have, expected=want))
    return out


def _diff_objects(table: str, kind: str, want: Mapping[str, Any],
                  have: Mapping[str, Any]) -> list[Difference]:
    out: list[Difference] = []
    for name in sorted(set(want) | set(have)):
        if name not in want:
            out.append(Difference(table, "+", kind, name, live=have[name]))
        elif name not in have:
            out.append(Difference(table, "-", kind, name, expected=want[name]))
        elif not matches(want[name], have[name]):
            out.append(Difference(table, "~", kind, name, live=have[name],
                                  expected=want[name]))
    return out


def diff(expected: Mapping[str, Mapping[str, Any] | None],
         live: Mapping[str, Mapping[str, Any] | None]) -> list[Difference]:
    """Every difference between expected and live fingerprints of the tables in ``expected``."""
    out: list[Difference] = []
    for table in sorted(expected):
        want = expected[table]
        if want is not None and UNCHECKED in want:
            continue
        out.extend(diff_table(table, want, live.get(table)))
    return out


def objects(fingerprint: Mapping[str, Any] | None) -> dict[tuple[str, str | None], Any]:
    """A fingerprint as ``(kind, name) -> value``, one entry per object or table-level field
    (``kind`` as in :class:`Difference`)."""
    if fingerprint is None:
        return {}
    out: dict[tuple[str, str | None], Any] = {}
    for field, value in fingerprint.items():
        if field in RESERVED:
            continue
        if isinstance(value, Mapping) and (_is_collection(value) or field in OBJECT_WORDS):
            for name, item in value.items():
                out[(OBJECT_WORDS.get(field, field), name)] = item
        else:
            out[(field, None)] = value
    return out


__all__ = ["IDENTITY", "NORMALISERS", "PASSING", "RENAMED_FROM", "RESERVED", "UNCHECKED",
           "VOLATILE", "Difference", "Fingerprint", "canonical", "describe", "diff", "diff_table",
           "matches", "normalise_default", "normalise_type", "objects", "table_fingerprint"]
