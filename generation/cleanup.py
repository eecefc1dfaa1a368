"""What `cleanup` removes of generation's: photos and outputs nobody needs any more, and old
webhook records. operations/cleanup.py runs these with the other apps' parts, in the bounded
batches of core/cleanup.py. Money rows (the ledger, jobs) are never deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from core.cleanup import Part, Source, rows_part
from generation.models import Job, JobOutput, ProviderWebhook, Upload
from generation.outputs import delete_files


def _uploads_unused() -> Part:
    cutoff = timezone.now() - timedelta(days=1)

    def rows() -> QuerySet:
        return Upload.objects.filter(created_at__lt=cutoff, jobs__isnull=True).exclude(file="").only("id", "file")

    def remove(batch: list[Upload]) -> None:
        Upload.objects.filter(pk__in=[u.pk for u in batch], jobs__isnull=True).delete()
        delete_files([u.file.name for u in batch])

    source = Source(rows, lambda u: [u.file.name], remove)
    return Part("uploads_unused", "Uploaded photos no job uses, older than a day", [source])


def _files_of(jobs: Q, name: str, description: str) -> Part:
    """The outputs of the matching jobs, and the photos no other job still uses."""

    def outputs() -> QuerySet:
        return JobOutput.objects.filter(Exists(Job.objects.filter(jobs, pk=OuterRef("job_id")))).only(
            "id", "file", "thumbnail"
        )

    def remove_outputs(batch: list[JobOutput]) -> None:
        JobOutput.objects.filter(pk__in=[o.pk for o in batch]).delete()
        delete_files([n for o in batch for n in (o.file.name, o.thumbnail.name) if n])

    def photos() -> QuerySet:
        used_by = Job.objects.filter(source=OuterRef("pk"))
        return (
            Upload.objects.exclude(file="")
            .filter(Exists(used_by.filter(jobs)))
            .exclude(Exists(used_by.exclude(jobs)))
            .only("id", "file")
        )

    def remove_photos(batch: list[Upload]) -> None:
        Upload.objects.filter(pk__in=[u.pk for u in batch]).update(file="")
        delete_files([u.file.name for u in batch])

    return Part(
        name,
        description,
        [
            Source(outputs, lambda o: [n for n in (o.file.name, o.thumbnail.name) if n], remove_outputs),
            Source(photos, lambda u: [u.file.name], remove_photos),
        ],
    )


def _files_of_deleted_jobs() -> Part:
    return _files_of(Q(deleted_at__isnull=False), "deleted_jobs_files", "Files of deleted jobs and accounts")


def _failed_jobs_files() -> Part:
    days = settings.CLEANUP_FAILED_AFTER_DAYS
    cutoff = timezone.now() - timedelta(days=days)
    old_failed = Q(status__in=[Job.Status.FAILED, Job.Status.CANCELED], created_at__lt=cutoff)
    return _files_of(old_failed, "failed_jobs_files", f"Files of jobs that failed more than {days} days ago")


def _provider_webhooks() -> Part:
    cutoff = timezone.now() - timedelta(days=settings.WEBHOOK_RETENTION_DAYS)
    return rows_part(
        "provider_webhooks",
        f"Replicate webhook records older than {settings.WEBHOOK_RETENTION_DAYS} days",
        lambda: ProviderWebhook.objects.filter(received_at__lt=cutoff),
        "webhook_id",
    )


PARTS: list[Callable[[], Part]] = [
    _uploads_unused,
    _files_of_deleted_jobs,
    _failed_jobs_files,
    _provider_webhooks,
]
