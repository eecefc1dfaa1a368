"""A job's outcome, decided once: outputs stored and the job succeeded, or failed and refunded.

`job_sync` is how a prediction's end reaches its job: the webhook's task and the poller's
enqueue it, and it finishes the job if the provider says the prediction is done."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from functools import partial

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from billing.services import credits_refund
from generation.gallery import gallery_changed
from generation.models import Job, JobOutput, job_charge_key, job_refund_key
from generation.notifications import notify_finished
from generation.outputs import StoredOutput, UnreadableOutput, delete_files, store_output
from generation.providers import OutputUnavailable, Prediction, ProviderError, ProviderUnavailable, get_provider
from generation.services.common import (
    MESSAGE_BLOCKED,
    MESSAGE_EXPIRED,
    MESSAGE_UNREADABLE,
    Status,
    failure_message,
    model_seconds_note,
    provider_call_with_retries,
)

logger = logging.getLogger("generation.services")


def job_sync(*, job_id: uuid.UUID) -> None:
    """Look at the job's prediction and finish the job if it is done (the webhook's and the
    poller's path)."""
    job = Job.objects.select_related("model").filter(pk=job_id, status=Status.RUNNING).exclude(prediction_id="").first()
    if job is None:
        return
    try:
        prediction = get_provider(job.provider).get(job.prediction_id, token=job.provider_token)
    except ProviderError as error:
        logger.warning("sync of %s failed: %s", job.pk, error, extra={"job_id": str(job.pk)})
        return
    if prediction.is_final:
        model_seconds_note(job.model_id, prediction)
        job_finish(job=job, prediction=prediction)


def job_finish(*, job: Job, prediction: Prediction) -> bool:
    """Act on a final prediction: keep its outputs, or fail and refund. True if this call
    decided the job's outcome."""
    if prediction.status != "succeeded":
        error = prediction.error or f"prediction {prediction.status}"
        return job_fail(
            job_id=job.pk,
            message=failure_message(error),
            provider_error=error,
            metrics=prediction.metrics,
            completed_at=prediction.completed_at,
        )
    if not prediction.outputs:
        # What a safety filter returns: success with nothing in it.
        return job_fail(
            job_id=job.pk,
            message=MESSAGE_BLOCKED,
            provider_error="empty output",
            metrics=prediction.metrics,
            completed_at=prediction.completed_at,
        )

    provider = get_provider(job.provider)
    stored: list[StoredOutput] = []
    try:
        for url in prediction.outputs:
            data = provider_call_with_retries(job, partial(provider.fetch_output, url))
            stored.append(store_output(data))
    except (OutputUnavailable, ProviderUnavailable) as error:
        delete_files([name for s in stored for name in (s.file_name, s.thumbnail_name)])
        return job_fail(
            job_id=job.pk,
            message=MESSAGE_EXPIRED,
            provider_error=str(error),
            metrics=prediction.metrics,
            completed_at=prediction.completed_at,
        )
    except UnreadableOutput as error:
        delete_files([name for s in stored for name in (s.file_name, s.thumbnail_name)])
        return job_fail(
            job_id=job.pk,
            message=MESSAGE_UNREADABLE,
            provider_error=str(error),
            metrics=prediction.metrics,
            completed_at=prediction.completed_at,
        )

    succeeded = job_succeed(
        job_id=job.pk,
        user_id=job.user_id,
        outputs=stored,
        metrics=prediction.metrics,
        completed_at=prediction.completed_at,
    )
    if succeeded:
        return True
    # Someone else finished it first; what we copied is not needed.
    delete_files([name for s in stored for name in (s.file_name, s.thumbnail_name)])
    return False


def job_succeed(
    *,
    job_id: uuid.UUID,
    user_id: int,
    outputs: list[StoredOutput],
    metrics: dict,
    completed_at: datetime | None = None,
) -> bool:
    with transaction.atomic():
        updated = Job.objects.filter(pk=job_id, status=Status.RUNNING).update(
            status=Status.SUCCEEDED,
            finished_at=timezone.now(),
            lease_until=None,
            metrics=metrics or {},
            prediction_completed_at=completed_at,
        )
        if updated:
            JobOutput.objects.bulk_create(
                JobOutput(
                    job_id=job_id,
                    index=index,
                    file=output.file_name,
                    thumbnail=output.thumbnail_name,
                    content_type=output.content_type,
                    size=output.size,
                    width=output.width,
                    height=output.height,
                )
                for index, output in enumerate(outputs)
            )
    if updated:
        logger.info("job succeeded", extra={"job_id": str(job_id)})
        _after_final(job_id)
        transaction.on_commit(lambda: gallery_changed(user_id=user_id))
    return bool(updated)


def job_fail(
    *,
    job_id: uuid.UUID,
    message: str,
    provider_error: str = "",
    metrics: dict | None = None,
    completed_at: datetime | None = None,
    status: str = Status.FAILED,
    actor: User | None = None,
    memo: str = "",
) -> bool:
    """Fail (or cancel) a job that has not finished, and refund its charge in the same
    transaction. Returns False when the job had already finished: nothing changes then.
    `actor` is the staff member who stopped it: the refund is written in their name."""
    with transaction.atomic():
        fields = {
            "status": status,
            "finished_at": timezone.now(),
            "lease_until": None,
            "error_message": message[:500],
            "provider_error": provider_error,
        }
        if metrics:
            fields["metrics"] = metrics
        if completed_at:
            fields["prediction_completed_at"] = completed_at
        updated = Job.objects.filter(pk=job_id, status__in=[Status.QUEUED, Status.RUNNING]).update(**fields)
        if updated:
            credits_refund(
                charge_key=job_charge_key(job_id),
                key=job_refund_key(job_id),
                memo=memo or status.capitalize(),
                actor=actor,
            )
    if updated:
        logger.info("job %s", status, extra={"job_id": str(job_id), "error": provider_error[:200]})
        _after_final(job_id)
    return bool(updated)


def _after_final(job_id: uuid.UUID) -> None:
    transaction.on_commit(lambda: notify_finished(job_id))
