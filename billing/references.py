"""What a ledger entry's reference points at, told to billing by the app that owns it.

The ledger knows nothing of jobs or any other app's objects: an entry carries a reference
such as `job:<uuid>` or `checkout:<id>`. An app that owns a kind of reference registers how
to link it (generation registers `job` in its AppConfig.ready), and billing's pages ask here.
"""

from __future__ import annotations

from collections.abc import Callable

_links: dict[str, Callable[[str], str | None]] = {}


def reference_register(prefix: str, *, link: Callable[[str], str | None]) -> None:
    _links[prefix] = link


def reference_url(reference: str) -> str | None:
    """The page for `prefix:value`, or None when no app links that kind of reference."""
    prefix, _, value = reference.partition(":")
    link = _links.get(prefix)
    return link(value) if link is not None and value else None
