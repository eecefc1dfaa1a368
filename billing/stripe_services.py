"""Stripe: customers, Checkout, the portal, and fulfilment from webhooks (and `reconcile --fix`).

Each fulfilment service reads from Stripe first (network, outside any transaction), then
applies what it read in one DB transaction through the idempotent ledger services, so a
failure anywhere leaves nothing half done. Credits move under keys named for the Stripe
object, never the event: `purchase:<checkout session>`, `invoice:<invoice>`,
`clawback:<refund or dispute>`, `restore:<dispute>`. Any order and any number of deliveries
therefore end in the same ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from billing.models import (
    CheckoutSession,
    CreditAccount,
    CreditPack,
    LedgerEntry,
    Plan,
    StripeCustomer,
    StripeEvent,
    Subscription,
)
from billing.services import credits_adjust, credits_clawback, credits_grant
from billing.stripe_client import stripe_client
from billing.templatetags.money import format_money

logger = logging.getLogger(__name__)
Kind = LedgerEntry.Kind

# Checkout's payment_status values that mean the buyer owes nothing more.
PAID_SESSION = ("paid", "no_payment_required")
# Invoices that pay for a month of a plan. Proration invoices (a mid-cycle plan change) grant
# nothing: the new plan's credits come with the next monthly invoice.
GRANTING_BILLING_REASONS = ("subscription_create", "subscription_cycle")
# Only a refund whose money went back is clawed back; a pending one is, once it succeeds
# (charge.refund.updated). A chargeback takes the money at once, so it claws back while open;
# "won" keeps that clawback and adds a restore, so the ledger is the same whatever the order.
REFUND_CLAWBACK_STATUSES = ("succeeded",)
DISPUTE_CLAWBACK_STATUSES = ("needs_response", "under_review", "lost", "won")
DISPUTE_RESTORE_STATUSES = ("won",)


class StripeDataError(Exception):
    """What Stripe says does not fit what we sold (an unknown price, someone else's customer).

    The event fails and stays visible in the admin until a person fixes the cause.
    """


class CheckoutRefused(Exception):
    """A purchase this user may not start; the message says why."""


def _plain(obj: Any) -> dict:
    # StripeObject is not a dict in stripe 16; plain dicts let us .get() fields that newer API
    # versions dropped instead of raising on them.
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _id(value: Any) -> str:
    # An id, or an expanded object in its place.
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _datetime(timestamp: int | None) -> datetime | None:
    return datetime.fromtimestamp(int(timestamp), tz=UTC) if timestamp else None


def _user_for(*, customer_id: str, metadata: dict) -> User | None:
    """Whose payment this is: our customer record, cross-checked with the user id we set in metadata.

    None when it is not ours at all (another product on the same Stripe account): left alone.
    """
    named = str(metadata.get("user_id") or "")
    known = (
        StripeCustomer.objects.select_related("user").filter(customer_id=customer_id).first() if customer_id else None
    )
    if known is not None:
        if named and named != str(known.user_id):
            raise StripeDataError(
                f"Customer {customer_id} belongs to user {known.user_id}, but the metadata names user {named}."
            )
        return known.user
    if not named:
        return None
    user = User.objects.filter(pk=int(named)).first() if named.isdigit() else None
    if user is None:
        raise StripeDataError(f"The metadata names user {named!r}, who does not exist.")
    other = StripeCustomer.objects.filter(user=user).values_list("customer_id", flat=True).first()
    if customer_id and other and other != customer_id:
        raise StripeDataError(f"User {user.pk} is Stripe customer {other}, not {customer_id}.")
    return user


# --- Customers, Checkout and the portal (called from views, never inside a transaction) -------


def stripe_customer_ensure(*, user: User) -> str:
    """The user's Stripe customer id, created on first use: one customer per user."""
    existing = StripeCustomer.objects.filter(user=user).values_list("customer_id", flat=True).first()
    if existing:
        return existing
    customer = stripe_client().v1.customers.create(
        params={"email": user.email, "metadata": {"user_id": str(user.pk)}},
        # Two first purchases at once (or a retry after a crash) get the same customer back.
        options={"idempotency_key": f"customer:{user.pk}"},
    )
    try:
        with transaction.atomic():
            StripeCustomer.objects.create(user=user, customer_id=customer.id)
    except IntegrityError:
        pass  # another request saved it first; the row below is the one that counts
    return StripeCustomer.objects.get(user=user).customer_id


def checkout_start(
    *,
    user: User,
    product: CreditPack | Plan,
    success_url: str,
    cancel_url: str,
    attempt: str,
) -> str:
    """Create a Checkout session for a pack (mode payment) or a plan (mode subscription); returns its URL.

    `attempt` comes from the buy form, so a double-click reuses Stripe's session instead of making two.
    """
    is_plan = isinstance(product, Plan)
    if is_plan and Subscription.objects.filter(user=user, status__in=Subscription.CURRENT).exists():
        raise CheckoutRefused("You already have a monthly plan. Change or cancel it from “Manage plan and invoices”.")
    customer_id = stripe_customer_ensure(user=user)
    # Fulfilment reads what to grant back from these, on the object Stripe holds.
    metadata = {"user_id": str(user.pk), "credits": str(product.credits)}
    metadata["plan_id" if is_plan else "pack_id"] = str(product.pk)
    params: dict[str, Any] = {
        "mode": "subscription" if is_plan else "payment",
        "customer": customer_id,
        "client_reference_id": str(user.pk),
        "line_items": [{"price": product.stripe_price_id, "quantity": 1}],
        "success_url": success_url,
        "cancel_url": cancel_url,
        "metadata": metadata,
    }
    if is_plan:
        params["subscription_data"] = {"metadata": {"user_id": str(user.pk), "plan_id": str(product.pk)}}
    else:
        params["payment_intent_data"] = {"metadata": metadata}
    session = stripe_client().v1.checkout.sessions.create(
        params=params, options={"idempotency_key": f"checkout:{user.pk}:{attempt}"}
    )
    CheckoutSession.objects.get_or_create(
        session_id=session.id,
        defaults={
            "user": user,
            "mode": params["mode"],
            "pack": None if is_plan else product,
            "plan": product if is_plan else None,
            "credits": product.credits,
            "amount_cents": product.price_cents,
            "currency": product.currency,
        },
    )
    return session.url


def portal_session_create(*, user: User, return_url: str) -> str | None:
    """A Stripe customer-portal link (plan, payment method, invoices); None if the user never bought."""
    customer_id = StripeCustomer.objects.filter(user=user).values_list("customer_id", flat=True).first()
    if not customer_id:
        return None
    portal = stripe_client().v1.billing_portal.sessions.create(
        params={"customer": customer_id, "return_url": return_url}
    )
    return portal.url


# --- Invoices (monthly plans) -----------------------------------------------------------------


@dataclass
class _InvoiceFacts:
    invoice: dict
    user: User | None = None
    credits: int = 0
    memo: str = ""


def _invoice_read(client, invoice_id: str) -> _InvoiceFacts:
    invoice = _plain(client.v1.invoices.retrieve(invoice_id))
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    facts = _InvoiceFacts(invoice=invoice)
    if not details.get("subscription") or invoice.get("status") != "paid":
        return facts
    if invoice.get("billing_reason") not in GRANTING_BILLING_REASONS:
        return facts
    facts.user = _user_for(customer_id=_id(invoice.get("customer")), metadata=details.get("metadata") or {})
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


def _invoice_apply(facts: _InvoiceFacts) -> LedgerEntry | None:
    if not facts.credits or facts.user is None:
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
    facts = _invoice_read(stripe_client(), invoice_id)
    with transaction.atomic():
        return _invoice_apply(facts)


# --- Subscriptions (plan state) ---------------------------------------------------------------


@dataclass
class _SubscriptionFacts:
    subscription: dict
    user: User | None


def _subscription_read(client, subscription_id: str) -> _SubscriptionFacts:
    subscription = _plain(client.v1.subscriptions.retrieve(subscription_id))
    user = _user_for(customer_id=_id(subscription.get("customer")), metadata=subscription.get("metadata") or {})
    return _SubscriptionFacts(subscription=subscription, user=user)


def _subscription_apply(facts: _SubscriptionFacts) -> Subscription | None:
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
                "current_period_end": _datetime(first.get("current_period_end")),
                "cancel_at_period_end": bool(sub.get("cancel_at_period_end")),
                "cancel_at": _datetime(sub.get("cancel_at")),
                "updated_at": timezone.now(),
            },
        )
    return row


def subscription_sync(*, subscription_id: str) -> Subscription | None:
    """Keep our copy of a plan (status, period end, cancellation) as Stripe has it now."""
    return _subscription_apply(_subscription_read(stripe_client(), subscription_id))


# --- Checkout sessions (credit packs; a plan's first invoice) ---------------------------------


@dataclass
class _CheckoutFacts:
    session: dict
    user: User | None
    invoice: _InvoiceFacts | None = None
    subscription: _SubscriptionFacts | None = None


def _checkout_read(client, session_id: str) -> _CheckoutFacts:
    session = _plain(client.v1.checkout.sessions.retrieve(session_id, params={"expand": ["payment_intent"]}))
    user = _user_for(customer_id=_id(session.get("customer")), metadata=session.get("metadata") or {})
    facts = _CheckoutFacts(session=session, user=user)
    if user is not None and session.get("mode") == "subscription":
        if session.get("invoice"):
            facts.invoice = _invoice_read(client, _id(session["invoice"]))
        if session.get("subscription"):
            facts.subscription = _subscription_read(client, _id(session["subscription"]))
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


def _checkout_record(facts: _CheckoutFacts) -> CheckoutSession:
    session, metadata = facts.session, facts.session.get("metadata") or {}
    record = CheckoutSession.objects.select_for_update().filter(session_id=session["id"]).first()
    if record is None:
        # The session was created but our copy was never saved (a crash in between): rebuild it.
        pack = CreditPack.objects.filter(pk=_metadata_int(metadata, "pack_id") or 0).first()
        plan = Plan.objects.filter(pk=_metadata_int(metadata, "plan_id") or 0).first()
        record = CheckoutSession(
            session_id=session["id"],
            user=facts.user,
            mode=session["mode"],
            pack=pack,
            plan=plan,
            credits=_metadata_int(metadata, "credits") or (plan.credits if plan else 0),
            amount_cents=session.get("amount_total") or 0,
            currency=session.get("currency") or "",
        )
    elif record.user_id != facts.user.pk:
        raise StripeDataError(f"Checkout session {session['id']} was started by user {record.user_id}.")
    record.payment_state = _payment_state(session)
    if facts.invoice is not None:
        record.invoice_id = facts.invoice.invoice["id"]
    record.updated_at = timezone.now()
    record.save()
    return record


def _checkout_apply(facts: _CheckoutFacts) -> LedgerEntry | None:
    session = facts.session
    if facts.user is None:
        logger.info("Checkout session %s is not one of ours; left alone", session["id"])
        return None
    with transaction.atomic():
        record = _checkout_record(facts)
        if facts.subscription is not None:
            _subscription_apply(facts.subscription)
        if session["mode"] == "subscription":
            return _invoice_apply(facts.invoice) if facts.invoice is not None else None
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
    return _checkout_apply(_checkout_read(stripe_client(), session_id))


# --- Refunds and disputes ---------------------------------------------------------------------


@dataclass
class _Reversal:
    kind: str  # "refund" or "dispute"
    id: str
    cents: int
    created: int
    restore: bool = False


def _purchase_read(client, payment_intent_id: str) -> Callable[[], LedgerEntry | None] | None:
    """What a payment bought, read from Stripe; returns the (idempotent) apply step of its fulfilment.

    A refund or dispute can arrive before the purchase's own event: fulfilling first makes the
    ledger the same as in order (grant, then clawback).
    """
    sessions = client.v1.checkout.sessions.list(params={"payment_intent": payment_intent_id, "limit": 1})
    if sessions.data:
        checkout = _checkout_read(client, sessions.data[0].id)
        return lambda: _checkout_apply(checkout)
    payments = client.v1.invoice_payments.list(
        params={"payment": {"type": "payment_intent", "payment_intent": payment_intent_id}, "limit": 1}
    )
    if payments.data:
        invoice = _invoice_read(client, _id(_plain(payments.data[0]).get("invoice")))
        return lambda: _invoice_apply(invoice)
    return None


def _reversals_read(client, charge_id: str) -> list[_Reversal]:
    reversals = []
    for refund in client.v1.refunds.list(params={"charge": charge_id, "limit": 100}).auto_paging_iter():
        if refund.status in REFUND_CLAWBACK_STATUSES:
            reversals.append(_Reversal("refund", refund.id, refund.amount, refund.created))
    for dispute in client.v1.disputes.list(params={"charge": charge_id, "limit": 100}).auto_paging_iter():
        if dispute.status in DISPUTE_CLAWBACK_STATUSES:
            restore = dispute.status in DISPUTE_RESTORE_STATUSES
            reversals.append(_Reversal("dispute", dispute.id, dispute.amount, dispute.created, restore))
    return reversals


def credits_share(*, credits: int, part_cents: int, whole_cents: int) -> int:
    """The credits `part_cents` of a `whole_cents` payment bought, rounded half up to a whole credit."""
    if whole_cents <= 0:
        return 0
    return (2 * credits * part_cents + whole_cents) // (2 * whole_cents)


def _reversals_apply(grant: LedgerEntry, charge: dict, reversals: list[_Reversal]) -> list[LedgerEntry]:
    user = grant.account.user
    # Serialize settlements for this account: what is owed is computed from what was clawed back.
    CreditAccount.objects.select_for_update().filter(pk=grant.account_id).first()
    currency, paid = charge.get("currency") or "", int(charge.get("amount") or 0)
    entries: list[LedgerEntry] = []
    # Cumulative: each reversal claws back the share of everything reversed so far minus what
    # was already clawed back. Two half refunds take exactly all the credits, never one too
    # many or too few from rounding each half on its own. The order (created, id) is Stripe's
    # and fixed, so a replay computes the same amount for the same key.
    reversed_cents = clawed = 0
    for reversal in sorted(reversals, key=lambda r: (r.created, r.id)):
        reversed_cents += reversal.cents
        key = f"clawback:{reversal.id}"
        clawback = LedgerEntry.objects.filter(idempotency_key=key).first()
        if clawback is None:
            due = credits_share(credits=grant.amount, part_cents=reversed_cents, whole_cents=paid) - clawed
            if due > 0:
                what = format_money(reversal.cents, currency)
                memo = (
                    f"Payment refunded ({what} of {format_money(paid, currency)})"
                    if reversal.kind == "refund"
                    else f"Payment disputed with the bank ({what})"
                )
                clawback = credits_clawback(
                    user=user, amount=due, key=key, reference=f"{reversal.kind}:{reversal.id}", memo=memo
                )
                entries.append(clawback)
        if clawback is not None:
            clawed += -clawback.amount
            if reversal.restore:
                # An adjustment, not a purchase: nothing new was sold, and revenue reports and
                # reconcile's "grant without a paid Stripe object" must not count it as a sale.
                entries.append(
                    credits_adjust(
                        user=user,
                        amount=-clawback.amount,
                        memo="Dispute closed in your favour: credits given back",
                        key=f"restore:{reversal.id}",
                        reference=f"dispute:{reversal.id}",
                    )
                )
    return entries


def charge_reversals_settle(*, charge_id: str) -> list[LedgerEntry]:
    """Claw back what a charge's refunds (full or partial) and chargebacks took back, once each
    (`clawback:<refund or dispute>`), and give it back after a won dispute (`restore:<dispute>`).

    Only a clawback may take a balance below zero; new jobs are then refused until a top-up.
    """
    client = stripe_client()
    charge = _plain(client.v1.charges.retrieve(charge_id))
    payment_intent_id = _id(charge.get("payment_intent"))
    fulfil = _purchase_read(client, payment_intent_id) if payment_intent_id else None
    if fulfil is None:
        return []  # not a payment for credits
    reversals = _reversals_read(client, charge_id)
    with transaction.atomic():
        grant = fulfil()
        if grant is None:
            return []
        return _reversals_apply(grant, charge, reversals)


# --- Webhook events ---------------------------------------------------------------------------


def _on_checkout(obj: dict) -> object:
    return checkout_fulfill(session_id=obj["id"])


def _on_invoice(obj: dict) -> object:
    return invoice_fulfill(invoice_id=obj["id"])


def _on_subscription(obj: dict) -> object:
    return subscription_sync(subscription_id=obj["id"])


def _on_charge(obj: dict) -> object:
    return charge_reversals_settle(charge_id=obj["id"])


def _on_charge_child(obj: dict) -> object:
    # A refund or a dispute: settle its charge as a whole.
    charge_id = _id(obj.get("charge"))
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
        logger.exception("Stripe event %s (%s) failed", event.event_id, event.type)
        # A concurrent delivery may have finished the same work meanwhile: processed stays processed.
        StripeEvent.objects.filter(pk=event.pk).exclude(status=StripeEvent.Status.PROCESSED).update(
            status=StripeEvent.Status.FAILED, error=f"{type(error).__name__}: {error}"
        )
        raise
    StripeEvent.objects.filter(pk=event.pk).update(
        status=StripeEvent.Status.PROCESSED, error="", processed_at=timezone.now()
    )
