"""What every part of the job services shares: messages, errors, leases and provider retries."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from django.conf import settings
from django.utils import timezone

from generation.models import Job
from generation.providers import ProviderError, ProviderUnavailable, get_provider

logger = logging.getLogger("generation.services")


Status = Job.Status

T = TypeVar("T")

MAX_PROMPT_LENGTH = 2000

MESSAGE_BLOCKED = "The result was blocked by the model's safety filter. Your credits were refunded."

MESSAGE_TIMEOUT = "The model took too long to answer, so we stopped it. Your credits were refunded."

MESSAGE_UNAVAILABLE = (
    "The model's provider is having trouble right now. Your credits were refunded; please try again later."
)

MESSAGE_EXPIRED = "The result could not be downloaded from the provider. Your credits were refunded."

MESSAGE_UNREADABLE = "The model returned a file we could not read. Your credits were refunded."


class GenerationError(Exception):
    """A request we refuse, with a message for the person; nothing was charged."""


class GenerationPaused(GenerationError):
    """Staff turned generation off with the emergency switch."""


class _JobTakenOver(Exception):
    """Another process finished the job (a webhook, the sweeper): stop quietly."""


def _enqueue_run(job_id: uuid.UUID) -> bool:
    """Hand the job's run task to the queue; False if the queue could not take it.

    A queue that is down is not the person's problem: their job is committed and charged, so
    it stays queued and the sweeper sends it again once its `last_enqueued_at` is old enough.
    Whatever the broker raises (Redis, or the database for the ORM broker) is caught here."""
    from generation.tasks import enqueue_run

    try:
        enqueue_run(job_id)
    except Exception:
        logger.exception(
            "could not enqueue job %s; the sweeper will send it again", job_id, extra={"job_id": str(job_id)}
        )
        return False
    return True


def _lease() -> timedelta:
    return timedelta(seconds=settings.JOB_LEASE_SECONDS)


def _renew_lease(job: Job) -> None:
    # Also the check that nobody else finished the job meanwhile.
    if not Job.objects.filter(pk=job.pk, status=Status.RUNNING).update(lease_until=timezone.now() + _lease()):
        raise _JobTakenOver


def _with_retries(job: Job, call: Callable[[], T]) -> T:
    """Call the provider; on transient trouble wait with backoff and try again."""
    delay = settings.PROVIDER_RETRY_BASE_DELAY
    for attempt in range(settings.PROVIDER_MAX_RETRIES + 1):
        try:
            return call()
        except ProviderUnavailable as error:
            assert job.deadline_at is not None  # only running jobs call the provider: claimed, so set
            remaining = (job.deadline_at - timezone.now()).total_seconds()
            if attempt == settings.PROVIDER_MAX_RETRIES or remaining <= delay:
                raise
            logger.warning("provider trouble, retrying in %.1fs: %s", delay, error, extra={"job_id": str(job.id)})
            time.sleep(delay)
            _renew_lease(job)
            delay = min(delay * 2, 10.0)
    raise AssertionError("unreachable")


def _cancel_quietly(job: Job) -> None:
    if not job.prediction_id:
        return
    try:
        get_provider(job.provider).cancel(job.prediction_id, token=job.provider_token)
    except ProviderError as error:
        logger.warning("could not cancel prediction %s: %s", job.prediction_id, error, extra={"job_id": str(job.id)})
