"""What every part of the job services shares: messages, errors, leases, provider retries and
cancels, database writes that survive a dropped connection, and how long models usually take."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone

from generation.models import Job
from generation.providers import Prediction, ProviderError, ProviderUnavailable, get_provider

logger = logging.getLogger("generation.services")


Status = Job.Status

T = TypeVar("T")

MAX_PROMPT_LENGTH = 2000

# Earlier than the job's start by this much, a prediction cannot be the job's (clock skew).
LOOKBACK = timedelta(seconds=60)

MESSAGE_BLOCKED = "The result was blocked by the model's safety filter. Your credits were refunded."

MESSAGE_TIMEOUT = "The model took too long to answer, so we stopped it. Your credits were refunded."

MESSAGE_UNAVAILABLE = (
    "The model's provider is having trouble right now. Your credits were refunded; please try again later."
)

MESSAGE_EXPIRED = "The result could not be downloaded from the provider. Your credits were refunded."

MESSAGE_UNREADABLE = "The model returned a file we could not read. Your credits were refunded."


def message_without_refund(message: str) -> str:
    """A failure message for a job that cost nothing (a staff re-run): no word of a refund."""
    message = message.replace(" Your credits were refunded; please", " Please")
    return message.replace(" Your credits were refunded.", "").strip()


def failure_message(provider_error: str) -> str:
    """What the person reads when the model itself failed, from what the provider said."""
    lowered = provider_error.lower()
    if "nsfw" in lowered or "safety" in lowered or "sensitive" in lowered:
        return MESSAGE_BLOCKED
    return "The model could not make this one. Your credits were refunded; try rewording the prompt."


class GenerationError(Exception):
    """A request we refuse, with a message for the person; nothing was charged."""


class GenerationPaused(GenerationError):
    """Staff turned generation off with the emergency switch."""


class JobTakenOver(Exception):
    """Another process finished the job (a webhook, the sweeper): stop quietly."""


def job_lease() -> timedelta:
    return timedelta(seconds=settings.JOB_LEASE_SECONDS)


def lease_renew(job: Job) -> None:
    # Also the check that nobody else finished the job meanwhile.
    if not Job.objects.filter(pk=job.pk, status=Status.RUNNING).update(lease_until=timezone.now() + job_lease()):
        raise JobTakenOver


def provider_call_with_retries(job: Job, call: Callable[[], T]) -> T:
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
            lease_renew(job)
            delay = min(delay * 2, 10.0)
    raise AssertionError("unreachable")


def prediction_cancel(*, job_id: uuid.UUID, provider: str, prediction_id: str, token: str) -> None:
    """Ask the provider to stop a prediction we no longer want. Best effort: a failure is
    logged, and the prediction ends by itself at the provider's own limit."""
    if not prediction_id:
        return
    try:
        get_provider(provider).cancel(prediction_id, token=token)
    except ProviderError as error:
        logger.warning("could not cancel prediction %s: %s", prediction_id, error, extra={"job_id": str(job_id)})


def job_prediction_cancel(job: Job) -> None:
    prediction_cancel(job_id=job.pk, provider=job.provider, prediction_id=job.prediction_id, token=job.provider_token)


def with_reconnect(write: Callable[[], T], *, attempts: int = 5) -> T:
    """A write that must land: a dropped database connection is reconnected and the write
    tried again, never turned into a failed job."""
    delay = 0.1
    for attempt in range(attempts):
        try:
            return write()
        except (OperationalError, InterfaceError):
            if attempt == attempts - 1:
                raise
            logger.warning("database connection lost; retrying in %.1fs", delay)
            connection.close()
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")


# --- How long a model usually takes, to decide whether a worker should wait for it -----------


def _speed_key(model_id: int) -> str:
    return f"generation:model-seconds:{model_id}"


def model_seconds_note(model_id: int, prediction: Prediction) -> None:
    """Remember how long this model's predictions take (a moving average, in the cache)."""
    seconds = prediction.metrics.get("total_time") or prediction.metrics.get("predict_time")
    if prediction.status != "succeeded" or not isinstance(seconds, int | float):
        return
    previous = cache.get(_speed_key(model_id))
    average = seconds if previous is None else 0.7 * previous + 0.3 * seconds
    cache.set(_speed_key(model_id), average, 24 * 3600)  # a lost race only blurs an estimate


def model_seconds_usual(model_id: int) -> float | None:
    return cache.get(_speed_key(model_id))
