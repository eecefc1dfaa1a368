"""The worker's part: claim the job, create (or adopt) its prediction, and wait for it."""

from __future__ import annotations

import io
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from storages.backends.s3 import S3Storage

from generation.models import AIModel, Job, Upload
from generation.presets import styled_prompt
from generation.providers import Prediction, PredictionRequest, ProviderError, ProviderUnavailable, get_provider
from generation.services.common import (
    MESSAGE_TIMEOUT,
    MESSAGE_UNAVAILABLE,
    Status,
    _cancel_quietly,
    _DeadlinePassed,
    _JobTakenOver,
    _lease,
    _renew_lease,
    _with_retries,
)
from generation.services.finishing import _message_for_failure, job_fail, job_finish


def _claim(job_id: uuid.UUID) -> Job | None:
    """queued → running, or take over a running job whose worker's lease ran out."""
    job = Job.objects.select_related("model", "source").filter(pk=job_id).first()
    if job is None or job.is_final:
        return None
    now = timezone.now()
    claimed = (
        Job.objects.filter(pk=job_id)
        .filter(Q(status=Status.QUEUED) | Q(status=Status.RUNNING, lease_until__lt=now))
        .update(
            status=Status.RUNNING,
            started_at=Coalesce(F("started_at"), now),
            deadline_at=Coalesce(F("deadline_at"), now + timedelta(seconds=job.model.timeout_seconds)),
            lease_until=now + _lease(),
            attempts=F("attempts") + 1,
        )
    )
    if not claimed:
        return None
    job.refresh_from_db()
    return job


def _photo_for_provider(upload: Upload):
    # On S3 the provider fetches the photo through a short-lived signed URL; otherwise the
    # client sends the bytes itself (Replicate's client uploads a file object for us).
    if isinstance(default_storage, S3Storage):
        return default_storage.url(upload.file.name, expire=settings.PROVIDER_PHOTO_URL_EXPIRE)
    with default_storage.open(upload.file.name) as file:
        photo = io.BytesIO(file.read())
    photo.name = upload.file.name.rsplit("/", 1)[-1]
    return photo


def _request_for(job: Job) -> PredictionRequest:
    model = job.model
    provider_input = {
        **model.input_defaults,
        "prompt": styled_prompt(job.prompt, job.style),
        "aspect_ratio": model.aspect_ratios[job.aspect_ratio],
    }
    if job.seed is not None:
        provider_input["seed"] = job.seed
    if job.duration_seconds:
        provider_input["duration"] = job.duration_seconds
    if job.source_id:
        provider_input["input_image"] = _photo_for_provider(job.source)
    webhook_url = None
    if job.provider == AIModel.Provider.REPLICATE and settings.PUBLIC_BASE_URL:
        webhook_url = f"{settings.PUBLIC_BASE_URL}/webhooks/replicate/"
    return PredictionRequest(model_ref=job.provider_ref, input=provider_input, webhook_url=webhook_url)


def _create_prediction(job: Job, provider) -> Prediction:
    """Create the prediction, retrying transient trouble. A create that timed out may still
    have created one, so a retry first looks for it rather than paying for a second."""
    tried = False

    def attempt() -> Prediction:
        nonlocal tried
        if tried:
            found = provider.find(_request_for(job), since=job.started_at - timedelta(seconds=5))
            if found is not None:
                return found
        tried = True
        return provider.create(_request_for(job))

    return _with_retries(job, attempt)


def _wait(job: Job, prediction: Prediction | None) -> Prediction:
    provider = get_provider(job.provider)
    delay = settings.PROVIDER_POLL_INITIAL
    while prediction is None or not prediction.is_final:
        remaining = (job.deadline_at - timezone.now()).total_seconds()
        if remaining <= 0:
            raise _DeadlinePassed
        _renew_lease(job)
        time.sleep(min(delay, remaining))
        delay = min(delay * 1.5, settings.PROVIDER_POLL_MAX)
        prediction = _with_retries(job, lambda: provider.get(job.prediction_id))
    return prediction


def job_run(*, job_id: uuid.UUID) -> None:
    """The worker's part: claim, create or resume the prediction, wait, store, finish."""
    job = _claim(job_id)
    if job is None:
        return  # finished already, or another worker holds it
    provider = get_provider(job.provider)
    try:
        prediction = None
        if not job.prediction_id:
            if job.attempts > 1:
                # An earlier worker may have died right after creating the prediction.
                since = job.started_at - timedelta(seconds=5)
                prediction = _with_retries(job, lambda: provider.find(_request_for(job), since=since))
            if prediction is None:
                prediction = _create_prediction(job, provider)
            # Saved before any wait: a restarted worker resumes this prediction.
            Job.objects.filter(pk=job.pk, prediction_id="").update(prediction_id=prediction.id)
            job.prediction_id = prediction.id
            if not Job.objects.filter(pk=job.pk, status=Status.RUNNING).exists():
                _cancel_quietly(job)  # canceled by the person while we were creating it
                return
        prediction = _wait(job, prediction)
        job_finish(job=job, prediction=prediction)
    except _JobTakenOver:
        return
    except _DeadlinePassed:
        _cancel_quietly(job)
        job_fail(job_id=job.pk, message=MESSAGE_TIMEOUT, provider_error="deadline passed")
    except ProviderUnavailable as error:
        _cancel_quietly(job)
        job_fail(job_id=job.pk, message=MESSAGE_UNAVAILABLE, provider_error=str(error))
    except ProviderError as error:
        job_fail(job_id=job.pk, message=_message_for_failure(str(error)), provider_error=str(error))
