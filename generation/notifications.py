"""Opt-in emails when a long job (a video, a batch) is done."""

from __future__ import annotations

import logging
import uuid

from django.core.mail import send_mail
from django.db.models import Count, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from core.emails import html_from_text
from core.links import absolute_url
from generation.models import Batch, Job, Kind

logger = logging.getLogger(__name__)


def _send(user, subject: str, template: str, context: dict) -> None:
    body = render_to_string(template, {"user": user, **context})
    try:
        send_mail(subject, body, None, [user.email], html_message=html_from_text(body, subject=subject))
    except Exception:  # an email is a courtesy: its failure must not fail the job
        logger.exception("could not send %r to user %s", subject, user.pk)


def notify_finished(job_id: uuid.UUID) -> None:
    """Called after a job reached a final state (outside the transaction)."""
    job = Job.objects.select_related("user", "batch").get(pk=job_id)
    if not job.user.notify_long_jobs or job.user.deleted_at:
        return
    if job.batch is not None:  # select_related: no query
        _notify_batch(job.batch)
    elif job.kind == Kind.VIDEO:
        subject = "Your video is ready" if job.status == Job.Status.SUCCEEDED else "Your video could not be made"
        _send(job.user, subject, "emails/job_finished.txt", {"job": job, "url": absolute_url(job.get_absolute_url())})


def _notify_batch(batch: Batch) -> None:
    if batch.jobs.filter(status__in=[Job.Status.QUEUED, Job.Status.RUNNING]).exists():
        return
    # Once, even when the last two photos finish at the same moment.
    if not Batch.objects.filter(pk=batch.pk, notified_at__isnull=True).update(notified_at=timezone.now()):
        return
    counts = batch.jobs.aggregate(
        succeeded=Count("pk", filter=Q(status=Job.Status.SUCCEEDED)),
        failed=Count("pk", filter=Q(status__in=[Job.Status.FAILED, Job.Status.CANCELED])),
    )
    url = absolute_url(reverse("batch_detail", args=[batch.pk]))
    _send(batch.user, "Your batch edit is done", "emails/batch_finished.txt", {"batch": batch, "url": url, **counts})
