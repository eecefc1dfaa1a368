"""Values kept in the shared cache until what they were made from changes.

A value is kept with the version it was made under: a random token at `version_key`, which
`version_bump` deletes once a change commits, and the next read draws anew. A new token rather
than deleting the values makes a read that saw the database before the change harmless: what it
made is kept with the old token, which no longer matches.

Only a cache every process shares (Redis) keeps values: a change in one process would never reach
another's local memory, so there every read makes the value afresh. With Redis down every read
makes it afresh too; if Redis was down when a change happened, a value can be out of date for at
most the `seconds` it was kept for.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from typing import TypeVar

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

T = TypeVar("T")


def versioned(*, version_key: str, key: str, make: Callable[[], T], seconds: int) -> T:
    """The value kept at `key` if it was made under the current version, else `make()`."""
    if not isinstance(caches["default"], RedisCache):
        return make()
    try:
        # One round trip: the version and the value, kept with the version it was made under.
        found = cache.get_many([version_key, key])
        version = found.get(version_key)
        if version is None:
            cache.add(version_key, uuid.uuid4().hex, seconds)
            version = cache.get(version_key)
    except RedisError:
        return make()
    if version is None:  # changed again in between: make it, keep nothing
        return make()
    kept = found.get(key)
    if kept is not None and kept[0] == version:
        return kept[1]
    value = make()
    with contextlib.suppress(RedisError):
        cache.set(key, (version, value), seconds)
    return value


def version_bump(version_key: str) -> None:
    """What the values under `version_key` were made from changed: they are not read again."""
    with contextlib.suppress(RedisError):
        cache.delete(version_key)
