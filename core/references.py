"""What a reference such as `job:<uuid>` points at, told by the app that owns that kind.

The ledger and the staff trail know nothing of jobs or any other app's objects: an entry or
an action carries a reference (`job:<uuid>`, `user:<id>`, `checkout:<id>`). Each app registers
its own kinds in REFERENCE_KINDS from its AppConfig.ready (the URL names of the person's page
and of the admin page, each taking the value as its one argument), and pages ask here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse

from core.registry import Registry


@dataclass(frozen=True)
class ReferencePages:
    page: str | None = None  # the person's own page
    admin: str | None = None
    label: str = "View"  # the person's page's link text ("View job")
    # Which of these values no longer have a page (a deleted job), asked once per page of
    # references; and what to say instead of a link.
    gone: Callable[[list[str]], set[str]] | None = None
    gone_label: str = ""


REFERENCE_KINDS: Registry[ReferencePages] = Registry("reference kinds")


def _url(reference: str, which: str) -> str | None:
    prefix, _, value = reference.partition(":")
    pages = REFERENCE_KINDS.get(prefix)
    name = getattr(pages, which) if pages is not None else None
    if name is None or not value:
        return None
    try:
        return reverse(name, args=[value])
    except NoReverseMatch:  # not an id of that kind after all
        return None


def reference_url(reference: str) -> str | None:
    """The person's page for `prefix:value`, or None when no app links that kind of reference."""
    return _url(reference, "page")


def reference_label(reference: str) -> str:
    pages = REFERENCE_KINDS.get(reference.partition(":")[0])
    return pages.label if pages is not None else "View"


def reference_admin_url(reference: str) -> str | None:
    """The admin page for `prefix:value`, or None when no app registered one."""
    return _url(reference, "admin")


def references_gone(references: Iterable[str]) -> dict[str, str]:
    """Of these references, those whose page is gone, with what to say instead of a link: one
    question per kind, however many references a page lists."""
    values_by_kind: dict[str, list[str]] = defaultdict(list)
    for reference in references:
        prefix, _, value = reference.partition(":")
        if value:
            values_by_kind[prefix].append(value)
    gone: dict[str, str] = {}
    for prefix, values in values_by_kind.items():
        pages = REFERENCE_KINDS.get(prefix)
        if pages is None or pages.gone is None:
            continue
        for value in pages.gone(values):
            gone[f"{prefix}:{value}"] = pages.gone_label
    return gone
