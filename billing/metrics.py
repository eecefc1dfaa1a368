"""What billing tells /metrics (operations/metrics.py shows it): the ledger's running sum in
stretches of ids, the accounts in debt, failing Stripe events and reconcile's open findings.
Each read follows what it shows (a stretch of new entries, the few failing or indebted rows),
never the size of the ledger or of the accounts."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Max, Sum

from billing.models import CreditAccount, LedgerEntry, ReconcileRun, StripeEvent


def ledger_sum(*, after_id: int, until_id: int | None = None) -> tuple[int, int]:
    """The sum of the entries with after_id < id <= until_id (every later one without until_id),
    over the primary key, and the largest id among them (after_id when there are none)."""
    entries = LedgerEntry.objects.filter(pk__gt=after_id)
    if until_id is not None:
        entries = entries.filter(pk__lte=until_id)
    totals = entries.aggregate(total=Sum("amount"), last=Max("pk"))
    return totals["total"] or 0, totals["last"] or after_id


def ledger_id_written_before(moment: datetime) -> int | None:
    """The id of the last entry written before `moment`, through the (-created_at, -id) index.
    Every entry up to it has committed by then: a ledger transaction lasts milliseconds."""
    return (
        LedgerEntry.objects.filter(created_at__lt=moment).order_by("-created_at", "-id").values_list("pk", flat=True)
    ).first()


def credits_in_debt() -> int:
    """What accounts below zero owe (a Stripe refund or dispute clawed back spent credits), as a
    negative number, through the partial index of such accounts."""
    return CreditAccount.objects.filter(balance__lt=0).aggregate(total=Sum("balance"))["total"] or 0


def stripe_events_failing(*, received_since: datetime) -> tuple[int, int]:
    """Stripe events whose processing failed and has not succeeded since: all of them, and those
    received since `received_since` (what the hourly alert counts); through the status index."""
    failing = StripeEvent.objects.filter(status=StripeEvent.Status.FAILED)
    return failing.count(), failing.filter(received_at__gte=received_since).count()


def reconcile_open_findings() -> tuple[datetime | None, dict[str, int]]:
    """When the last finished `reconcile` run ended, and what it found that is not fixed yet:
    items per check."""
    run = ReconcileRun.objects.filter(finished_at__isnull=False).first()
    if run is None:
        return None, {}
    open_findings = run.findings.filter(fixed_at__isnull=True).values_list("name", "count")
    return run.finished_at, dict(open_findings)
