"""Keyset ("older" / "newer") pagination for long, newest-first histories.

A page starts after the last row the person saw, found through the list's index, so the
hundredth page costs what the first does; numbered pages would count every row and skip
through all the earlier ones. The cursor in the URL holds that row's sort values.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import reduce
from operator import attrgetter

from django.db.models import Q, QuerySet

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Key:
    """One sort column, newest first: its ORM path and the Python type of its values."""

    path: str
    kind: type

    def value_of(self, row) -> object:
        return attrgetter(self.path.replace("__", "."))(row)

    def encode(self, value) -> str:
        if self.kind is datetime:
            return str((value - EPOCH) // MICROSECOND)
        if self.kind is uuid.UUID:
            return value.hex
        return str(int(value))

    def decode(self, text: str):
        if self.kind is datetime:
            return EPOCH + int(text) * MICROSECOND
        if self.kind is uuid.UUID:
            return uuid.UUID(hex=text)
        return int(text)


@dataclass
class KeysetPage:
    object_list: list = field(default_factory=list)
    older: str | None = None  # cursor for the next page back in time
    newer: str | None = None  # cursor for the page before this one

    @property
    def has_other_pages(self) -> bool:
        return bool(self.older or self.newer)


def _cursor(keys: tuple[Key, ...], row) -> str:
    return "_".join(key.encode(key.value_of(row)) for key in keys)


def _decode(keys: tuple[Key, ...], cursor: str | None) -> list | None:
    if not cursor:
        return None
    parts = cursor.split("_")
    if len(parts) != len(keys):
        return None
    try:
        return [key.decode(part) for key, part in zip(keys, parts, strict=True)]
    except (ValueError, OverflowError):
        return None


def _beyond(keys: tuple[Key, ...], values: list, op: str) -> Q:
    # (a, b, c) < (x, y, z) spelled out, plus `a <= x` on its own so that the index range
    # starts at the cursor instead of at the newest row.
    alternatives = []
    for position, key in enumerate(keys):
        equal = {f"{k.path}": v for k, v in zip(keys[:position], values[:position], strict=True)}
        alternatives.append(Q(**equal, **{f"{key.path}__{op}": values[position]}))
    return Q(**{f"{keys[0].path}__{op}e": values[0]}) & reduce(lambda a, b: a | b, alternatives)


def keyset_older(queryset: QuerySet, *, keys: tuple[Key, ...], before: str | None) -> QuerySet:
    """The rows older than the cursor `before` (all of them without one, or with one that cannot
    be read); for pages built by hand, such as the gallery's search."""
    values = _decode(keys, before)
    return queryset if values is None else queryset.filter(_beyond(keys, values, "lt"))


def keyset_page(
    queryset: QuerySet, *, keys: tuple[Key, ...], size: int, before: str | None = None, after: str | None = None
) -> KeysetPage:
    """One page, newest first: rows older than `before`, else newer than `after`, else the newest.

    A cursor that cannot be read gives the newest page rather than an error.
    """
    descending = [f"-{key.path}" for key in keys]
    if (values := _decode(keys, after)) is not None:
        rows = list(queryset.filter(_beyond(keys, values, "gt")).order_by(*(k.path for k in keys))[: size + 1])
        more_newer = len(rows) > size
        rows = rows[:size][::-1]
        return KeysetPage(
            object_list=rows,
            older=_cursor(keys, rows[-1]) if rows else None,
            newer=_cursor(keys, rows[0]) if rows and more_newer else None,
        )
    values = _decode(keys, before)
    if values is not None:
        queryset = queryset.filter(_beyond(keys, values, "lt"))
    rows = list(queryset.order_by(*descending)[: size + 1])
    more_older = len(rows) > size
    rows = rows[:size]
    return KeysetPage(
        object_list=rows,
        older=_cursor(keys, rows[-1]) if rows and more_older else None,
        newer=_cursor(keys, rows[0]) if rows and values is not None else None,
    )
