"""Figures for the admin home: a fixed number of queries, whatever the number of jobs."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q, Sum
from django.utils import timezone

from billing.models import LedgerEntry
from generation.alerts import alerts_current
from generation.models import Job, JobReport
from generation.stats import duration_percentiles

Kind = LedgerEntry.Kind


def _window(since) -> dict:
    counts = Job.objects.filter(created_at__gte=since).aggregate(
        total=Count("pk"), **{status: Count("pk", filter=Q(status=status)) for status in Job.Status.values}
    )
    finished = counts["succeeded"] + counts["failed"] + counts["canceled"]
    # Percentiles computed in the database over the indexed created_at range, not in Python.
    median_seconds, p95_seconds = duration_percentiles(Job.objects.filter(created_at__gte=since))
    money = LedgerEntry.objects.filter(created_at__gte=since).aggregate(
        charged=Sum("amount", filter=Q(kind=Kind.CHARGE)),
        refunded=Sum("amount", filter=Q(kind=Kind.REFUND)),
        sold=Sum("amount", filter=Q(kind__in=[Kind.PURCHASE, Kind.SUBSCRIPTION_GRANT])),
    )
    return {
        "jobs": counts,
        "success_rate": counts["succeeded"] / finished if finished else None,
        "median_seconds": median_seconds,
        "p95_seconds": p95_seconds,
        "credits_charged": -(money["charged"] or 0),
        "credits_refunded": money["refunded"] or 0,
        "credits_sold": money["sold"] or 0,
    }


def dashboard() -> dict:
    now = timezone.now()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    from billing.backoffice import billing_figures, billing_panels

    return {
        "today": _window(today) | billing_figures(since=today),
        "last_24h": _window(now - timedelta(hours=24)) | billing_figures(since=now - timedelta(hours=24)),
        "alerts": alerts_current(),
        "stuck_jobs": list(
            Job.objects.filter(status=Job.Status.RUNNING, deadline_at__lt=now)
            .select_related("user", "model")
            .order_by("deadline_at")[:10]
        ),
        "open_reports": JobReport.objects.filter(status=JobReport.Status.OPEN).count(),
    } | billing_panels()
