"""What staff do to jobs from the admin: decide reports, refund, cancel, run again.

Each writes its StaffAction (who, what, when, why) in the same transaction as the change, and
every ledger entry it writes names the staff member, never SYSTEM.
"""

from __future__ import annotations

import uuid

from django.db import transaction
from django.utils import timezone

from accounts.models import StaffAction, User
from accounts.services import staff_action_record
from billing.models import LedgerEntry
from billing.services import credits_adjust, credits_refund
from generation.models import Job, JobReport
from generation.services.common import GenerationError, Status, job_prediction_cancel
from generation.services.creating import job_insert
from generation.services.finishing import job_fail

Kind = StaffAction.Kind


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
        staff_action_record(
            staff=staff, kind=Kind.REPORT_REFUND if refund else Kind.REPORT_DISMISS, user=report.job.user_id,
            reference=f"job:{report.job_id}", reason=note, details={"report": report.pk, "reported": report.reason},
        )  # fmt: skip
    return True


def _stop_by_staff(*, job: Job, staff: User, reason: str, kind: str) -> bool:
    """Cancel a queued or running job in the staff member's name, then its prediction."""
    with transaction.atomic():
        stopped = job_fail(
            job_id=job.pk, message="Canceled by our team. Your credits were refunded.", status=Status.CANCELED,
            actor=staff, memo="Canceled and refunded by our team",
        )  # fmt: skip
        if stopped:
            staff_action_record(
                staff=staff, kind=kind, user=job.user_id, reference=f"job:{job.pk}", reason=reason,
                details={"status_before": job.status, "canceled": True}, key=f"staff:stop:{job.pk}",
            )  # fmt: skip
    if stopped:
        # The provider call comes after the commit; a worker that raced us checks the status too.
        job.refresh_from_db(fields=["prediction_id", "status"])
        job_prediction_cancel(job)
    return stopped


def job_cancel_by_staff(*, job: Job, staff: User, reason: str) -> bool:
    """Stop a queued or running job (refunded once, the prediction canceled). False if it had finished."""
    return _stop_by_staff(job=job, staff=staff, reason=reason, kind=Kind.JOB_CANCEL)


def job_refund_by_staff(*, job: Job, staff: User, reason: str = "") -> bool:
    """Refund a job's charge (once, whatever its status). False if it was refunded already.
    A job still queued or running is stopped first, at the provider too."""
    if LedgerEntry.objects.filter(idempotency_key=job.refund_key).exists():
        return False
    if job.can_cancel:
        if _stop_by_staff(job=job, staff=staff, reason=reason, kind=Kind.JOB_REFUND):
            return True
        # It finished meanwhile: a failure refunded it already; a success may still be refunded.
        job.refresh_from_db()
        if LedgerEntry.objects.filter(idempotency_key=job.refund_key).exists():
            return False
    with transaction.atomic():
        entry = credits_refund(charge_key=job.charge_key, key=job.refund_key, actor=staff, memo="Refunded by our team")
        staff_action_record(
            staff=staff, kind=Kind.JOB_REFUND, user=job.user_id, reference=f"job:{job.pk}", reason=reason,
            details={"status": job.status, "credits": entry.amount}, key=f"staff:{entry.idempotency_key}",
        )  # fmt: skip
    return True


def job_rerun_by_staff(*, job: Job, staff: User, reason: str = "") -> Job:
    """Run a finished job again for its owner without charging them twice.

    A failed or canceled job was refunded, so the new job is charged as usual; a succeeded one
    was paid for, so its re-run is given back with an adjustment. Clicking twice makes one."""
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
        new_job = job_insert(
            user=job.user, model=job.model, prompt=job.prompt, aspect_ratio=job.aspect_ratio, seed=job.seed_to_repeat,
            style=job.style, negative_prompt=job.negative_prompt, source=job.source, form_token=token,
        )  # fmt: skip
        staff_action_record(
            staff=staff, kind=Kind.JOB_RERUN, user=job.user_id, reference=f"job:{job.pk}", reason=reason,
            details={"new_job": str(new_job.pk), "on_the_house": job.status == Status.SUCCEEDED},
            key=f"staff:rerun:{job.pk}",
        )  # fmt: skip
    return new_job
