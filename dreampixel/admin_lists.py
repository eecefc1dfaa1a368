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

    A UUID is looked up in the UUID fields, an address with "@" in the email fields (stored in
    lower case), anything else in the text fields (keys, references, provider ids).
    """
    term = term.strip()
    if not term:
        return queryset
    query = Q()
    try:
        value = uuid.UUID(term)
    except ValueError:
        value = None
    if value is not None:
        for name in uuid_fields:
            query |= Q(**{name: value})
    if "@" in term:
        for name in email_fields:
            query |= Q(**{name: term.lower()})
    for name in text_fields:
        query |= Q(**{name: term})
    return queryset.filter(query) if query else queryset.none()
