"""Reconciliation checks that need both a job and its ledger entries (registered with `reconcile`
in generation/apps.py).

Each check is one set-based query: the job's entry is found by its idempotency key
(`charge:<job id>`, `refund:<job id>`) through the ledger's unique index, and a charge's job by
its primary key. An incremental run (`since`) reads only the jobs created or finished since
then and the entries written since then, through their indexes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import CharField, Exists, Func, OuterRef, QuerySet, UUIDField, Value
from django.db.models.functions import Concat, Substr
from django.utils import timezone

from billing.models import LedgerEntry
from billing.reconcile.findings import EXAMPLES, Check, Finding
from billing.services import credits_refund
from generation.models import Job
from generation.services.sweeping import sweep_stuck_jobs

Status = Job.Status


class UUIDText(Func):
    """A UUID as the text services put in keys (`8-4-4-4-12`, lower case)."""

    output_field = CharField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="(%(expressions)s)::text", **extra)

    def as_sqlite(self, compiler, connection, **extra):
        # SQLite stores a UUIDField as 32 hex digits.
        hexdigits = "lower(%(expressions)s)"
        parts = [
            f"substr({hexdigits}, {start}, {length})" for start, length in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))
        ]
        return self.as_sql(compiler, connection, template=" || '-' || ".join(parts), **extra)


class JobIdOf(Func):
    """The job id in a `job:<uuid>` reference; NULL when the rest is not a UUID."""

    output_field = UUIDField()

    def as_postgresql(self, compiler, connection, **extra):
        template = "(CASE WHEN %(expressions)s ~ '^job:[0-9a-fA-F-]{36}$' THEN substr(%(expressions)s, 5)::uuid END)"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, template="lower(replace(substr(%(expressions)s, 5), '-', ''))", **extra
        )


def _entry(prefix: str, **filters) -> Exists:
    key = Concat(Value(f"{prefix}:"), UUIDText(OuterRef("pk")), output_field=CharField())
    return Exists(LedgerEntry.objects.filter(idempotency_key=key, **filters))


def _finding(name: str, description: str, jobs: QuerySet[Job], **extra) -> Finding:
    count = jobs.count()
    examples = [
        {"job": str(job["id"]), "status": job["status"], "cost": job["cost"]}
        for job in jobs.order_by("created_at").values("id", "status", "cost")[:EXAMPLES]
    ] if count else []  # fmt: skip
    return Finding(name=name, description=description, count=count, examples=examples, **extra)


def finished_jobs_without_refund(*, since: datetime | None = None) -> Finding:
    # A job on the house (cost 0, a staff re-run) was never charged and is never refunded.
    jobs = Job.objects.filter(status__in=[Status.FAILED, Status.CANCELED], cost__gt=0).exclude(_entry("refund"))
    if since is not None:
        # job_fail stamps finished_at with the status; a final job without it was edited by hand.
        jobs = jobs.filter(finished_at__gte=since)

    def fix() -> int:
        owed = list(jobs.only("id"))
        for job in owed:
            credits_refund(charge_key=job.charge_key, key=job.refund_key, memo="Refund owed (reconcile)")
        return len(owed)

    finding = _finding("finished_jobs_without_refund", "Failed or canceled jobs that were not refunded", jobs)
    finding.fix = fix if finding.count else None
    return finding


def succeeded_jobs_with_refund(*, since: datetime | None = None) -> Finding:
    # Staff may refund a succeeded job on purpose (a reported bad result); the system never should.
    jobs = Job.objects.filter(status=Status.SUCCEEDED).filter(_entry("refund", actor_type=LedgerEntry.Actor.SYSTEM))
    if since is not None:
        # Either side may be the new one: a job that succeeded since, or a refund written since.
        # Two indexed reads (an OR of the two would read every succeeded job).
        refunded = LedgerEntry.objects.filter(
            kind=LedgerEntry.Kind.REFUND, actor_type=LedgerEntry.Actor.SYSTEM, created_at__gte=since
        ).values(job_id=JobIdOf("reference"))
        found = {*jobs.filter(finished_at__gte=since).values_list("pk", flat=True)}
        found |= {*jobs.filter(pk__in=refunded).values_list("pk", flat=True)}
        jobs = Job.objects.filter(pk__in=found)
    return _finding("succeeded_jobs_with_refund", "Succeeded jobs that the system refunded as well", jobs)


def jobs_without_charge(*, since: datetime | None = None) -> Finding:
    # The charge is written in the job's own transaction: a job created since then is the change.
    jobs = Job.objects.filter(cost__gt=0).exclude(_entry("charge"))
    if since is not None:
        jobs = jobs.filter(created_at__gte=since)
    return _finding("jobs_without_charge", "Jobs with no charge in the ledger", jobs)


def charges_without_job(*, since: datetime | None = None) -> Finding:
    charges = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE, reference__startswith="job:")
    job: QuerySet[Job]
    if since is None:
        # Every charge against every job: a hash anti-join on the id as text (parsing each
        # reference into a UUID costs more than the join itself).
        job = Job.objects.annotate(id_text=UUIDText("pk")).filter(id_text=Substr(OuterRef("reference"), 5))
    else:
        # The few charges since then, each looked up by the job's primary key.
        charges = charges.filter(created_at__gte=since)
        job = Job.objects.filter(pk=JobIdOf(OuterRef("reference")))
    charges = charges.exclude(Exists(job))
    count = charges.count()
    examples = list(charges.order_by("pk").values("idempotency_key", "amount")[:EXAMPLES]) if count else []
    return Finding(
        name="charges_without_job",
        description="Charges for a job that does not exist",
        count=count,
        examples=[{"key": e["idempotency_key"], "amount": e["amount"]} for e in examples],
    )


def jobs_past_deadline(*, since: datetime | None = None) -> Finding:
    # A state, not a change: the (status, deadline_at) index answers it at any volume.
    cutoff = timezone.now() - timedelta(seconds=settings.JOB_SWEEP_GRACE_SECONDS)
    jobs = Job.objects.filter(status=Status.RUNNING, deadline_at__lt=cutoff)

    def fix() -> int:
        result = sweep_stuck_jobs()
        return result["finished"] + result["failed"]

    finding = _finding("jobs_past_deadline", "Jobs still running past their deadline", jobs)
    finding.fix = fix if finding.count else None
    return finding


CHECKS: list[Check] = [
    finished_jobs_without_refund,
    succeeded_jobs_with_refund,
    jobs_without_charge,
    charges_without_job,
    jobs_past_deadline,
]
