"""Reconciliation checks that need both a job and its ledger entries (registered with `reconcile`
in generation/apps.py).

Each check is one set-based query. A job is charged once per result it asks for and each
result refunded at most once (keys `charge:<job>`, `charge:<job>:1`, ..., and the same for
`refund:`), all entries referring to `job:<job id>`: a job's entries are counted through the
ledger's index on that reference, and a charge's job is found by its primary key. An
incremental run (`since`) reads only the jobs created or finished since then and the entries
written since then, through their indexes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import CharField, Count, Exists, F, Func, OuterRef, Q, QuerySet, Subquery, UUIDField, Value
from django.db.models.functions import Coalesce, Concat, Substr
from django.utils import timezone

from billing.models import LedgerEntry
from billing.reconcile.findings import EXAMPLES, Check, Finding
from core.skips import item_guard
from generation.models import Job
from generation.services.finishing import results_refund
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


def _entries(kind: str, **filters):
    """How many entries of this kind refer to the job (0 when none): one probe of the ledger's
    reference index per job."""
    reference = Concat(Value("job:"), UUIDText(OuterRef("pk")), output_field=CharField())
    entries = LedgerEntry.objects.filter(kind=kind, reference=reference, **filters).order_by().values("reference")
    return Coalesce(Subquery(entries.annotate(n=Count("pk")).values("n")[:1]), Value(0))


def _finding(name: str, description: str, jobs: QuerySet[Job], **extra) -> Finding:
    count = jobs.count()
    examples = [
        {"job": str(job["id"]), "status": job["status"], "cost": job["cost"]}
        for job in jobs.order_by("created_at").values("id", "status", "cost")[:EXAMPLES]
    ] if count else []  # fmt: skip
    return Finding(name=name, description=description, count=count, examples=examples, **extra)


def finished_jobs_without_refund(*, since: datetime | None = None) -> Finding:
    # Owed: every result of a failed or canceled job, and the results a succeeded job did not
    # deliver (its last failed_outputs). A job on the house (cost 0, a staff re-run) was never
    # charged and is never refunded.
    owed = Q(status__in=[Status.FAILED, Status.CANCELED], refunds__lt=F("num_outputs")) | Q(
        status=Status.SUCCEEDED, failed_outputs__gt=0, refunds__lt=F("failed_outputs")
    )
    jobs = Job.objects.filter(
        Q(status__in=[Status.FAILED, Status.CANCELED]) | Q(status=Status.SUCCEEDED, failed_outputs__gt=0),
        cost__gt=0,
    )
    if since is not None:
        # job_fail and job_succeed stamp finished_at with the status; a final job without it was edited by hand.
        jobs = jobs.filter(finished_at__gte=since)
    jobs = jobs.annotate(refunds=_entries(LedgerEntry.Kind.REFUND)).filter(owed)

    def fix() -> int:
        repaired = 0
        for job in list(jobs.only("id", "status", "num_outputs", "failed_outputs")):
            failed = job.num_outputs if job.status != Status.SUCCEEDED else job.failed_outputs
            # Each result's refund by its key: those written already are replays. A job whose
            # refund is refused (no charge to refund) stops none of the others.
            with item_guard(loop="reconcile", item=f"refund of job {job.pk}"):
                results_refund(
                    job_id=job.pk, indexes=range(job.num_outputs - failed, job.num_outputs), count=job.num_outputs,
                    memo="Refund owed (reconcile)",
                )  # fmt: skip
                repaired += 1
        return repaired

    finding = _finding(
        "finished_jobs_without_refund", "Failed or canceled jobs that were not refunded, or results a job lost", jobs
    )
    finding.fix = fix if finding.count else None
    return finding


def succeeded_jobs_with_refund(*, since: datetime | None = None) -> Finding:
    # Staff may refund a succeeded job on purpose (a reported bad result); the system refunds only
    # the results a job did not deliver.
    jobs = Job.objects.filter(status=Status.SUCCEEDED)
    if since is not None:
        # Either side may be the new one: a job that succeeded since, or a refund written since.
        # Two indexed reads (an OR of the two would read every succeeded job).
        refunded = LedgerEntry.objects.filter(
            kind=LedgerEntry.Kind.REFUND, actor_type=LedgerEntry.Actor.SYSTEM, created_at__gte=since
        ).values(job_id=JobIdOf("reference"))
        found = {*jobs.filter(finished_at__gte=since).values_list("pk", flat=True)}
        found |= {*jobs.filter(pk__in=refunded).values_list("pk", flat=True)}
        jobs = Job.objects.filter(pk__in=found)
    jobs = jobs.annotate(system_refunds=_entries(LedgerEntry.Kind.REFUND, actor_type=LedgerEntry.Actor.SYSTEM)).filter(
        system_refunds__gt=F("failed_outputs")
    )
    return _finding(
        "succeeded_jobs_with_refund", "Succeeded jobs the system refunded for more than the results they lost", jobs
    )


def jobs_without_charge(*, since: datetime | None = None) -> Finding:
    # The charges are written in the job's own transaction: a job created since then is the change.
    # A job on the house (cost 0) has none.
    jobs = Job.objects.filter(cost__gt=0)
    if since is not None:
        jobs = jobs.filter(created_at__gte=since)
    jobs = jobs.annotate(charges=_entries(LedgerEntry.Kind.CHARGE)).exclude(charges=F("num_outputs"))
    return _finding("jobs_without_charge", "Jobs not charged once for each result they asked for", jobs)


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
