"""A job's outcome, decided once: outputs stored and the job succeeded, or failed and refunded.

`job_sync` is how a prediction's end reaches its job: the webhook's task and the poller's
enqueue it, and it finishes the job if the provider says the prediction is done."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime
from functools import partial

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from billing.models import LedgerEntry
from billing.services import credits_refund
from generation.gallery import gallery_changed
from generation.models import Job, JobOutput, job_charge_key, job_refund_key
from generation.notifications import notify_finished
from generation.outputs import StoredOutput, UnreadableOutput, delete_files, store_output
from generation.provenance import job_provenance
from generation.providers import OutputUnavailable, Prediction, ProviderError, ProviderUnavailable, get_provider
from generation.services.common import (
    MESSAGE_BLOCKED,
    MESSAGE_EXPIRED,
    MESSAGE_UNAVAILABLE,
    MESSAGE_UNREADABLE,
    Status,
    failure_message,
    message_without_refund,
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
    decided the job's outcome.

    A job of several results keeps those it could copy; each one missing (held back by a safety
    filter, gone, unreadable) is refunded on its own when the job succeeds, in the same
    transaction. Only a job with no result at all fails."""
    if prediction.status == "aborted":
        # Replicate could not start it before its deadline: the provider's trouble, not the prompt's.
        error = prediction.error or "prediction aborted before it started"
        return job_fail(
            job_id=job.pk,
            message=MESSAGE_UNAVAILABLE,
            provider_error=error,
            metrics=prediction.metrics,
            completed_at=prediction.completed_at,
        )
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
    # More than asked for is not paid for: only the first num_outputs are kept.
    urls = prediction.outputs[: job.num_outputs]
    stored: list[StoredOutput] = []
    problems: list[tuple[str, str]] = []  # (message for the person, error for staff), per lost result
    provenance = job_provenance(job)  # storage I/O: the picture it started from, read once
    for url in urls:
        try:
            data = provider_call_with_retries(job, partial(provider.fetch_output, url))
            stored.append(store_output(data, provenance=provenance))
        except (OutputUnavailable, ProviderUnavailable) as error:
            problems.append((MESSAGE_EXPIRED, str(error)))
        except UnreadableOutput as error:
            problems.append((MESSAGE_UNREADABLE, str(error)))
    held_back = job.num_outputs - len(urls)
    if not stored:
        lost, lost_error = problems[0] if problems else (MESSAGE_BLOCKED, "no output")
        return job_fail(
            job_id=job.pk,
            message=lost,
            provider_error=lost_error,
            metrics=prediction.metrics,
            completed_at=prediction.completed_at,
        )

    failed = job.num_outputs - len(stored)
    note = _lost_results_note(job=job, failed=failed, held_back=held_back) if failed else ""
    staff_note = [error for _, error in problems] + ([f"{held_back} not returned"] if held_back else [])
    succeeded = job_succeed(
        job_id=job.pk, user_id=job.user_id, outputs=stored, metrics=prediction.metrics, failed=failed,
        message=note, provider_error="; ".join(staff_note), completed_at=prediction.completed_at,
    )  # fmt: skip
    if succeeded:
        return True
    # Someone else finished it first; what we copied is not needed.
    delete_files([name for s in stored for name in (s.file_name, s.thumbnail_name)])
    return False


def _lost_results_note(*, job: Job, failed: int, held_back: int) -> str:
    noun = "video" if job.is_video else "image"
    credits = failed * job.unit_cost
    which = f"{failed} of {job.num_outputs} {noun}s"
    verb = "were" if failed > 1 else "was"
    reason = f"{verb} held back by the model's safety filter" if held_back == failed else "could not be saved"
    return f"{which} {reason}. {'Their' if failed > 1 else 'Its'} {credits:,} credits were refunded."


def job_succeed(
    *,
    job_id: uuid.UUID,
    user_id: int,
    outputs: list[StoredOutput],
    metrics: dict,
    failed: int = 0,
    message: str = "",
    provider_error: str = "",
    completed_at: datetime | None = None,
) -> bool:
    """Mark the job succeeded with its outputs, and refund each result it asked for and did not
    get (`failed`, the last ones), all in one transaction. False if it had finished already.
    `completed_at`: when the provider says the prediction ended (how long finishing took)."""
    with transaction.atomic():
        fields = {"status": Status.SUCCEEDED, "finished_at": timezone.now(), "lease_until": None}
        fields |= {"metrics": metrics or {}, "failed_outputs": failed, "prediction_completed_at": completed_at}
        if message:
            fields |= {"error_message": message[:500], "provider_error": provider_error}
        updated = Job.objects.filter(pk=job_id, status=Status.RUNNING).update(**fields)
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
            count, cost = Job.objects.values_list("num_outputs", "cost").get(pk=job_id)
            if failed and cost:  # a job on the house (cost 0) was never charged
                results_refund(job_id=job_id, indexes=range(count - failed, count), count=count, memo="Not delivered")
    if updated:
        logger.info("job succeeded", extra={"job_id": str(job_id), "failed_outputs": failed})
        _after_final(job_id)
        transaction.on_commit(lambda: gallery_changed(user_id=user_id))
    return bool(updated)


def results_refund(
    *, job_id: uuid.UUID, indexes: Iterable[int], count: int, memo: str, actor: User | None = None
) -> list[LedgerEntry]:
    """Refund these results of a job, each its own charge given back once (a result refunded
    before is a replay: nothing changes). Returns the refunds, old and new."""
    refunds = []
    for index in indexes:
        label = memo if count == 1 else f"{memo} · result {index + 1} of {count}"
        refunds.append(
            credits_refund(
                charge_key=job_charge_key(job_id, index), key=job_refund_key(job_id, index), memo=label, actor=actor
            )
        )
    return refunds


def results_not_refunded(job: Job) -> list[int]:
    """The indexes of a job's results whose charge has not been given back."""
    keys = {job_refund_key(job.pk, index): index for index in range(job.num_outputs)}
    refunded = set(LedgerEntry.objects.filter(idempotency_key__in=keys).values_list("idempotency_key", flat=True))
    return [index for key, index in keys.items() if key not in refunded]


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
    """Fail (or cancel) a job that has not finished, and refund each of its results in the
    same transaction. Returns False when the job had already finished: nothing changes then.
    `actor` is the staff member who stopped it: the refunds are written in their name."""
    # A job on the house (a staff re-run, cost 0) was never charged: nothing to give back, and
    # its message says nothing of a refund.
    charged = bool(Job.objects.filter(pk=job_id).values_list("cost", flat=True).first())
    if not charged:
        message = message_without_refund(message)
    with transaction.atomic():
        fields = {
            "status": status,
            "finished_at": timezone.now(),
            "lease_until": None,
            "error_message": message[:500],
            "provider_error": provider_error,
            "failed_outputs": F("num_outputs"),
        }
        if metrics:
            fields["metrics"] = metrics
        if completed_at:
            fields["prediction_completed_at"] = completed_at
        updated = Job.objects.filter(pk=job_id, status__in=[Status.QUEUED, Status.RUNNING]).update(**fields)
        if updated and charged:
            # The row is ours until the transaction ends: its number of results is settled.
            count = Job.objects.values_list("num_outputs", flat=True).get(pk=job_id)
            results_refund(
                job_id=job_id, indexes=range(count), count=count, memo=memo or status.capitalize(), actor=actor
            )
    if updated:
        logger.info("job %s", status, extra={"job_id": str(job_id), "error": provider_error[:200]})
        _after_final(job_id)
    return bool(updated)


def _after_final(job_id: uuid.UUID) -> None:
    transaction.on_commit(lambda: notify_finished(job_id))
