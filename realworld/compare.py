"""Compare two snapshots: the differences that are not allowed, and the allowed ones."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .allowed import ALLOWED
from .snapshot import Key, Snapshot, describe


@dataclass(frozen=True)
class Difference:
    key: Key
    stock: Any
    plugin: Any

    def __str__(self) -> str:
        if self.plugin is None:
            return f"{describe(self.key)}: missing on the plugin side; stock: {_show(self.stock)}"
        if self.stock is None:
            return f"{describe(self.key)}: only on the plugin side: {_show(self.plugin)}"
        return f"{describe(self.key)}: stock {_show(self.stock)} / plugin {_show(self.plugin)}"


@dataclass
class Comparison:
    differences: list[Difference] = field(default_factory=list)
    allowed: list[tuple[Difference, str]] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return not self.differences


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(v) for v in value) + ")"
    return repr(value) if value is None or isinstance(value, bool) else str(value)


def differences(left: Snapshot, right: Snapshot) -> list[Difference]:
    """Every key whose value differs (``left`` is the stock side)."""
    return [Difference(key, left.get(key), right.get(key))
            for key in sorted(left.keys() | right.keys())
            if left.get(key) != right.get(key)]


def compare(stock: Snapshot, plugin: Snapshot,
            left_out: Mapping[Key, str] | None = None) -> Comparison:
    """The differences of ``plugin`` from ``stock``; allowed are those of :data:`ALLOWED` and
    the objects ``left_out`` of the plugin side's resynchronisation ({key: rule name}, see
    :data:`realworld.allowed.LEFT_OUT`) while they are missing there."""
    result = Comparison()
    left_out = left_out or {}
    for diff in differences(stock, plugin):
        if diff.key in left_out and diff.plugin is None:
            result.allowed.append((diff, left_out[diff.key]))
            continue
        rule = next((r for r in ALLOWED
                     if r.applies(diff.key, diff.stock, diff.plugin, stock, plugin)), None)
        if rule is None:
            result.differences.append(diff)
        else:
            result.allowed.append((diff, rule.name))
    return result
