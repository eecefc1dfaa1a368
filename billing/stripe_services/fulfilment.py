"""Credits for what was paid: Checkout sessions (packs, a plan's first invoice), invoices and plan state."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from billing.models import CheckoutSession, CreditPack, LedgerEntry, Plan, Subscription
from billing.services import credits_grant
from billing.stripe_client import stripe_client
from billing.stripe_services.common import (
    GRANTING_BILLING_REASONS,
    PAID_SESSION,
    Kind,
    StripeDataError,
    stripe_datetime,
    stripe_dict,
    stripe_id,
    stripe_user_for,
)

logger = logging.getLogger("billing.stripe_services")


@dataclass
class InvoiceFacts:
    invoice: dict
    user: User | None = None
    credits: int = 0
    memo: str = ""


def invoice_read(client, invoice_id: str) -> InvoiceFacts:
    invoice = stripe_dict(client.v1.invoices.retrieve(invoice_id))
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    facts = InvoiceFacts(invoice=invoice)
    if not details.get("subscription") or invoice.get("status") != "paid":
        return facts
    if invoice.get("billing_reason") not in GRANTING_BILLING_REASONS:
        return facts
    facts.user = stripe_user_for(customer_id=stripe_id(invoice.get("customer")), metadata=details.get("metadata") or {})
    if facts.user is None:
        return facts
    lines = invoice.get("lines") or {}
    if lines.get("has_more"):
        raise StripeDataError(f"Invoice {invoice_id} has more lines than one page: a plan invoice has one.")
    names = []
    for line in lines.get("data") or []:
        if ((line.get("parent") or {}).get("subscription_item_details") or {}).get("proration"):
            continue
        price_id = ((line.get("pricing") or {}).get("price_details") or {}).get("price")
        if not price_id:
            continue
        plan = Plan.objects.filter(stripe_price_id=price_id).first()
        if plan is None:
            raise StripeDataError(
                f"Invoice {invoice_id} is for the Stripe price {price_id}, which no plan has. Set it on a plan "
                "in the admin, then process the event again."
            )
        facts.credits += plan.credits * int(line.get("quantity") or 1)
        names.append(plan.name)
    facts.memo = f"{' + '.join(names)} plan: monthly credits"
    return facts


def invoice_apply(facts: InvoiceFacts) -> LedgerEntry | None:
    if not facts.credits or facts.user is None:
        return None
    if facts.user.deleted_at is not None:
        # A renewal after the account was deleted (its plan should have been canceled then):
        # nobody can use the credits. `reconcile` lists it (stripe_deleted_account_billed).
        logger.warning("Invoice %s is for deleted user %s; nothing granted", facts.invoice["id"], facts.user.pk)
        return None
    invoice_id = facts.invoice["id"]
    return credits_grant(
        user=facts.user,
        amount=facts.credits,
        key=f"invoice:{invoice_id}",
        kind=Kind.SUBSCRIPTION_GRANT,
        reference=f"invoice:{invoice_id}",
        memo=facts.memo,
    )


def invoice_fulfill(*, invoice_id: str) -> LedgerEntry | None:
    """Grant a plan's monthly credits for a paid subscription invoice, once per invoice."""
    facts = invoice_read(stripe_client(), invoice_id)
    with transaction.atomic():
        return invoice_apply(facts)


@dataclass
class SubscriptionFacts:
    subscription: dict
    user: User | None


def _subscription_read(client, subscription_id: str) -> SubscriptionFacts:
    subscription = stripe_dict(client.v1.subscriptions.retrieve(subscription_id))
    user = stripe_user_for(
        customer_id=stripe_id(subscription.get("customer")), metadata=subscription.get("metadata") or {}
    )
    return SubscriptionFacts(subscription=subscription, user=user)


def _subscription_apply(facts: SubscriptionFacts) -> Subscription | None:
    if facts.user is None:
        return None
    sub = facts.subscription
    items = (sub.get("items") or {}).get("data") or []
    first = items[0] if items else {}
    price_id = (first.get("price") or {}).get("id")
    status = sub["status"]
    with transaction.atomic():
        current = (
            Subscription.objects.select_for_update()
            .filter(subscription_id=sub["id"])
            .values_list("status", flat=True)
            .first()
        )
        if current == Subscription.Status.CANCELED:
            # Stripe never reopens a canceled subscription: a read older than the cancel must not undo it.
            status = Subscription.Status.CANCELED
        row, _ = Subscription.objects.update_or_create(
            subscription_id=sub["id"],
            defaults={
                "user": facts.user,
                "plan": Plan.objects.filter(stripe_price_id=price_id).first() if price_id else None,
                "status": status,
                # Current API versions keep the period on the items, not the subscription.
                "current_period_end": stripe_datetime(first.get("current_period_end")),
                "cancel_at_period_end": bool(sub.get("cancel_at_period_end")),
                "cancel_at": stripe_datetime(sub.get("cancel_at")),
                "updated_at": timezone.now(),
            },
        )
    return row


def subscription_sync(*, subscription_id: str) -> Subscription | None:
    """Keep our copy of a plan (status, period end, cancellation) as Stripe has it now."""
    return _subscription_apply(_subscription_read(stripe_client(), subscription_id))


@dataclass
class CheckoutFacts:
    session: dict
    user: User | None
    invoice: InvoiceFacts | None = None
    subscription: SubscriptionFacts | None = None


def checkout_read(client, session_id: str) -> CheckoutFacts:
    session = stripe_dict(client.v1.checkout.sessions.retrieve(session_id, params={"expand": ["payment_intent"]}))
    user = stripe_user_for(customer_id=stripe_id(session.get("customer")), metadata=session.get("metadata") or {})
    facts = CheckoutFacts(session=session, user=user)
    if user is not None and session.get("mode") == "subscription":
        if session.get("invoice"):
            facts.invoice = invoice_read(client, stripe_id(session["invoice"]))
        if session.get("subscription"):
            facts.subscription = _subscription_read(client, stripe_id(session["subscription"]))
    return facts


def _payment_state(session: dict) -> str:
    State = CheckoutSession.PaymentState
    if session.get("payment_status") in PAID_SESSION:
        return State.PAID
    if session.get("status") == "expired":
        return State.EXPIRED
    if session.get("status") != "complete":
        return State.OPEN
    # Complete but unpaid: a delayed method (a bank debit) is clearing, or it bounced.
    payment_intent = session.get("payment_intent")
    if isinstance(payment_intent, dict) and payment_intent.get("status") in ("requires_payment_method", "canceled"):
        return State.FAILED
    return State.PROCESSING


def _metadata_int(metadata: dict, name: str) -> int | None:
    raw = str(metadata.get(name) or "")
    return int(raw) if raw.isdigit() else None


def _checkout_record(facts: CheckoutFacts, user: User) -> CheckoutSession:
    session, metadata = facts.session, facts.session.get("metadata") or {}
    record = CheckoutSession.objects.select_for_update().filter(session_id=session["id"]).first()
    if record is None:
        # The session was created but our copy was never saved (a crash in between): rebuild it.
        pack = CreditPack.objects.filter(pk=_metadata_int(metadata, "pack_id") or 0).first()
        plan = Plan.objects.filter(pk=_metadata_int(metadata, "plan_id") or 0).first()
        record = CheckoutSession(
            session_id=session["id"],
            user=user,
            mode=session["mode"],
            pack=pack,
            plan=plan,
            credits=_metadata_int(metadata, "credits") or (plan.credits if plan else 0),
            amount_cents=session.get("amount_total") or 0,
            currency=session.get("currency") or "",
        )
    elif record.user_id != user.pk:
        raise StripeDataError(f"Checkout session {session['id']} was started by user {record.user_id}.")
    record.payment_state = _payment_state(session)
    if facts.invoice is not None:
        record.invoice_id = facts.invoice.invoice["id"]
    record.updated_at = timezone.now()
    record.save()
    return record


def checkout_apply(facts: CheckoutFacts) -> LedgerEntry | None:
    session = facts.session
    if facts.user is None:
        logger.info("Checkout session %s is not one of ours; left alone", session["id"])
        return None
    with transaction.atomic():
        record = _checkout_record(facts, facts.user)
        if facts.subscription is not None:
            _subscription_apply(facts.subscription)
        if session["mode"] == "subscription":
            return invoice_apply(facts.invoice) if facts.invoice is not None else None
        if session.get("payment_status") not in PAID_SESSION:
            return None
        credits = _metadata_int(session.get("metadata") or {}, "credits")
        if not credits:
            raise StripeDataError(f"Checkout session {session['id']} does not say how many credits it sold.")
        name = record.pack.name if record.pack else "Credit"
        return credits_grant(
            user=facts.user,
            amount=credits,
            key=f"purchase:{session['id']}",
            kind=Kind.PURCHASE,
            reference=f"checkout:{session['id']}",
            memo=f"{name} pack",
        )


def checkout_fulfill(*, session_id: str) -> LedgerEntry | None:
    """Grant what a Checkout session sold once it is paid: a pack's credits (`purchase:<session>`) or a
    plan's first month (`invoice:<invoice>`). Unpaid (a bank debit still clearing): nothing yet."""
    return checkout_apply(checkout_read(stripe_client(), session_id))
