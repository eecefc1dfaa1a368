"""Ending plans at Stripe: when a person deletes their account, and when one person has two plans.

Network calls only; our copy of each plan is then re-read through `subscription_sync`, so the
result is the same whether the `customer.subscription.deleted` webhook comes first or never.
"""

from __future__ import annotations

import logging

import stripe

from accounts.models import User
from billing.models import StripeCustomer, Subscription
from billing.stripe_client import stripe_client
from billing.stripe_services.common import stripe_dict, stripe_id
from billing.stripe_services.fulfilment import subscription_sync
from billing.stripe_services.reversals import charge_reversals_settle

logger = logging.getLogger("billing.stripe_services")


def subscription_cancel(*, subscription_id: str, comment: str) -> Subscription | None:
    """Cancel one subscription at Stripe now (no further invoices); a canceled one stays canceled."""
    client = stripe_client()
    try:
        client.v1.subscriptions.cancel(
            subscription_id,
            params={"cancellation_details": {"comment": comment}},
            options={"idempotency_key": f"cancel:{subscription_id}"},
        )
    except stripe.InvalidRequestError:
        # Stripe answers "no such subscription" for one that is already canceled: read it to be sure.
        if client.v1.subscriptions.retrieve(subscription_id).status != "canceled":
            raise
    return subscription_sync(subscription_id=subscription_id)


def subscriptions_cancel_for_user(*, user: User, comment: str) -> list[str]:
    """Cancel every plan the user still has at Stripe (listed there, not only our copies); their ids."""
    customer_id = StripeCustomer.objects.filter(user=user).values_list("customer_id", flat=True).first()
    known = set(
        Subscription.objects.filter(user=user, status__in=Subscription.CURRENT).values_list(
            "subscription_id", flat=True
        )
    )
    if customer_id:
        # Stripe lists every status but canceled by default.
        listed = stripe_client().v1.subscriptions.list(params={"customer": customer_id, "limit": 100})
        known |= {subscription.id for subscription in listed.auto_paging_iter()}
    for subscription_id in sorted(known):
        subscription_cancel(subscription_id=subscription_id, comment=comment)
    return sorted(known)


def invoice_payment_refund(*, invoice_id: str, reason: str) -> str | None:
    """Refund what was paid for an invoice (once: the key is the invoice's); the refund's id.

    None when nothing was paid or it was already refunded in full.
    """
    client = stripe_client()
    refunded = None
    for payment_intent in _unrefunded_payments(client, invoice_id):
        refund = client.v1.refunds.create(
            params={"payment_intent": payment_intent, "metadata": {"reason": reason[:500], "invoice": invoice_id}},
            options={"idempotency_key": f"refund:{invoice_id}:{payment_intent}"},
        )
        refunded = refund.id
    return refunded


def invoice_refunded(*, invoice_id: str) -> bool:
    """Whether everything paid for the invoice was given back."""
    return not _unrefunded_payments(stripe_client(), invoice_id)


def _unrefunded_payments(client, invoice_id: str) -> list[str]:
    # The payment intents that paid the invoice and still hold money.
    found = []
    payments = client.v1.invoice_payments.list(params={"invoice": invoice_id, "status": "paid", "limit": 10})
    for payment in payments.auto_paging_iter():
        payment_intent = stripe_id((stripe_dict(payment).get("payment") or {}).get("payment_intent"))
        if not payment_intent:
            continue
        intent = stripe_dict(client.v1.payment_intents.retrieve(payment_intent, params={"expand": ["latest_charge"]}))
        charge = intent.get("latest_charge") or {}
        if isinstance(charge, dict) and charge.get("amount_refunded", 0) >= charge.get("amount", 0) > 0:
            continue
        found.append(payment_intent)
    return found


# Plans that bill: a second one of these is a duplicate. (An incomplete one has not been paid yet.)


def plan_duplicates_find(*, customer_id: str) -> list[dict]:
    """The customer's billing plans at Stripe after the first one (oldest first): the duplicates."""
    listed = stripe_client().v1.subscriptions.list(params={"customer": customer_id, "limit": 100})
    billing = [stripe_dict(s) for s in listed.auto_paging_iter() if s.status in Subscription.BILLING]
    # Stripe lists newest first; within one second its order is the only tie-break there is.
    billing = sorted(reversed(billing), key=lambda s: int(s.get("created") or 0))
    return billing[1:]


def plan_duplicates_settle(*, user: User) -> list[str]:
    """One plan per person: if two (or more) bill, the later ones are canceled at once and every
    invoice they were paid is refunded (its credits are then clawed back, once). Ids canceled."""
    customer_id = StripeCustomer.objects.filter(user=user).values_list("customer_id", flat=True).first()
    if not customer_id:
        return []
    client = stripe_client()
    canceled = []
    for duplicate in plan_duplicates_find(customer_id=customer_id):
        logger.warning("User %s has a second plan %s; canceling and refunding it", user.pk, duplicate["id"])
        subscription_cancel(subscription_id=duplicate["id"], comment="A second plan: one plan per person")
        invoices = client.v1.invoices.list(params={"subscription": duplicate["id"], "status": "paid", "limit": 100})
        for invoice in invoices.auto_paging_iter():
            refund_id = invoice_payment_refund(invoice_id=invoice.id, reason="A second plan: one plan per person")
            if refund_id:
                # Claw the credits back now rather than wait for the refund's webhook (same keys).
                charge_reversals_settle(charge_id=stripe_id(client.v1.refunds.retrieve(refund_id).charge))
        canceled.append(duplicate["id"])
    return canceled
