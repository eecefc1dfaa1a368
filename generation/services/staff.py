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
from billing.services import OwnAccountRefused
from generation.models import Job, JobReport
from generation.services.common import GenerationError, Status, job_prediction_cancel
from generation.services.creating import job_insert
from generation.services.finishing import job_fail, results_not_refunded, results_refund

Kind = StaffAction.Kind


def refuse_own_job(*, job: Job, staff: User, what: str, reason: str) -> None:
    """Nobody gives credits to themselves: refunding or running again one's own job is refused
    and the attempt recorded, as adjusting one's own balance is (billing.services.credits_adjust)."""
    if staff.pk != job.user_id:
        return
    staff_action_record(
        staff=staff, kind=Kind.REFUSED, user=job.user_id, reference=f"job:{job.pk}", reason=reason,
        details={"refused": f"{what} of their own job"},
    )  # fmt: skip
    raise OwnAccountRefused(f"You cannot {what} your own job: ask another staff member. The attempt was recorded.")


def report_decide(*, report: JobReport, staff: User, refund: bool, note: str = "") -> bool:
    """Staff refund a reported job (each result not refunded yet, once: its refund key) or
    dismiss the report."""
    if refund:  # before the transaction, so the refused attempt stays recorded
        refuse_own_job(job=report.job, staff=staff, what="refund", reason=note)
    with transaction.atomic():
        report = JobReport.objects.select_for_update().select_related("job").get(pk=report.pk)
        if report.status != JobReport.Status.OPEN:
            return False
        if refund and not report.job.cost:
            raise GenerationError(
                f"Job {report.job_id} was run again on the house: nothing was charged, so there is nothing to "
                "refund. Dismiss the report, or run it again."
            )
        if refund:
            job = report.job
            results_refund(
                job_id=job.pk, indexes=results_not_refunded(job), count=job.num_outputs, actor=staff,
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
    """Refund what a job's results were charged (each result once, whatever its status): the
    rest, after results that failed on their own were refunded. False if nothing was left to
    refund. A job still queued or running is stopped first, at the provider too."""
    if not results_not_refunded(job):
        return False
    if not job.cost:
        return False  # on the house (a staff re-run): nothing was charged, nothing to give back
    refuse_own_job(job=job, staff=staff, what="refund", reason=reason)
    if job.can_cancel:
        if _stop_by_staff(job=job, staff=staff, reason=reason, kind=Kind.JOB_REFUND):
            return True
        # It finished meanwhile: a failure refunded it already; a success may still be refunded.
        job.refresh_from_db()
    owed = results_not_refunded(job)
    if not owed:
        return False
    with transaction.atomic():
        entries = results_refund(
            job_id=job.pk, indexes=owed, count=job.num_outputs, actor=staff, memo="Refunded by our team"
        )
        # Keyed by the first refund: a replay of the same staff refund records nothing more.
        staff_action_record(
            staff=staff, kind=Kind.JOB_REFUND, user=job.user_id, reference=f"job:{job.pk}", reason=reason,
            details={"status": job.status, "credits": sum(entry.amount for entry in entries), "results": owed},
            key=f"staff:{entries[0].idempotency_key}",
        )  # fmt: skip
    return True


def job_rerun_by_staff(*, job: Job, staff: User, reason: str = "") -> Job:
    """Run a finished job again for its owner, on the house: the new job costs nothing, so no
    credit moves now or later (it has no charge, so failing or canceling it refunds nothing).
    Support may do this and cannot move money. Clicking twice makes one."""
    if not job.is_final:
        raise GenerationError("The job is still running.")
    refuse_own_job(job=job, staff=staff, what="run again", reason=reason)
    token = uuid.uuid5(uuid.NAMESPACE_URL, f"rerun:{job.pk}")
    existing = Job.objects.filter(user=job.user, form_token=token).first()
    if existing is not None:
        return existing
    with transaction.atomic():
        new_job = job_insert(
            user=job.user, model=job.model, prompt=job.prompt, aspect_ratio=job.aspect_ratio, seed=job.seed_to_repeat,
            style=job.style, negative_prompt=job.negative_prompt, source=job.source,
            source_output_id=job.source_output_id, num_outputs=job.num_outputs, form_token=token, on_the_house=True,
        )  # fmt: skip
        staff_action_record(
            staff=staff, kind=Kind.JOB_RERUN, user=job.user_id, reference=f"job:{job.pk}", reason=reason,
            details={"new_job": str(new_job.pk), "on_the_house": True}, key=f"staff:rerun:{job.pk}",
        )  # fmt: skip
    return new_job
