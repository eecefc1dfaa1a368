"""What `cleanup` removes, app by app, and the site's own leftovers: old task results and
expired sessions. Each part goes in bounded batches (core/cleanup.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.contrib.sessions.models import Session
from django.utils import timezone
from django_q.models import Task

from billing import cleanup as billing_cleanup
from core.cleanup import Part, parts_run, rows_part
from core.models import SkippedItem
from generation import cleanup as generation_cleanup


def _task_results() -> Part:
    cutoff = timezone.now() - timedelta(days=settings.CLEANUP_TASK_RESULTS_DAYS)
    return rows_part(
        "task_results",
        f"Task-queue results older than {settings.CLEANUP_TASK_RESULTS_DAYS} days",
        lambda: Task.objects.filter(stopped__lt=cutoff),
        "id",
    )


def _expired_sessions() -> Part:
    now = timezone.now()
    return rows_part(
        "expired_sessions",
        "Expired sessions",
        lambda: Session.objects.filter(expire_date__lt=now),
        "session_key",
        label=lambda session: [session.session_key[:8] + "…"],
    )


def _skipped_items() -> Part:
    cutoff = timezone.now() - timedelta(days=30)
    return rows_part(
        "skipped_items",
        "Records of items the scheduled work skipped, not seen for 30 days",
        lambda: SkippedItem.objects.filter(last_seen_at__lt=cutoff),
        "id",
    )


PARTS: list[Callable[[], Part]] = [
    *generation_cleanup.PARTS,
    _task_results,
    _expired_sessions,
    _skipped_items,
    *billing_cleanup.PARTS,
]


def cleanup_run(*, dry_run: bool, on_item: Callable[[str, str], None] | None = None) -> list[Part]:
    return parts_run(PARTS, dry_run=dry_run, on_item=on_item)
