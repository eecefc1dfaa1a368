"""Alerts for staff: on the admin home while they hold, and by email at most once an hour."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.mail import mail_admins
from django.db import IntegrityError, transaction
from django.db.models import Count, DecimalField, ExpressionWrapper, F, Q, Sum, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from generation.models import AlertState, Job

logger = logging.getLogger(__name__)
Status = Job.Status


@dataclass(frozen=True)
class Alert:
    key: str
    message: str


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


def provider_spend_usd(now) -> Decimal:
    """Estimated provider spend over the last 24 hours, from run metrics and model prices.

    One SUM in the database over the indexed created_at range: no job rows come to Python."""
    money: DecimalField = DecimalField(max_digits=20, decimal_places=6)
    seconds = Coalesce(Cast(KeyTextTransform("predict_time", "metrics"), money), Value(Decimal(0)), output_field=money)
    spend = ExpressionWrapper(
        F("model__provider_usd_per_run") + F("model__provider_usd_per_second") * seconds, output_field=money
    )
    total = (
        Job.objects.filter(created_at__gte=now - timedelta(hours=24))
        .exclude(prediction_id="")
        .aggregate(total=Sum(spend))["total"]
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


def stripe_webhooks_alert(now) -> Alert | None:
    from billing.alerts import failing_webhooks

    count = failing_webhooks(since=now - timedelta(hours=1))
    if count:
        return Alert(
            "stripe_webhooks", f"{count} Stripe webhook event(s) failed in the last hour; Stripe will retry them."
        )
    return None


CHECKS = [failure_rate_alert, slow_jobs_alert, spend_alert, stripe_webhooks_alert]


def alerts_current() -> list[Alert]:
    now = timezone.now()
    return [alert for check in CHECKS if (alert := check(now)) is not None]


def _claim_email(alert: Alert, now) -> bool:
    """True for exactly one caller per alert per hour, across processes."""
    quiet_until = now - timedelta(hours=1)
    if AlertState.objects.filter(key=alert.key, last_sent_at__lt=quiet_until).update(
        last_sent_at=now, last_message=alert.message
    ):
        return True
    try:
        with transaction.atomic():
            AlertState.objects.create(key=alert.key, last_sent_at=now, last_message=alert.message)
    except IntegrityError:
        return False
    return True


def alerts_check() -> list[Alert]:
    """Scheduled every few minutes: email staff about each alert, at most once an hour."""
    now = timezone.now()
    sent = []
    for alert in alerts_current():
        if _claim_email(alert, now):
            logger.warning("alert: %s", alert.message)
            mail_admins(f"Alert: {alert.key.replace('_', ' ')}", alert.message, fail_silently=True)
            sent.append(alert)
    return sent
