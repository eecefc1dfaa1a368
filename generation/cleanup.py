"""What `cleanup` removes: files and rows nobody needs any more.

Each part is a rule (a query for what matches it) read and applied in batches of BATCH rows
in primary-key order, so memory stays flat however much has piled up and no statement holds
more than a batch's locks. `--dry-run` reads the same batches and counts; a real run applies
the rule to each batch it reads. Money rows (the ledger, jobs) are never deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django_q.models import Task

from generation.models import Job, JobOutput, ProviderWebhook, Upload
from generation.outputs import delete_files

BATCH = 1_000


@dataclass
class Source:
    """Rows matching a rule, what each stands for in the report, and how one batch goes."""

    rows: Callable[[], QuerySet]
    labels: Callable[[Any], list[str]]  # takes a row of `rows`, whichever model that is
    remove: Callable[[list], None]
    key: str = "pk"


@dataclass
class Part:
    name: str
    description: str
    sources: list[Source] = field(default_factory=list, repr=False)
    count: int = 0


def _batches(source: Source) -> Iterator[list]:
    # Keyset by primary key: each batch starts after the last row of the one before, whether
    # or not that one was deleted, so a row that cannot go is never read twice.
    last = None
    while True:
        rows = source.rows().order_by(source.key)
        if last is not None:
            rows = rows.filter(**{f"{source.key}__gt": last})
        batch = list(rows[:BATCH])
        if not batch:
            return
        yield batch
        last = getattr(batch[-1], source.key)


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


def _rows_part(name: str, description: str, rows: Callable[[], QuerySet], key: str, label=None, remove=None) -> Part:
    def delete(batch: list) -> None:
        rows().filter(**{f"{key}__in": [getattr(row, key) for row in batch]}).delete()

    source = Source(
        lambda: rows().only(key), label or (lambda row: [str(getattr(row, key))]), remove or delete, key=key
    )
    return Part(name, description, [source])


def _task_results() -> Part:
    cutoff = timezone.now() - timedelta(days=settings.CLEANUP_TASK_RESULTS_DAYS)
    return _rows_part(
        "task_results",
        f"Task-queue results older than {settings.CLEANUP_TASK_RESULTS_DAYS} days",
        lambda: Task.objects.filter(stopped__lt=cutoff),
        "id",
    )


def _expired_sessions() -> Part:
    now = timezone.now()
    return _rows_part(
        "expired_sessions",
        "Expired sessions",
        lambda: Session.objects.filter(expire_date__lt=now),
        "session_key",
        label=lambda session: [session.session_key[:8] + "…"],
    )


def _provider_webhooks() -> Part:
    cutoff = timezone.now() - timedelta(days=settings.WEBHOOK_RETENTION_DAYS)
    return _rows_part(
        "provider_webhooks",
        f"Replicate webhook records older than {settings.WEBHOOK_RETENTION_DAYS} days",
        lambda: ProviderWebhook.objects.filter(received_at__lt=cutoff),
        "webhook_id",
    )


def _stripe_event_payloads() -> Part:
    # The event row stays (its id is what makes a redelivery a no-op); its payload goes.
    from billing.models import StripeEvent

    cutoff = timezone.now() - timedelta(days=settings.WEBHOOK_RETENTION_DAYS)

    def rows() -> QuerySet:
        return StripeEvent.objects.filter(received_at__lt=cutoff, status__in=StripeEvent.DONE).exclude(payload={})

    def empty(batch: list) -> None:
        StripeEvent.objects.filter(pk__in=[event.pk for event in batch]).update(payload={})

    return _rows_part(
        "stripe_event_payloads",
        f"Payloads of handled Stripe events older than {settings.WEBHOOK_RETENTION_DAYS} days",
        rows,
        "event_id",
        remove=empty,
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


def cleanup_run(*, dry_run: bool, on_item: Callable[[str, str], None] | None = None) -> list[Part]:
    """Apply every part batch by batch (or only count, with dry_run); `on_item(part, item)` is
    called for each item as its batch is read, so a listing never builds up in memory."""
    parts = []
    for make in PARTS:
        part = make()
        for source in part.sources:
            for batch in _batches(source):
                for row in batch:
                    for label in source.labels(row):
                        part.count += 1
                        if on_item is not None:
                            on_item(part.name, label)
                if not dry_run:
                    source.remove(batch)
        parts.append(part)
    return parts
