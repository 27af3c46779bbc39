"""A plain class's ``__eq__`` and ``__repr__`` from its fields, as ``@dataclass`` would add them.

The classes on ``lint``'s path are not dataclasses: importing :mod:`dataclasses` (and the
:mod:`inspect` module it needs) and building each class costs more than linting a
one-statement file does (issue 18: start-up; tests/cli/test_fast.py guards it).
"""

from __future__ import annotations


class Record:  # noqa: PLW1641  (unhashable on purpose: see below)
    """Equality and repr by the names in ``_fields`` (a class attribute, in field order)."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Record)
        return self._values() == other._values()

    # no __hash__ here: defining __eq__ alone makes Python set it to None, so a Record is
    # unhashable, like a dataclass with eq and without frozen

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__qualname__}({shown})"


class FrozenRecord(Record):
    """A :class:`Record` that its code never changes after ``__init__``: hashable by value."""

    __slots__ = ()

    def __hash__(self) -> int:
        return hash(self._values())


__all__ = ["FrozenRecord", "Record"]
