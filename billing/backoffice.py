"""Billing's part of the admin home (generation/backoffice.py asks for it)."""

from __future__ import annotations

from django.db.models import Count, Sum

from billing.models import CheckoutSession, LedgerEntry, ReconcileRun, StripeEvent
from billing.money import format_money


def billing_figures(*, since) -> dict:
    # Revenue as paid through Checkout (packs and first plan invoices); plan renewals are
    # counted, not summed, since their amount lives at Stripe.
    paid = (
        CheckoutSession.objects.filter(payment_state=CheckoutSession.PaymentState.PAID, updated_at__gte=since)
        .values("currency")
        .annotate(total=Sum("amount_cents"), count=Count("pk"))
        .order_by("currency")
    )
    plan_invoices = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.SUBSCRIPTION_GRANT, created_at__gte=since).count()
    return {
        "revenue": ", ".join(format_money(row["total"], row["currency"]) for row in paid) or None,
        "checkouts_paid": sum(row["count"] for row in paid),
        "plan_invoices": plan_invoices,
    }


def billing_panels() -> dict:
    run = ReconcileRun.objects.filter(finished_at__isnull=False).first()
    return {
        "failing_events": list(StripeEvent.objects.filter(status=StripeEvent.Status.FAILED)[:10]),
        "reconcile_run": run,
        "open_findings": list(run.findings.all()) if run else [],
    }
