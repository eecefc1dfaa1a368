"""Alerts for staff: on the admin home while they hold, and by email at most once an hour.

Each app checks its own conditions (generation's and billing's `alerts.py`); this runs them all
and remembers, per kind of alert, when staff were last emailed."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.core.mail import mail_admins
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing import alerts as billing_alerts
from core.alerts import Alert
from core.skips import item_guard
from generation import alerts as generation_alerts
from operations.models import AlertState

logger = logging.getLogger(__name__)

CHECKS = [*generation_alerts.CHECKS, *billing_alerts.CHECKS]


def alerts_current() -> list[Alert]:
    """The alerts that hold now. A check that raises (a row it cannot read) is skipped and
    recorded (core/skips.py); the others still alert, and the admin home still opens."""
    now = timezone.now()
    alerts = []
    for check in CHECKS:
        with item_guard(loop="alerts", item=f"check {check.__name__}"):
            alert = check(now)
            if alert is not None:
                alerts.append(alert)
    return alerts


def _claim_email(alert: Alert, now: datetime) -> bool:
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
