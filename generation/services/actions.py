"""What a person does to their own jobs: delete, cancel, share, report, favourite."""

from __future__ import annotations

import secrets

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from generation.gallery import gallery_changed
from generation.models import Job, JobOutput, JobReport, Upload
from generation.outputs import delete_files
from generation.services.common import GenerationError, Status, job_prediction_cancel
from generation.services.finishing import job_fail


def job_delete(*, job: Job) -> None:
    """Remove a finished job's files from the person's gallery; the row stays for the ledger."""
    if not job.is_final:
        raise GenerationError("A job can be deleted once it has finished.")
    outputs = list(JobOutput.objects.filter(job=job))
    names = [name for output in outputs for name in (output.file.name, output.thumbnail.name)]
    with transaction.atomic():
        JobOutput.objects.filter(job=job).delete()
        Job.objects.filter(pk=job.pk).update(deleted_at=timezone.now(), prompt="")
        # The photo it edited goes too, unless a job the person still keeps uses it.
        if job.source_id is not None:
            photos = (
                Upload.objects.filter(pk=job.source_id)
                .exclude(file="")
                .exclude(jobs__in=Job.objects.filter(source_id=job.source_id, deleted_at__isnull=True))
            )
            names += list(photos.values_list("file", flat=True))
            photos.update(file="")
        transaction.on_commit(lambda: gallery_changed(user_id=job.user_id))
    delete_files(names)  # storage I/O after the rows are gone, outside the transaction


def jobs_delete(*, user: User, job_ids: list) -> tuple[int, int]:
    """Delete several of the person's jobs, each through job_delete; someone else's id is
    skipped as if it did not exist. Returns (deleted, still running and kept)."""
    deleted = kept = 0
    for job in Job.objects.filter(user=user, deleted_at__isnull=True, pk__in=job_ids):
        try:
            job_delete(job=job)
        except GenerationError:
            kept += 1
        else:
            deleted += 1
    return deleted, kept


def job_favourite(*, job: Job, favourite: bool) -> None:
    """Mark or unmark one of the person's jobs as a favourite (a gallery filter)."""
    if Job.objects.filter(pk=job.pk, deleted_at__isnull=True).exclude(favourite=favourite).update(favourite=favourite):
        job.favourite = favourite
        gallery_changed(user_id=job.user_id)


def account_content_delete(*, user: User) -> None:
    """A deleted account's jobs keep their rows (the ledger refers to them) but lose their
    content: prompts, outputs and every photo uploaded. Called inside the deletion's
    transaction; the files go once it commits."""
    outputs = JobOutput.objects.filter(job__user=user)
    names = [name for pair in outputs.values_list("file", "thumbnail") for name in pair if name]
    outputs.delete()
    Job.objects.filter(user=user).update(prompt="", deleted_at=timezone.now())
    photos = Upload.objects.filter(user=user).exclude(file="")
    names += list(photos.values_list("file", flat=True))
    photos.update(file="")
    transaction.on_commit(lambda: delete_files(names))  # storage I/O once the rows are gone


def job_cancel(*, job: Job) -> None:
    """The person stops a queued or running job: refunded once, the prediction canceled."""
    if not job_fail(
        job_id=job.pk, message="You canceled this job. Your credits were refunded.", status=Status.CANCELED
    ):
        raise GenerationError("This job has already finished, so it cannot be canceled.")
    job.refresh_from_db(fields=["prediction_id", "provider_token", "status"])
    job_prediction_cancel(job)  # provider call after the transaction; a worker that raced us also checks


def job_share(*, job: Job) -> str | None:
    # The link's token; None only if an unshare of the same job won a race with this call.
    if job.status != Status.SUCCEEDED:
        raise GenerationError("Only a finished image or video can be shared.")
    if job.share_token:
        return job.share_token
    token = secrets.token_urlsafe(18)
    Job.objects.filter(pk=job.pk, share_token__isnull=True).update(share_token=token)
    job.refresh_from_db(fields=["share_token"])
    return job.share_token


def job_unshare(*, job: Job) -> None:
    Job.objects.filter(pk=job.pk).update(share_token=None)
    job.share_token = None


def job_report(*, user: User, job: Job, reason: str) -> JobReport:
    """The person flags a finished job as a bad result, once per job."""
    reason = reason.strip()
    if job.user_id != user.pk:
        raise GenerationError("That job is not yours.")
    if job.status != Status.SUCCEEDED:
        raise GenerationError("Only a finished result can be reported; failed jobs are refunded already.")
    if not reason:
        raise GenerationError("Tell us what is wrong with the result.")
    if "\x00" in reason:
        raise GenerationError("The reason contains a character we cannot store; type it again.")
    report, created = JobReport.objects.get_or_create(job=job, defaults={"reason": reason[:1000]})
    if not created:
        raise GenerationError("You already reported this result.")
    return report
