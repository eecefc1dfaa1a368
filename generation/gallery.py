"""The gallery's newest page, rendered once and kept in the cache until it changes.

Rendering 24 tiles is most of what the gallery costs, and people open its newest page far more
often than anything on it changes. So that page's grid (one per filter) is kept in the cache
with the person's gallery version it was rendered under: a random token, which `gallery_changed`
deletes once a job of theirs succeeds or is deleted, and the next visit draws anew. A new token
rather than deleting the grids makes a render that read the database before the change harmless:
it is kept with the old token, which no longer matches. Older pages are rendered each time: fewer visits, and their cursors are
the person's to choose.

The grid holds nothing that expires or differs between the person's browsers: links to our own
URLs (thumbnails are served through the app), no CSRF token. Only a cache every process shares
(Redis) keeps grids: a worker's change would never reach the web process's local memory. With
Redis down every page is rendered afresh; if it was down when a change happened, a grid can be
out of date for at most GRID_SECONDS.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

GRID_SECONDS = 15 * 60


def _version_key(user_id: int) -> str:
    return f"generation:gallery-version:{user_id}"


def gallery_grid(*, user_id: int, kind: str | None, render: Callable[[], str]) -> str:
    """The newest page's grid for this filter, from the cache or rendered by `render`."""
    if not isinstance(caches["default"], RedisCache):
        return render()
    version_key, grid_key = _version_key(user_id), f"generation:gallery:{user_id}:{kind or 'all'}"
    try:
        # One round trip: the person's version and the grid, kept with the version it was
        # rendered under.
        found = cache.get_many([version_key, grid_key])
        version = found.get(version_key)
        if version is None:
            cache.add(version_key, uuid.uuid4().hex, GRID_SECONDS)
            version = cache.get(version_key)
    except RedisError:
        return render()
    if version is None:  # changed again in between: show it, keep nothing
        return render()
    kept = found.get(grid_key)
    if kept is not None and kept[0] == version:
        return kept[1]
    html = render()
    with contextlib.suppress(RedisError):
        cache.set(grid_key, (version, html), GRID_SECONDS)
    return html


def gallery_changed(*, user_id: int) -> None:
    """What the person's gallery shows changed: the kept grids are not read again."""
    with contextlib.suppress(RedisError):
        cache.delete(_version_key(user_id))
