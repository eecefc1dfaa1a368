"""Billing's alert for staff (operations/alerts.py runs it with the others)."""

from __future__ import annotations

from datetime import datetime, timedelta

from billing.models import StripeEvent
from core.alerts import Alert


def failing_webhooks(*, since: datetime) -> int:
    return StripeEvent.objects.filter(status=StripeEvent.Status.FAILED, received_at__gte=since).count()


def stripe_webhooks_alert(now: datetime) -> Alert | None:
    count = failing_webhooks(since=now - timedelta(hours=1))
    if count:
        return Alert(
            "stripe_webhooks", f"{count} Stripe webhook event(s) failed in the last hour; Stripe will retry them."
        )
    return None


CHECKS = [stripe_webhooks_alert]
