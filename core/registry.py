"""How a lower layer asks a higher one, without importing it.

Imports point down: accounts ← billing ← generation ← operations. Where a lower module needs
something only a higher app knows (what a `job:<uuid>` reference links to, what a job costs,
which checks `reconcile` runs, how large a photo upload may be), it declares a Registry, and
the app that knows registers its entries in its `AppConfig.ready()`. Every such question in
the project goes through this one mechanism, so `grep register(` finds every answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from django.core.exceptions import ImproperlyConfigured

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, what: str) -> None:
        self.what = what  # for the error when two apps claim one name
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> None:
        # ready() may run again (a test's app registry reload): the same entry is no conflict.
        if name in self._entries and self._entries[name] != entry:
            raise ImproperlyConfigured(f"{self.what}: {name!r} is registered twice")
        self._entries[name] = entry

    def unregister(self, name: str) -> None:
        # An answer withdrawn (a test's own check, registered for the length of the test).
        self._entries.pop(name, None)

    def get(self, name: str) -> T | None:
        return self._entries.get(name)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(list(self._entries.items()))

    def __iter__(self) -> Iterator[T]:
        return iter(list(self._entries.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._entries
