"""Make a downloaded project's modules importable without installing the project.

A history's revisions import helpers from their own package (``from airflow.migrations.utils
import ...``, the project's SQLAlchemy types). Installing airflow, prefect or dagster with all
their dependencies would take minutes and could replace the SQLAlchemy/Alembic this repository
runs with, so the harness puts the extracted wheels (the project's, plus the few pinned extra
wheels a history lists) first on ``sys.path`` for the time of the run.

Third-party modules those helpers import but that play no part in the schema (``numpy`` for a
data migration's float limits, logging decorations, ...) are listed per history as *stubs*: a
module whose every attribute is an inert placeholder. The list is explicit, per history, in
:mod:`realworld.histories`: nothing is stubbed silently, and a module that is neither there nor
stubbed fails the history with ``ModuleNotFoundError``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any


class Placeholder:
    """Anything a stubbed module is asked for: callable, subclassable, indexable, falsy."""

    def __init__(self, name: str = "stub") -> None:
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and not kwargs and (
                callable(args[0]) or isinstance(args[0], (classmethod, staticmethod, property))):
            return args[0]  # used as a decorator: keep the decorated function
        return Placeholder(self._name + "()")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return Placeholder(f"{self._name}.{name}")

    def __getitem__(self, key: Any) -> Any:
        return Placeholder(f"{self._name}[]")

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[type, ...]:
        return (object,)

    def __or__(self, other: Any) -> Any:
        return self

    def __ror__(self, other: Any) -> Any:
        return self

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<stub {self._name}>"


class StubModule(types.ModuleType):
    """A module that answers every attribute with a :class:`Placeholder`."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return Placeholder(f"{self.__name__}.{name}")


class _StubLoader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = StubModule(spec.name)
        module.__path__ = []  # a package, so that its submodules are stubs too
        # a file that does not exist, for code that locates its dependencies' folders
        module.__file__ = f"/nonexistent-stub/{spec.name.replace('.', '/')}/__init__.py"
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        return None


def _within(name: str, roots: Iterable[str]) -> bool:
    return any(name == root or name.startswith(root + ".") for root in roots)


class StubFinder(importlib.abc.MetaPathFinder):
    """Answers the listed modules (and their submodules) with stubs, before any other finder."""

    def __init__(self, stubs: Iterable[str]) -> None:
        self.stubs = tuple(stubs)

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if _within(fullname, self.stubs):
            return importlib.machinery.ModuleSpec(fullname, _StubLoader(), is_package=True)
        return None


@contextlib.contextmanager
def importable(site: Path, stubs: Iterable[str] = ()) -> Iterator[None]:
    """The modules in ``site`` importable (and ``stubs`` stubbed) inside the block; afterwards
    every module loaded from there is forgotten, so the next history starts clean."""
    finder = StubFinder(stubs)
    sys.meta_path.insert(0, finder)
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        with contextlib.suppress(ValueError):
            sys.path.remove(str(site))
        for name, module in list(sys.modules.items()):
            origin = getattr(module, "__file__", None) or ""
            if _within(name, finder.stubs) or origin.startswith(str(site)):
                del sys.modules[name]
        importlib.invalidate_caches()
