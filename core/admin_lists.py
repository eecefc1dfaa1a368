"""What keeps the admin's big lists (ledger, jobs, Stripe events, webhooks) flat as tables grow.

Django's changelist counts every matching row on every request and searches with `icontains`
over each search field: both read the whole table. Here the count is PostgreSQL's estimate
for an unfiltered list and a capped count for a filtered one, and search is exact on indexed
columns (a UUID, an email, a key).
"""

from __future__ import annotations

import uuid
from functools import cached_property

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Q, QuerySet

# A filtered list counts at most this many rows (100 pages at the admin's 100 per page).
COUNT_CAP = 10_000


def table_estimate(queryset: QuerySet) -> int | None:
    """PostgreSQL's own row estimate (kept by autovacuum/ANALYZE); None where unknown."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [queryset.model._meta.db_table]
        )
        row = cursor.fetchone()
    return row[0] if row and row[0] >= 0 else None


class EstimatedCountPaginator(Paginator):
    """An estimate for the whole table, an exact count up to COUNT_CAP (then the cap) otherwise."""

    object_list: QuerySet  # the admin's changelists page querysets, never lists

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not queryset.query.where:
            estimate = table_estimate(queryset)
            if estimate is not None and estimate > COUNT_CAP:
                return estimate
        # Bounded: COUNT(*) over a LIMITed subquery reads at most COUNT_CAP + 1 rows.
        return min(queryset.order_by()[: COUNT_CAP + 1].count(), COUNT_CAP)


def exact_search(
    queryset: QuerySet,
    term: str,
    *,
    uuid_fields: tuple[str, ...] = (),
    email_fields: tuple[str, ...] = (),
    text_fields: tuple[str, ...] = (),
) -> QuerySet:
    """Rows where one field equals the whole search term: each comparison uses that field's index.

    The term's shape picks the fields: a UUID is looked up in the UUID fields, an address with
    "@" in the email fields (stored in lower case), anything else in the text fields (keys,
    references, provider ids). Only one kind at a time: an OR of a joined table's column and
    this table's own cannot use either index, and reads the whole table.
    """
    term = term.strip()
    if not term:
        return queryset
    try:
        value: object = uuid.UUID(term)
        names = uuid_fields
    except ValueError:
        value, names = term, ()
    if not names and "@" in term:
        value, names = term.lower(), email_fields
    if not names:
        value, names = term, text_fields
    query = Q()
    for name in names:
        query |= Q(**{name: value})
    return queryset.filter(query) if query else queryset.none()
