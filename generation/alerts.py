"""Generation's alerts for staff: failing jobs, slow jobs, provider spend (operations/alerts.py
runs them with the others)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, DecimalField, ExpressionWrapper, F, Q, Sum, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce

from core.alerts import Alert
from generation.models import Job

Status = Job.Status


def failure_rate_alert(now) -> Alert | None:
    hour = Job.objects.filter(finished_at__gte=now - timedelta(hours=1))
    counts = hour.aggregate(
        finished=Count("pk", filter=Q(status__in=Job.FINAL_STATUSES)),
        failed=Count("pk", filter=Q(status=Status.FAILED)),
    )
    finished, failed = counts["finished"], counts["failed"]
    if finished >= settings.ALERT_MIN_JOBS and failed / finished > settings.ALERT_FAILURE_RATE:
        return Alert(
            "failure_rate",
            f"{failed} of {finished} jobs failed in the last hour ({failed / finished:.0%}, "
            f"over {settings.ALERT_FAILURE_RATE:.0%}). Check the provider and the job errors.",
        )
    return None


def slow_jobs_alert(now) -> Alert | None:
    slow = Job.objects.filter(
        status=Status.RUNNING, started_at__lt=now - timedelta(seconds=settings.ALERT_SLOW_JOB_SECONDS)
    )
    count = slow.count()
    if count:
        minutes = settings.ALERT_SLOW_JOB_SECONDS // 60
        return Alert("slow_jobs", f"{count} job(s) have been running for over {minutes} minutes.")
    return None


def job_spend_usd() -> ExpressionWrapper:
    """A job's estimated provider cost, from its run metrics and its model's prices (for a job
    that made a prediction), as an expression the database sums."""
    money: DecimalField = DecimalField(max_digits=20, decimal_places=6)
    seconds = Coalesce(Cast(KeyTextTransform("predict_time", "metrics"), money), Value(Decimal(0)), output_field=money)
    return ExpressionWrapper(
        F("model__provider_usd_per_run") + F("model__provider_usd_per_second") * seconds, output_field=money
    )


def provider_spend_usd(now) -> Decimal:
    """Estimated provider spend over the last 24 hours, from run metrics and model prices.

    One SUM in the database over the indexed created_at range: no job rows come to Python."""
    total = (
        Job.objects.filter(created_at__gte=now - timedelta(hours=24))
        .exclude(prediction_id="")
        .aggregate(total=Sum(job_spend_usd()))["total"]
    )
    return Decimal(total or 0)


def spend_alert(now) -> Alert | None:
    budget = Decimal(str(settings.DAILY_PROVIDER_BUDGET_USD))
    spend = provider_spend_usd(now)
    if budget and spend > budget:
        return Alert(
            "provider_spend",
            f"Estimated provider spend in the last 24 h is ${spend:.2f}, over the ${budget:.2f} budget.",
        )
    return None


CHECKS = [failure_rate_alert, slow_jobs_alert, spend_alert]
