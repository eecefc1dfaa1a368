"""What `cleanup` removes: files and rows nobody needs any more.

Each part finds its items first and deletes only what it found, so `--dry-run` reports exactly
the set a real run then deletes. Money rows (the ledger, jobs) are never deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db.models import Q
from django.utils import timezone
from django_q.models import Task

from generation.models import Job, JobOutput, ProviderWebhook, Upload
from generation.outputs import delete_files


@dataclass
class Part:
    name: str
    description: str
    items: list[str] = field(default_factory=list)
    apply: Callable[[], None] = field(default=lambda: None, repr=False)


def _uploads_unused() -> Part:
    cutoff = timezone.now() - timedelta(days=1)
    uploads = list(Upload.objects.filter(created_at__lt=cutoff, jobs__isnull=True).exclude(file=""))

    def apply() -> None:
        Upload.objects.filter(pk__in=[u.pk for u in uploads], jobs__isnull=True).delete()
        delete_files([u.file.name for u in uploads])

    return Part(
        "uploads_unused", "Uploaded photos no job uses, older than a day", [u.file.name for u in uploads], apply
    )


def _files_of(jobs: Q, name: str, description: str) -> Part:
    """The outputs of the matching jobs, and the photos no other job still uses."""
    outputs = list(JobOutput.objects.filter(job__in=Job.objects.filter(jobs)))
    photos = list(
        Upload.objects.exclude(file="")
        .filter(jobs__in=Job.objects.filter(jobs))
        .exclude(jobs__in=Job.objects.exclude(jobs))
        .distinct()
    )
    names = [n for o in outputs for n in (o.file.name, o.thumbnail.name) if n] + [u.file.name for u in photos]

    def apply() -> None:
        JobOutput.objects.filter(pk__in=[o.pk for o in outputs]).delete()
        Upload.objects.filter(pk__in=[u.pk for u in photos]).update(file="")
        delete_files(names)

    return Part(name, description, names, apply)


def _files_of_deleted_jobs() -> Part:
    return _files_of(Q(deleted_at__isnull=False), "deleted_jobs_files", "Files of deleted jobs and accounts")


def _failed_jobs_files() -> Part:
    days = settings.CLEANUP_FAILED_AFTER_DAYS
    cutoff = timezone.now() - timedelta(days=days)
    old_failed = Q(status__in=[Job.Status.FAILED, Job.Status.CANCELED], created_at__lt=cutoff)
    return _files_of(old_failed, "failed_jobs_files", f"Files of jobs that failed more than {days} days ago")


def _task_results() -> Part:
    cutoff = timezone.now() - timedelta(days=settings.CLEANUP_TASK_RESULTS_DAYS)
    ids = list(Task.objects.filter(stopped__lt=cutoff).values_list("id", flat=True))
    return Part(
        "task_results",
        f"Task-queue results older than {settings.CLEANUP_TASK_RESULTS_DAYS} days",
        ids,
        lambda: Task.objects.filter(id__in=ids).delete(),
    )


def _expired_sessions() -> Part:
    keys = list(Session.objects.filter(expire_date__lt=timezone.now()).values_list("session_key", flat=True))
    return Part(
        "expired_sessions",
        "Expired sessions",
        [k[:8] + "…" for k in keys],
        lambda: Session.objects.filter(session_key__in=keys).delete(),
    )


def _provider_webhooks() -> Part:
    cutoff = timezone.now() - timedelta(days=settings.WEBHOOK_RETENTION_DAYS)
    ids = list(ProviderWebhook.objects.filter(received_at__lt=cutoff).values_list("webhook_id", flat=True))
    return Part(
        "provider_webhooks",
        f"Replicate webhook records older than {settings.WEBHOOK_RETENTION_DAYS} days",
        ids,
        lambda: ProviderWebhook.objects.filter(webhook_id__in=ids).delete(),
    )


def _stripe_event_payloads() -> Part:
    # The event row stays (its id is what makes a redelivery a no-op); its payload goes.
    from billing.models import StripeEvent

    cutoff = timezone.now() - timedelta(days=settings.WEBHOOK_RETENTION_DAYS)
    ids = list(
        StripeEvent.objects.filter(received_at__lt=cutoff, status__in=StripeEvent.DONE)
        .exclude(payload={})
        .values_list("event_id", flat=True)
    )
    return Part(
        "stripe_event_payloads",
        f"Payloads of handled Stripe events older than {settings.WEBHOOK_RETENTION_DAYS} days",
        ids,
        lambda: StripeEvent.objects.filter(event_id__in=ids).update(payload={}),
    )


PARTS: list[Callable[[], Part]] = [
    _uploads_unused,
    _files_of_deleted_jobs,
    _failed_jobs_files,
    _task_results,
    _expired_sessions,
    _provider_webhooks,
    _stripe_event_payloads,
]


def cleanup_run(*, dry_run: bool) -> list[Part]:
    parts = [find() for find in PARTS]
    if not dry_run:
        for part in parts:
            if part.items:
                part.apply()
    return parts
