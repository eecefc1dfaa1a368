"""The gallery's newest page, rendered once and kept in the cache until it changes.

Rendering 24 tiles is most of what the gallery costs, and people open its newest page far more
often than anything on it changes. So that page's grid (one per filter) is kept in the cache
under the person's gallery version (core/versioned.py), which `gallery_changed` replaces once a
job of theirs succeeds or is deleted. Older pages are rendered each time: fewer visits, and their
cursors are the person's to choose.

The grid holds nothing that expires or differs between the person's browsers: links to our own
URLs (thumbnails are served through the app), no CSRF token. Only Redis keeps grids; with local
memory or Redis down every page is rendered afresh; if Redis was down when a change happened, a
grid can be out of date for at most GRID_SECONDS.
"""

from __future__ import annotations

from collections.abc import Callable

from core.versioned import version_bump, versioned

GRID_SECONDS = 15 * 60


def _version_key(user_id: int) -> str:
    return f"generation:gallery-version:{user_id}"


def gallery_grid(*, user_id: int, kind: str | None, render: Callable[[], str]) -> str:
    """The newest page's grid for this filter, from the cache or rendered by `render`."""
    return versioned(
        version_key=_version_key(user_id),
        key=f"generation:gallery:{user_id}:{kind or 'all'}",
        make=render,
        seconds=GRID_SECONDS,
    )


def gallery_changed(*, user_id: int) -> None:
    """What the person's gallery shows changed: the kept grids are not read again."""
    version_bump(_version_key(user_id))
