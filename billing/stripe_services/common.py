"""What the Stripe services share: the statuses that move credits, errors, and reading Stripe objects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from accounts.models import User
from billing.models import LedgerEntry, StripeCustomer

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

# What each status of Stripe's dispute object means for the credits the charge bought: every
# value the pinned library's `Dispute.status` lists. An inquiry (`warning_*`) and a dispute the
# network `prevented` take no money. A chargeback takes it at once and keeps it while open, lost
# or under appeal (appeals follow a lost dispute: a dispute first seen in an appeal state, after a
# lost webhook, is still clawed back). A won one gives it back.
DISPUTE_STATUS_EFFECTS: dict[str, str] = {
    "warning_needs_response": "none",
    "warning_under_review": "none",
    "warning_closed": "none",
    "prevented": "none",
    "needs_response": "clawback",
    "under_review": "clawback",
    "lost": "clawback",
    "appeal_needs_response": "clawback",
    "appeal_under_review": "clawback",
    "won": "restore",
}

DISPUTE_CLAWBACK_STATUSES = tuple(status for status, effect in DISPUTE_STATUS_EFFECTS.items() if effect != "none")

DISPUTE_RESTORE_STATUSES = tuple(status for status, effect in DISPUTE_STATUS_EFFECTS.items() if effect == "restore")


class StripeDataError(Exception):
    """What Stripe says does not fit what we sold (an unknown price, someone else's customer).

    The event fails and stays visible in the admin until a person fixes the cause.
    """


class CheckoutRefused(Exception):
    """A purchase this user may not start; the message says why."""


def stripe_dict(obj: Any) -> dict:
    # StripeObject is not a dict in stripe 16; plain dicts let us .get() fields that newer API
    # versions dropped instead of raising on them.
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def stripe_id(value: Any) -> str:
    # An id, or an expanded object in its place.
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def stripe_datetime(timestamp: int | None) -> datetime | None:
    return datetime.fromtimestamp(int(timestamp), tz=UTC) if timestamp else None


def stripe_user_for(*, customer_id: str, metadata: dict) -> User | None:
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
