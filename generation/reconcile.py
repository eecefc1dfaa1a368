"""Reconciliation checks that need both a job and its ledger entries (plugged into `reconcile`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from billing.models import LedgerEntry
from billing.reconcile import EXAMPLES, Finding, reconcile_check
from billing.services import credits_refund
from generation.models import Job

CHUNK = 2_000
Status = Job.Status


def _chunks(queryset, size: int = CHUNK) -> Iterator[list]:
    chunk = []
    for item in queryset.iterator(chunk_size=size):
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _existing_keys(keys: list[str], **filters) -> set[str]:
    entries = LedgerEntry.objects.filter(idempotency_key__in=keys, **filters)
    return set(entries.values_list("idempotency_key", flat=True))


def _jobs_missing(status_in, key_prefix: str, *, present: bool, **entry_filters) -> list[Job]:
    """Jobs in these states whose `<prefix>:<job>` entry is absent (present=False) or there."""
    found = []
    jobs = Job.objects.filter(status__in=status_in).only("id", "user_id", "status", "cost").order_by("created_at")
    for chunk in _chunks(jobs):
        keys = _existing_keys([f"{key_prefix}:{job.id}" for job in chunk], **entry_filters)
        found += [job for job in chunk if (f"{key_prefix}:{job.id}" in keys) == present]
    return found


def _examples(jobs: list[Job]) -> list[dict]:
    return [{"job": str(job.id), "status": job.status, "cost": job.cost} for job in jobs[:EXAMPLES]]


@reconcile_check
def finished_jobs_without_refund() -> Finding:
    jobs = _jobs_missing([Status.FAILED, Status.CANCELED], "refund", present=False)

    def fix() -> int:
        for job in jobs:
            credits_refund(charge_key=job.charge_key, key=job.refund_key, memo="Refund owed (reconcile)")
        return len(jobs)

    return Finding(
        name="finished_jobs_without_refund",
        description="Failed or canceled jobs that were not refunded",
        count=len(jobs),
        examples=_examples(jobs),
        fix=fix if jobs else None,
    )


@reconcile_check
def succeeded_jobs_with_refund() -> Finding:
    # Staff may refund a succeeded job on purpose (a reported bad result); the system never should.
    jobs = _jobs_missing([Status.SUCCEEDED], "refund", present=True, actor_type=LedgerEntry.Actor.SYSTEM)
    return Finding(
        name="succeeded_jobs_with_refund",
        description="Succeeded jobs that the system refunded as well",
        count=len(jobs),
        examples=_examples(jobs),
    )


@reconcile_check
def jobs_without_charge() -> Finding:
    jobs = _jobs_missing(Job.Status.values, "charge", present=False)
    return Finding(
        name="jobs_without_charge",
        description="Jobs with no charge in the ledger",
        count=len(jobs),
        examples=_examples(jobs),
    )


@reconcile_check
def charges_without_job() -> Finding:
    orphans = []
    charges = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE, reference__startswith="job:").only(
        "idempotency_key", "reference", "amount"
    )
    for chunk in _chunks(charges):
        ids = {entry.reference.removeprefix("job:") for entry in chunk}
        known = {str(pk) for pk in Job.objects.filter(pk__in=ids).values_list("pk", flat=True)}
        orphans += [entry for entry in chunk if entry.reference.removeprefix("job:") not in known]
    return Finding(
        name="charges_without_job",
        description="Charges for a job that does not exist",
        count=len(orphans),
        examples=[{"key": e.idempotency_key, "amount": e.amount} for e in orphans[:EXAMPLES]],
    )


@reconcile_check
def jobs_past_deadline() -> Finding:
    cutoff = timezone.now() - timedelta(seconds=settings.JOB_SWEEP_GRACE_SECONDS)
    jobs = list(Job.objects.filter(status=Status.RUNNING, deadline_at__lt=cutoff).order_by("deadline_at"))

    def fix() -> int:
        from generation.services import sweep_stuck_jobs

        result = sweep_stuck_jobs()
        return result["finished"] + result["failed"]

    return Finding(
        name="jobs_past_deadline",
        description="Jobs still running past their deadline",
        count=len(jobs),
        examples=_examples(jobs),
        fix=fix if jobs else None,
    )
