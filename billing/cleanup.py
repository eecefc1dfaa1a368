"""What `cleanup` removes of billing's own rows (operations/cleanup.py runs it, core/cleanup.py says how)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from billing.models import StripeEvent
from core.cleanup import Part, rows_part


def _stripe_event_payloads() -> Part:
    # The event row stays (its id is what makes a redelivery a no-op); its payload goes.
    cutoff = timezone.now() - timedelta(days=settings.WEBHOOK_RETENTION_DAYS)

    def rows() -> QuerySet:
        return StripeEvent.objects.filter(received_at__lt=cutoff, status__in=StripeEvent.DONE).exclude(payload={})

    def empty(batch: list) -> None:
        StripeEvent.objects.filter(pk__in=[event.pk for event in batch]).update(payload={})

    return rows_part(
        "stripe_event_payloads",
        f"Payloads of handled Stripe events older than {settings.WEBHOOK_RETENTION_DAYS} days",
        rows,
        "event_id",
        remove=empty,
    )


# Never the ledger: its entries are never deleted.
PARTS: list[Callable[[], Part]] = [_stripe_event_payloads]
