"""The one registry helper: named plug-ins (backends, methods, tasks, data sources, model assets).

Registering a name twice is an error; looking up an unknown name answers with "did you mean".
Plug-ins register themselves when their module is imported: a package of plug-ins imports every
module in its folder (import_submodules), so a new method or task is one new file.
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


def did_you_mean(name: str, known: Iterable[str], n: int = 1, cutoff: float = 0.5) -> str:
    """'; did you mean 'x'?' for the closest known names, or '' when none is close."""
    close = difflib.get_close_matches(name, list(known), n=n, cutoff=cutoff)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


class UnknownNameError(KeyError):
    """An unknown registry name; the message lists close matches and every known name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = item
            return item

        return add

    def register_instance(self, name: str) -> Callable[[type], type]:
        """Class decorator: register one instance of the class under `name`."""

        def add(cls: type) -> type:
            self.register(name)(cls())
            return cls

        return add

    def get(self, name: str) -> T:
        load_plugins()
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        hint = did_you_mean(name, self._items, n=3)
        return f"unknown {self.kind} {name!r}{hint} (known: {', '.join(sorted(self._items))})"

    def __contains__(self, name: object) -> bool:
        load_plugins()
        return name in self._items

    def names(self) -> list[str]:
        load_plugins()
        return sorted(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def import_submodules(package: str) -> None:
    """Import every module and subpackage of `package` (names starting with _ excepted), in name
    order: what registers itself there is then known."""
    import pkgutil

    modules = pkgutil.iter_modules(importlib.import_module(package).__path__)
    for info in sorted(modules, key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")


_plugins_loaded: set[str] = set()
BUILT_IN = ("harness.models", "harness.models.architectures", "harness.backends")


def load_plugins() -> None:
    """Import the built-in plug-ins and any modules named in FTBENCH_PLUGINS (comma-separated).

    FTBENCH_PLUGINS lets users (and tests) add methods or tasks without editing the harness; the
    variable is inherited by run subprocesses, so a plug-in is visible where the run executes.
    """
    modules = list(BUILT_IN)
    modules += [m.strip() for m in os.environ.get("FTBENCH_PLUGINS", "").split(",") if m.strip()]
    for module in modules:
        if module not in _plugins_loaded:
            _plugins_loaded.add(module)
            importlib.import_module(module)
