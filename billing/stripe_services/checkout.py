"""Customers, Checkout and the portal: called from views, never inside a transaction."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import stripe
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from billing.models import CheckoutSession, CreditPack, Plan, StripeCustomer, Subscription
from billing.stripe_client import stripe_client
from billing.stripe_services.common import CheckoutRefused


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
    The key also names what is bought: the page the browser brings back with Back carries the same
    attempt in every buy form, and Stripe refuses one key with other parameters for 24 hours.
    """
    is_plan = isinstance(product, Plan)
    if is_plan and Subscription.objects.filter(user=user, status__in=Subscription.CURRENT).exists():
        raise CheckoutRefused(ALREADY_SUBSCRIBED)
    if isinstance(product, Plan):
        open_url = _open_plan_checkout(user=user, plan=product)
        if open_url:
            return open_url
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
        params=params,  # type: ignore[arg-type]  # a plain dict, not stripe's TypedDict
        options={"idempotency_key": checkout_idempotency_key(user=user, product=product, attempt=attempt)},
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
    if not session.url:  # a hosted session always has one; an embedded one (never made here) would not
        raise stripe.InvalidRequestError(f"Checkout session {session.id} came back without a URL.", param="url")
    return session.url


def checkout_idempotency_key(*, user: User, product: CreditPack | Plan, attempt: str) -> str:
    """One key per page view and thing bought (its kind, row and Stripe price): pressing another
    button of the same page is another request, never a clash with the first."""
    kind = "plan" if isinstance(product, Plan) else "pack"
    return f"checkout:{user.pk}:{kind}:{product.pk}:{product.stripe_price_id}:{attempt}"


ALREADY_SUBSCRIBED = "You already have a monthly plan. Change or cancel it from “Manage plan and invoices”."

# Stripe expires a Checkout session 24 hours after it was created, at the latest.
CHECKOUT_LIFETIME = timedelta(hours=25)


def _open_plan_checkout(*, user: User, plan: Plan) -> str | None:
    """One plan checkout at a time, so two cannot both be paid: the open one for this plan is
    continued (its URL), one for another plan is expired at Stripe first, and one that was
    completed (paid, or its payment clearing) refuses a second."""
    State = CheckoutSession.PaymentState
    recent = CheckoutSession.objects.filter(
        user=user,
        mode=CheckoutSession.Mode.SUBSCRIPTION,
        # A paid one is a plan row by now (checked above): canceled since, it refuses nothing.
        payment_state__in=(State.OPEN, State.PROCESSING),
        created_at__gte=timezone.now() - CHECKOUT_LIFETIME,
    ).order_by("-created_at")
    client = stripe_client()
    for record in recent:
        if record.payment_state == State.PROCESSING:
            raise CheckoutRefused(
                "The first payment for your monthly plan is still being processed. Please wait for it."
            )
        session = client.v1.checkout.sessions.retrieve(record.session_id)
        if session.status == "open" and record.plan_id == plan.pk:
            return session.url
        if session.status == "open":
            try:
                client.v1.checkout.sessions.expire(record.session_id)
            except stripe.InvalidRequestError:
                # It was completed a moment ago: that is the plan.
                raise CheckoutRefused(ALREADY_SUBSCRIBED) from None
            session = client.v1.checkout.sessions.retrieve(record.session_id)
        if session.status == "complete":
            raise CheckoutRefused(ALREADY_SUBSCRIBED)
        CheckoutSession.objects.filter(pk=record.pk, payment_state=State.OPEN).update(
            payment_state=State.EXPIRED, updated_at=timezone.now()
        )
    return None


def portal_session_create(*, user: User, return_url: str) -> str | None:
    """A Stripe customer-portal link (plan, payment method, invoices); None if the user never bought."""
    customer_id = StripeCustomer.objects.filter(user=user).values_list("customer_id", flat=True).first()
    if not customer_id:
        return None
    portal = stripe_client().v1.billing_portal.sessions.create(
        params={"customer": customer_id, "return_url": return_url}
    )
    return portal.url
