"""What staff do to jobs from the admin: decide reports, refund, run again."""

from __future__ import annotations

import uuid

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from billing.services import credits_refund
from generation.models import Job, JobReport
from generation.services.common import GenerationError, Status
from generation.services.creating import _new_job
from generation.services.finishing import job_fail


def report_decide(*, report: JobReport, staff: User, refund: bool, note: str = "") -> bool:
    """Staff refund a reported job (once: the job's refund key) or dismiss the report."""
    with transaction.atomic():
        report = JobReport.objects.select_for_update().select_related("job").get(pk=report.pk)
        if report.status != JobReport.Status.OPEN:
            return False
        if refund:
            credits_refund(
                charge_key=report.job.charge_key, key=report.job.refund_key, actor=staff,
                memo="Refund for a reported result",
            )  # fmt: skip
        report.status = JobReport.Status.REFUNDED if refund else JobReport.Status.DISMISSED
        report.staff = staff
        report.staff_note = note[:500]
        report.decided_at = timezone.now()
        report.save()
    return True


def job_refund_by_staff(*, job: Job, staff: User, memo: str = "Refunded by staff") -> bool:
    """Refund a job's charge (once, whatever its status). False if it was refunded already."""
    from billing.models import LedgerEntry

    if LedgerEntry.objects.filter(idempotency_key=job.refund_key).exists():
        return False
    if job.can_cancel:
        return job_fail(job_id=job.pk, message="Canceled and refunded by our team.", status=Status.CANCELED)
    credits_refund(charge_key=job.charge_key, key=job.refund_key, actor=staff, memo=memo)
    return True


def job_rerun_by_staff(*, job: Job, staff: User) -> Job:
    """Run a finished job again for its owner without charging them twice.

    A failed or canceled job was refunded, so the new job is charged as usual; a succeeded one
    was paid for, so its re-run is given back with an adjustment. Clicking twice makes one."""
    from billing.services import credits_adjust

    if not job.is_final:
        raise GenerationError("The job is still running.")
    token = uuid.uuid5(uuid.NAMESPACE_URL, f"rerun:{job.pk}")
    existing = Job.objects.filter(user=job.user, form_token=token).first()
    if existing is not None:
        return existing
    with transaction.atomic():
        if job.status == Status.SUCCEEDED:  # credit first, so the charge below always fits
            credits_adjust(
                user=job.user, amount=job.model.credit_cost, staff=staff, key=f"adjust:rerun:{job.pk}",
                memo=f"Re-run of job {job.pk} on the house",
            )  # fmt: skip
        new_job = _new_job(
            user=job.user, model=job.model, prompt=job.prompt, aspect_ratio=job.aspect_ratio, seed=job.seed,
            style=job.style, source=job.source, form_token=token,
        )  # fmt: skip
    return new_job
