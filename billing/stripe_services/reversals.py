"""Refunds and disputes: credits clawed back in proportion to the money, and restored when a dispute is won."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction

from billing.models import CreditAccount, LedgerEntry
from billing.money import format_money
from billing.services import credits_adjust, credits_clawback
from billing.stripe_client import stripe_client
from billing.stripe_services.common import (
    DISPUTE_CLAWBACK_STATUSES,
    DISPUTE_RESTORE_STATUSES,
    DISPUTE_STATUS_EFFECTS,
    REFUND_CLAWBACK_STATUSES,
    StripeDataError,
    stripe_dict,
    stripe_id,
)
from billing.stripe_services.fulfilment import checkout_apply, checkout_read, invoice_apply, invoice_read


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
        checkout = checkout_read(client, sessions.data[0].id)
        return lambda: checkout_apply(checkout)
    payments = client.v1.invoice_payments.list(
        params={"payment": {"type": "payment_intent", "payment_intent": payment_intent_id}, "limit": 1}
    )
    if payments.data:
        invoice = invoice_read(client, stripe_id(stripe_dict(payments.data[0]).get("invoice")))
        return lambda: invoice_apply(invoice)
    return None


def _reversals_read(client, charge_id: str) -> list[_Reversal]:
    reversals = []
    for refund in client.v1.refunds.list(params={"charge": charge_id, "limit": 100}).auto_paging_iter():
        if refund.status in REFUND_CLAWBACK_STATUSES:
            reversals.append(_Reversal("refund", refund.id, refund.amount, refund.created))
    for dispute in client.v1.disputes.list(params={"charge": charge_id, "limit": 100}).auto_paging_iter():
        if dispute.status not in DISPUTE_STATUS_EFFECTS:
            # A status Stripe added after this code: a person decides (the event fails, visibly).
            raise StripeDataError(f"Dispute {dispute.id} has a status we do not know: {dispute.status!r}.")
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


def charge_reversals_settle(*, charge_id: str, dry_run: bool = False) -> list[LedgerEntry]:
    """Claw back what a charge's refunds (full or partial) and chargebacks took back, once each
    (`clawback:<refund or dispute>`), and give it back after a won dispute (`restore:<dispute>`).

    Only a clawback may take a balance below zero; new jobs are then refused until a top-up.
    With `dry_run` the same code runs and its transaction is rolled back: the entries returned are
    what it would write (`reconcile` asks this, so it never disagrees with the repair).
    """
    client = stripe_client()
    charge = stripe_dict(client.v1.charges.retrieve(charge_id))
    payment_intent_id = stripe_id(charge.get("payment_intent"))
    fulfil = _purchase_read(client, payment_intent_id) if payment_intent_id else None
    if fulfil is None:
        return []  # not a payment for credits
    reversals = _reversals_read(client, charge_id)
    with transaction.atomic():
        grant = fulfil()
        entries = _reversals_apply(grant, charge, reversals) if grant is not None else []
        if dry_run:
            transaction.set_rollback(True)
        return entries
