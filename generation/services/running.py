"""The worker's part: claim the job, create (or find) its prediction, record it, give the worker back.

No worker slot is held while a provider computes. The task creates the prediction (asking the
provider to hold the answer a few seconds only for models that usually finish by then), records
its id and the token that made it, and returns. Completion arrives by the signed webhook, or,
when no webhook can reach us (no PUBLIC_BASE_URL), by the poller (services/polling.py).

The job's own id travels with its prediction (generation.providers.replicate.JOB_INPUT_KEY), so
after any interruption between the create call and saving the id, the next attempt finds
exactly its own prediction: never a second one paid for, never another job's adopted.
"""

from __future__ import annotations

import io
import logging
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.links import absolute_url
from core.storages import storage_is_s3
from generation.models import AIModel, Job, Upload
from generation.presets import styled_prompt
from generation.providers import (
    Prediction,
    PredictionRequest,
    Provider,
    ProviderError,
    ProviderUnavailable,
    get_provider,
)
from generation.services.common import (
    LOOKBACK,
    MESSAGE_TIMEOUT,
    MESSAGE_UNAVAILABLE,
    JobTakenOver,
    Status,
    failure_message,
    job_lease,
    job_prediction_cancel,
    model_seconds_note,
    model_seconds_usual,
    provider_call_with_retries,
    with_reconnect,
)
from generation.services.finishing import job_fail, job_finish
from generation.services.polling import poller_kick
from generation.uploads import UploadRejected, upload_clean

logger = logging.getLogger("generation.services")


class _LookLater(Exception):
    """The provider could not say whether the job's prediction exists: ask again later."""


def job_claim(job_id: uuid.UUID) -> Job | None:
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
            lease_until=now + job_lease(),
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
    if storage_is_s3(default_storage):
        return default_storage.url(upload.file.name, expire=settings.PROVIDER_PHOTO_URL_EXPIRE)
    with default_storage.open(upload.file.name) as file:
        photo = io.BytesIO(file.read())
    photo.name = upload.file.name.rsplit("/", 1)[-1]
    return photo


def prediction_request_for(job: Job, *, wait: int = 0) -> PredictionRequest:
    model = job.model
    provider_input = {**model.input_defaults, "prompt": styled_prompt(job.prompt, job.style, job.kind)}
    # An empty value: the model keeps the picture's own shape and takes no ratio.
    if ratio := model.aspect_ratios.get(job.aspect_ratio):
        provider_input["aspect_ratio"] = ratio
    if job.seed is not None:
        provider_input["seed"] = job.seed
    if job.num_outputs > 1:
        provider_input["num_outputs"] = job.num_outputs
    if job.negative_prompt and model.negative_prompt_input:
        provider_input[model.negative_prompt_input] = job.negative_prompt
    if job.duration_seconds:
        provider_input["duration"] = job.duration_seconds
    if job.upscale_factor:
        provider_input["scale"] = job.upscale_factor
    if job.source is not None:
        provider_input[model.image_input or "input_image"] = _photo_for_provider(job.source)
    webhook_url = None
    if job.provider == AIModel.Provider.REPLICATE and settings.PUBLIC_BASE_URL:
        # The job's id rides along here too: the webhook names its job even if the worker
        # never saved the prediction id (the input's copy is what is trusted).
        webhook_url = absolute_url(f"/webhooks/replicate/?job={job.pk}")
    return PredictionRequest(
        model_ref=job.provider_ref, input=provider_input, webhook_url=webhook_url, job_id=str(job.pk), wait=wait
    )


def _lookup_request(job: Job) -> PredictionRequest:
    # What a lookup needs: the job's id (no photo read from storage for it).
    return PredictionRequest(model_ref=job.provider_ref, input={}, job_id=str(job.pk))


def prediction_create_wait(job: Job, provider: Provider) -> int:
    """Seconds the create call may hold the worker for the answer. Worth it only for a model
    known to finish within the wait; an unknown or slow model gets its worker back at once (a
    video would otherwise hold it for nothing)."""
    wait = int(getattr(provider, "create_wait", 0) or 0)
    usual = model_seconds_usual(job.model_id)
    return wait if wait and usual is not None and usual <= wait * 0.8 else 0


# --- Creating or finding the prediction ------------------------------------------------------


def _find_own(job: Job, provider: Provider) -> Prediction | None:
    """The job's own prediction, made by an earlier, interrupted attempt. None only when the
    provider says there is none; trouble looking (404 list, 5xx, timeouts) raises _LookLater."""
    assert job.started_at is not None  # set when the job was claimed
    since = job.started_at - LOOKBACK
    try:
        return provider_call_with_retries(
            job, lambda: provider.find(_lookup_request(job), since=since, token=job.provider_token)
        )
    except ProviderError as error:
        logger.warning("could not look for the job's prediction: %s", error, extra={"job_id": str(job.pk)})
        raise _LookLater from error


def _prediction_id_save(job: Job, prediction: Prediction) -> None:
    def save() -> int:
        return Job.objects.filter(pk=job.pk, prediction_id="").update(prediction_id=prediction.id)

    try:
        with_reconnect(save)
    except IntegrityError:
        # Another job holds this prediction id: impossible with the job's id in the input,
        # and the unique constraint keeps it so.
        raise ProviderError(f"prediction {prediction.id} already belongs to another job") from None
    job.prediction_id = prediction.id


def _create(job: Job, provider: Provider) -> Prediction:
    """Create the prediction, retrying transient trouble. A create that may have reached the
    provider (a timeout, a 5xx) is looked for before another is made."""
    token = job.provider_token or provider.token_for_new()
    if token and not job.provider_token:  # the local renderer has no tokens
        # Saved before the call: after any interruption the next attempt knows a create may
        # have happened, and with which token's account to look for it.
        with_reconnect(lambda: Job.objects.filter(pk=job.pk).update(provider_token=token))
        job.provider_token = token
    request = prediction_request_for(job, wait=prediction_create_wait(job, provider))
    uncertain = False

    def attempt() -> Prediction:
        nonlocal uncertain
        if uncertain:
            assert job.started_at is not None  # set when the job was claimed
            found = provider.find(request, since=job.started_at - LOOKBACK, token=job.provider_token)
            if found is not None:
                return found
        try:
            return provider.create(request, token=job.provider_token)
        except ProviderUnavailable as error:
            uncertain = uncertain or getattr(error, "maybe_created", True)
            raise

    try:
        return provider_call_with_retries(job, attempt)
    except ProviderUnavailable:
        if uncertain:
            raise _LookLater from None  # it may exist: never fail a job whose prediction may run
        raise


def job_ask_provider(*, job: Job) -> Prediction | None:
    """The job's prediction as the provider sees it now, known by id or found by the job's id
    (and then recorded); None if there is none or the provider cannot say."""
    provider = get_provider(job.provider)
    if job.prediction_id:
        try:
            return provider.get(job.prediction_id, token=job.provider_token)
        except ProviderError as error:
            logger.warning("could not ask about %s: %s", job.prediction_id, error, extra={"job_id": str(job.pk)})
            return None
    if job.provider_token:
        assert job.started_at is not None  # a token is saved only after the job was claimed
        try:
            found = provider.find(_lookup_request(job), since=job.started_at - LOOKBACK, token=job.provider_token)
        except ProviderError:
            return None
        if found is not None:
            _prediction_id_save(job, found)
        return found
    return None


def job_adopt_prediction(*, job_id: uuid.UUID, prediction: Prediction) -> bool:
    """A webhook names its job (in its URL); the job takes the prediction only if it has none
    yet and the prediction's own input says it is this job's (the URL is not signed)."""
    if prediction.job_id != str(job_id):
        return False
    try:
        with transaction.atomic():  # a savepoint: the webhook's own transaction survives a clash
            adopted = Job.objects.filter(pk=job_id, status=Status.RUNNING, prediction_id="").update(
                prediction_id=prediction.id
            )
    except IntegrityError:
        return False
    if adopted:
        logger.info("adopted prediction %s from its webhook", prediction.id, extra={"job_id": str(job_id)})
    return bool(adopted)


def _hand_off(job: Job) -> None:
    # The webhook, the poller or (at the deadline) the sweeper finishes it; no worker waits.
    # The lease runs to the deadline, so a second delivery of the task does not claim it.
    assert job.deadline_at is not None  # set when the job was claimed
    lease_until = job.deadline_at + timedelta(seconds=settings.JOB_SWEEP_GRACE_SECONDS)
    with_reconnect(lambda: Job.objects.filter(pk=job.pk, status=Status.RUNNING).update(lease_until=lease_until))
    if not settings.PUBLIC_BASE_URL:
        poller_kick()


def _look_later(job: Job) -> None:
    # Released soon, so the sweeper's next round runs the job again and it looks once more;
    # at the deadline the sweeper asks a last time and fails it if nothing is found.
    with_reconnect(
        lambda: Job.objects.filter(pk=job.pk, status=Status.RUNNING).update(
            lease_until=timezone.now() + timedelta(seconds=settings.JOB_LOOK_AGAIN_SECONDS)
        )
    )


def job_run(*, job_id: uuid.UUID) -> None:
    """The worker's part: claim, create or find the prediction, record it, hand it off.

    A database connection lost on the way is not the job's failure: the job is given back
    and the run is tried again (the prediction, if one was made, is found by the job's id)."""
    delay = 0.2
    for attempt in range(3):
        try:
            job = with_reconnect(lambda: job_claim(job_id))
            if job is not None:  # None: finished already, or another worker holds it
                _run_claimed(job)
            return
        except (OperationalError, InterfaceError):
            connection.close()
            if attempt == 2:
                raise
            logger.warning(
                "database connection lost while running the job; trying again", extra={"job_id": str(job_id)}
            )
            time.sleep(delay)
            delay *= 4


def _run_claimed(job: Job) -> None:
    """Everything after the claim. Should the database connection drop before the job is
    handed off, the job is given back at once (its lease ends now) and the error raised, so
    the next attempt, or the sweeper's, takes it over."""
    try:
        _run_to_hand_off(job)
    except (OperationalError, InterfaceError):
        connection.close()
        with_reconnect(lambda: Job.objects.filter(pk=job.pk, status=Status.RUNNING).update(lease_until=timezone.now()))
        raise


def _photo_ready(job: Job) -> bool:
    """The person's photo decoded and written again without metadata, before anything of it is
    sent, shown or shared; False (and the job failed and refunded) when it cannot be."""
    if job.source is None or not job.source.needs_cleaning:
        return True
    try:
        job.source = upload_clean(upload=job.source)
    except UploadRejected as rejected:
        job_fail(job_id=job.pk, message=f"{rejected} Your credits were refunded.", provider_error=f"photo: {rejected}")
        return False
    return True


def _run_to_hand_off(job: Job) -> None:
    assert job.deadline_at is not None  # _claim sets it
    if not _photo_ready(job):
        return
    provider = get_provider(job.provider)
    prediction: Prediction | None
    try:
        if job.prediction_id and provider.draws_in_create:
            # A preview render whose worker died: nothing runs elsewhere and nothing was paid,
            # so it is simply drawn again (asking would only say "interrupted").
            redrawn = _create(job, provider)
            with_reconnect(lambda: Job.objects.filter(pk=job.pk).update(prediction_id=redrawn.id))
            job.prediction_id, prediction = redrawn.id, redrawn
        elif job.prediction_id:
            prediction = job_ask_provider(job=job)  # a takeover: ask before anything else
        else:
            prediction = _find_own(job, provider) if job.provider_token else None
            if prediction is None and timezone.now() >= job.deadline_at:
                # Taken over past the deadline and nothing was made: too late to start one.
                job_fail(job_id=job.pk, message=MESSAGE_TIMEOUT, provider_error="deadline passed before a prediction")
                return
            if prediction is None:
                prediction = _create(job, provider)
            _prediction_id_save(job, prediction)
            if not Job.objects.filter(pk=job.pk, status=Status.RUNNING).exists():
                job_prediction_cancel(job)  # canceled by the person while we were creating it
                return
        if prediction is not None and prediction.is_final:
            model_seconds_note(job.model_id, prediction)
            job_finish(job=job, prediction=prediction)
        elif timezone.now() >= job.deadline_at:
            # Taken over past the deadline: the provider was asked above and it is not done.
            job_prediction_cancel(job)
            job_fail(job_id=job.pk, message=MESSAGE_TIMEOUT, provider_error="deadline passed")
        else:
            _hand_off(job)
    except JobTakenOver:
        return
    except _LookLater:
        _look_later(job)
    except ProviderUnavailable as error:
        job_fail(job_id=job.pk, message=MESSAGE_UNAVAILABLE, provider_error=str(error))
    except ProviderError as error:
        job_fail(job_id=job.pk, message=failure_message(str(error)), provider_error=str(error))
