"""Webhook events: recorded under their id before acting, then handed to the handler for their type."""

from __future__ import annotations

from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from billing.models import StripeEvent, Subscription
from billing.stripe_services.common import stripe_id
from billing.stripe_services.fulfilment import checkout_fulfill, invoice_fulfill, subscription_sync
from billing.stripe_services.plans import plan_duplicates_settle
from billing.stripe_services.reversals import charge_reversals_settle
from core.skips import item_skipped


def _on_checkout(obj: dict) -> object:
    return checkout_fulfill(session_id=obj["id"])


def _on_invoice(obj: dict) -> object:
    entry = invoice_fulfill(invoice_id=obj["id"])
    if entry is not None:
        _one_plan_each(entry.account.user)
    return entry


def _on_subscription(obj: dict) -> object:
    row = subscription_sync(subscription_id=obj["id"])
    if row is not None and row.status in Subscription.BILLING:
        _one_plan_each(row.user)
    return row


def _one_plan_each(user) -> None:
    # Two plan checkouts paid at once (the buy page refuses a second, but two tabs can race):
    # only when our copies show two plans billing is Stripe asked (reconcile covers the rest).
    if Subscription.objects.filter(user=user, status__in=Subscription.BILLING).count() > 1:
        plan_duplicates_settle(user=user)


def _on_charge(obj: dict) -> object:
    return charge_reversals_settle(charge_id=obj["id"])


def _on_charge_child(obj: dict) -> object:
    # A refund or a dispute: settle its charge as a whole.
    charge_id = stripe_id(obj.get("charge"))
    return charge_reversals_settle(charge_id=charge_id) if charge_id else None


EVENT_HANDLERS: dict[str, Callable[[dict], object]] = {
    "checkout.session.completed": _on_checkout,
    "checkout.session.async_payment_succeeded": _on_checkout,
    # Re-read, it is still unpaid: nothing is granted and the success page learns it failed.
    "checkout.session.async_payment_failed": _on_checkout,
    "invoice.paid": _on_invoice,
    "customer.subscription.created": _on_subscription,
    "customer.subscription.updated": _on_subscription,
    "customer.subscription.deleted": _on_subscription,
    "charge.refunded": _on_charge,
    "refund.created": _on_charge_child,
    "refund.updated": _on_charge_child,
    "charge.refund.updated": _on_charge_child,
    "charge.dispute.created": _on_charge_child,
    "charge.dispute.updated": _on_charge_child,
    "charge.dispute.closed": _on_charge_child,
    "charge.dispute.funds_withdrawn": _on_charge_child,
    "charge.dispute.funds_reinstated": _on_charge_child,
}


def stripe_event_record(*, payload: dict) -> tuple[StripeEvent, bool]:
    """Record a verified event under its id before acting on it; returns (row, whether to process it).

    A duplicate of a processed or ignored event is acknowledged and does nothing. A duplicate of
    a failed one is Stripe retrying: process it again. A duplicate arriving while the first is
    still running is processed too; every handler is idempotent, so it only repeats the reads.
    """
    event_type = str(payload["type"])
    handled = event_type in EVENT_HANDLERS
    obj = (payload.get("data") or {}).get("object") or {}
    try:
        with transaction.atomic():
            event = StripeEvent.objects.create(
                event_id=str(payload["id"]),
                type=event_type,
                object_id=str(obj.get("id") or "")[:255],
                livemode=bool(payload.get("livemode")),
                payload=payload,
                status=StripeEvent.Status.RECEIVED if handled else StripeEvent.Status.IGNORED,
            )
        return event, handled
    except IntegrityError:
        event = StripeEvent.objects.get(event_id=str(payload["id"]))
        return event, event.status not in StripeEvent.DONE


def stripe_event_process(*, event: StripeEvent) -> None:
    """Run the event's handler. On failure the event is marked failed with the error, and the error
    is raised again (the webhook answers 5xx so Stripe retries)."""
    handler = EVENT_HANDLERS.get(event.type)
    now = timezone.now()
    StripeEvent.objects.filter(pk=event.pk).update(attempts=F("attempts") + 1, last_attempt_at=now)
    if handler is None:
        StripeEvent.objects.filter(pk=event.pk).update(status=StripeEvent.Status.IGNORED, error="")
        return
    try:
        handler(event.payload["data"]["object"])
    except Exception as error:
        # Logged with its traceback once (a day) per event, however often it is retried; kept
        # for the admin home with the other items the scheduled work went past.
        item_skipped(loop="stripe_events", item=f"{event.event_id} ({event.type})", error=error)
        # A concurrent delivery may have finished the same work meanwhile: processed stays processed.
        StripeEvent.objects.filter(pk=event.pk).exclude(status=StripeEvent.Status.PROCESSED).update(
            status=StripeEvent.Status.FAILED, error=f"{type(error).__name__}: {error}"
        )
        raise
    StripeEvent.objects.filter(pk=event.pk).update(
        status=StripeEvent.Status.PROCESSED, error="", processed_at=timezone.now()
    )
