"""Helpers for the Stripe tests: start a checkout, deliver signed webhooks, compare ledgers, run threads."""

from __future__ import annotations

import uuid

from django.test import Client

from billing.models import LedgerEntry
from billing.stripe_services import checkout_start
from fakes.stripe import signed_event
from tests.concurrency import run_at_once  # noqa: F401  (used by the Stripe tests)

WEBHOOK_SECRET = "whsec_test_dreampixel_webhooks"
WEBHOOK_URL = "/webhooks/stripe/"


def start_checkout(user, product) -> str:
    """Start a Checkout session as the buy button does; returns its id."""
    url = checkout_start(
        user=user,
        product=product,
        success_url="http://testserver/billing/checkout/success/?session_id={CHECKOUT_SESSION_ID}",
        cancel_url="http://testserver/billing/checkout/cancel/",
        attempt=uuid.uuid4().hex,
    )
    return url.rsplit("/", 1)[-1]


def deliver(client: Client, event: dict, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None):
    """POST an event to the webhook the way Stripe does: pretty JSON, a real Stripe-Signature header."""
    body, header = signed_event(event, secret, timestamp)
    return client.post(WEBHOOK_URL, body, content_type="application/json", headers={"stripe-signature": header})


def relabel(event: dict, event_type: str) -> dict:
    """The same object under another event type and a new id (e.g. a late async_payment_succeeded)."""
    return {**event, "id": f"evt_{uuid.uuid4().hex[:24]}", "type": event_type}


def ledger(user) -> list[tuple[str, str, int]]:
    """(key, kind, amount) of the user's entries, sorted by key: order-independent."""
    return sorted(LedgerEntry.objects.filter(account__user=user).values_list("idempotency_key", "kind", "amount"))


def queued_stripe_events() -> list[int]:
    """The event ids the webhook queued for a worker (ORM broker), oldest first; taken off the queue."""
    from django_q.models import OrmQ

    ids = []
    for queued in OrmQ.objects.order_by("id"):
        task = queued.task
        assert task["func"] == "billing.tasks.stripe_event_run", task
        ids.append(task["args"][0])
        queued.delete()
    return ids
