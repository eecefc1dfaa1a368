"""Billing's part of the staff alerts (generation/alerts.py asks it)."""

from __future__ import annotations

from billing.models import StripeEvent


def failing_webhooks(*, since) -> int:
    return StripeEvent.objects.filter(status=StripeEvent.Status.FAILED, received_at__gte=since).count()
