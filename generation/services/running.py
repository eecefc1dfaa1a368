"""The worker's part: claim the job, create (or find) its prediction, record it, give the worker back.

No worker slot is held while a provider computes. The task creates the prediction (asking the
provider to hold the answer a few seconds only for models that usually finish by then), records
its id and the token that made it, and returns. Completion arrives by the signed webhook, or,
when no webhook can reach us (no PUBLIC_BASE_URL), by the poller below, which checks every
running prediction about once a second in a few list calls and enqueues the finishing of
those that are done.

The job's own id travels with its prediction (generation.providers.replicate.JOB_INPUT_KEY), so
after any interruption between the create call and saving the id, the next attempt finds
exactly its own prediction: never a second one paid for, never another job's adopted.
"""

from __future__ import annotations

import io
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from dreampixel.links import absolute_url
from dreampixel.storages import storage_is_s3
from generation.models import AIModel, Job, PredictionPoller, Upload
from generation.presets import styled_prompt
from generation.providers import (
    Prediction,
    PredictionRequest,
    ProviderError,
    ProviderUnavailable,
    get_provider,
)
from generation.services.common import (
    MESSAGE_TIMEOUT,
    MESSAGE_UNAVAILABLE,
    Status,
    _cancel_quietly,
    _JobTakenOver,
    _lease,
    _with_retries,
)
from generation.services.finishing import _message_for_failure, job_fail, job_finish

logger = logging.getLogger("generation.services")
T = TypeVar("T")

POLLER = "replicate"
# Earlier than the job's start by this much, a prediction cannot be the job's (clock skew).
LOOKBACK = timedelta(seconds=60)


class _LookLater(Exception):
    """The provider could not say whether the job's prediction exists: ask again later."""


# --- Small helpers -------------------------------------------------------------------------


def _db(call: Callable[[], T], *, attempts: int = 5) -> T:
    """A write that must land: a dropped database connection is reconnected and retried,
    never turned into a failed job."""
    delay = 0.1
    for attempt in range(attempts):
        try:
            return call()
        except (OperationalError, InterfaceError):
            if attempt == attempts - 1:
                raise
            logger.warning("database connection lost; retrying in %.1fs", delay)
            connection.close()
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")


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
    if storage_is_s3(default_storage):
        return default_storage.url(upload.file.name, expire=settings.PROVIDER_PHOTO_URL_EXPIRE)
    with default_storage.open(upload.file.name) as file:
        photo = io.BytesIO(file.read())
    photo.name = upload.file.name.rsplit("/", 1)[-1]
    return photo


def _request_for(job: Job, *, wait: int = 0) -> PredictionRequest:
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
    if job.source is not None:
        provider_input["input_image"] = _photo_for_provider(job.source)
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


# --- How long a model usually takes, to decide whether to wait for it ------------------------


def _speed_key(model_id: int) -> str:
    return f"generation:model-seconds:{model_id}"


def note_model_seconds(model_id: int, prediction: Prediction) -> None:
    """Remember how long this model's predictions take (a moving average, in the cache)."""
    seconds = prediction.metrics.get("total_time") or prediction.metrics.get("predict_time")
    if prediction.status != "succeeded" or not isinstance(seconds, int | float):
        return
    previous = cache.get(_speed_key(model_id))
    average = seconds if previous is None else 0.7 * previous + 0.3 * seconds
    cache.set(_speed_key(model_id), average, 24 * 3600)  # a lost race only blurs an estimate


def _create_wait(job: Job, provider) -> int:
    # Worth holding the worker only for a model known to finish within the wait; an unknown
    # or slow model gets its worker back at once (a video would otherwise hold it for nothing).
    wait = int(getattr(provider, "create_wait", 0) or 0)
    usual = cache.get(_speed_key(job.model_id))
    return wait if wait and usual is not None and usual <= wait * 0.8 else 0


# --- Creating or finding the prediction ------------------------------------------------------


def _find_own(job: Job, provider) -> Prediction | None:
    """The job's own prediction, made by an earlier, interrupted attempt. None only when the
    provider says there is none; trouble looking (404 list, 5xx, timeouts) raises _LookLater."""
    assert job.started_at is not None  # set when the job was claimed
    since = job.started_at - LOOKBACK
    try:
        return _with_retries(job, lambda: provider.find(_lookup_request(job), since=since, token=job.provider_token))
    except ProviderError as error:
        logger.warning("could not look for the job's prediction: %s", error, extra={"job_id": str(job.pk)})
        raise _LookLater from error


def _record(job: Job, prediction: Prediction) -> None:
    def save() -> int:
        return Job.objects.filter(pk=job.pk, prediction_id="").update(prediction_id=prediction.id)

    try:
        _db(save)
    except IntegrityError:
        # Another job holds this prediction id: impossible with the job's id in the input,
        # and the unique constraint keeps it so.
        raise ProviderError(f"prediction {prediction.id} already belongs to another job") from None
    job.prediction_id = prediction.id


def _create(job: Job, provider) -> Prediction:
    """Create the prediction, retrying transient trouble. A create that may have reached the
    provider (a timeout, a 5xx) is looked for before another is made."""
    token = job.provider_token or provider.token_for_new()
    if token and not job.provider_token:  # the local renderer has no tokens
        # Saved before the call: after any interruption the next attempt knows a create may
        # have happened, and with which token's account to look for it.
        _db(lambda: Job.objects.filter(pk=job.pk).update(provider_token=token))
        job.provider_token = token
    request = _request_for(job, wait=_create_wait(job, provider))
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
        return _with_retries(job, attempt)
    except ProviderUnavailable:
        if uncertain:
            raise _LookLater from None  # it may exist: never fail a job whose prediction may run
        raise


def _ask(job: Job, provider) -> Prediction | None:
    """The job's prediction as the provider sees it now; None if it cannot say."""
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
            _record(job, found)
        return found
    return None


def job_ask_provider(*, job: Job) -> Prediction | None:
    """For the sweeper: the prediction of a job past its deadline, known by id or found by
    the job's id; None if there is none or the provider cannot say."""
    return _ask(job, get_provider(job.provider))


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
    _db(lambda: Job.objects.filter(pk=job.pk, status=Status.RUNNING).update(lease_until=lease_until))
    if not settings.PUBLIC_BASE_URL:
        poller_kick()


def _look_later(job: Job) -> None:
    # Released soon, so the sweeper's next round runs the job again and it looks once more;
    # at the deadline the sweeper asks a last time and fails it if nothing is found.
    _db(
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
        state: dict[str, bool] = {}
        try:
            return _run(job_id, state)
        except (OperationalError, InterfaceError):
            connection.close()
            if state.get("claimed") and not state.get("handed_off"):
                # Ours until now: let the retry (or the sweeper's) take it over at once.
                _db(lambda: Job.objects.filter(pk=job_id, status=Status.RUNNING).update(lease_until=timezone.now()))
            if attempt == 2:
                raise
            logger.warning(
                "database connection lost while running the job; trying again", extra={"job_id": str(job_id)}
            )
            time.sleep(delay)
            delay *= 4


def _run(job_id: uuid.UUID, state: dict[str, bool]) -> None:
    job = _db(lambda: _claim(job_id))
    if job is None:
        return  # finished already, or another worker holds it
    state["claimed"] = True
    assert job.deadline_at is not None  # _claim sets it
    provider = get_provider(job.provider)
    prediction: Prediction | None
    try:
        if job.prediction_id and provider.draws_in_create:
            # A preview render whose worker died: nothing runs elsewhere and nothing was paid,
            # so it is simply drawn again (asking would only say "interrupted").
            redrawn = _create(job, provider)
            _db(lambda: Job.objects.filter(pk=job.pk).update(prediction_id=redrawn.id))
            job.prediction_id, prediction = redrawn.id, redrawn
        elif job.prediction_id:
            prediction = _ask(job, provider)  # a takeover: ask before anything else
        else:
            prediction = _find_own(job, provider) if job.provider_token else None
            if prediction is None and timezone.now() >= job.deadline_at:
                # Taken over past the deadline and nothing was made: too late to start one.
                job_fail(job_id=job.pk, message=MESSAGE_TIMEOUT, provider_error="deadline passed before a prediction")
                return
            if prediction is None:
                prediction = _create(job, provider)
            _record(job, prediction)
            if not Job.objects.filter(pk=job.pk, status=Status.RUNNING).exists():
                _cancel_quietly(job)  # canceled by the person while we were creating it
                return
        if prediction is not None and prediction.is_final:
            note_model_seconds(job.model_id, prediction)
            job_finish(job=job, prediction=prediction)
        elif timezone.now() >= job.deadline_at:
            # Taken over past the deadline: the provider was asked above and it is not done.
            _cancel_quietly(job)
            job_fail(job_id=job.pk, message=MESSAGE_TIMEOUT, provider_error="deadline passed")
        else:
            _hand_off(job)
            state["handed_off"] = True
    except _JobTakenOver:
        return
    except _LookLater:
        _look_later(job)
    except ProviderUnavailable as error:
        job_fail(job_id=job.pk, message=MESSAGE_UNAVAILABLE, provider_error=str(error))
    except ProviderError as error:
        job_fail(job_id=job.pk, message=_message_for_failure(str(error)), provider_error=str(error))


# --- The poller -------------------------------------------------------------------------------

# Finishing enqueued per job by this process, so a pass does not enqueue it again while the
# first is still waiting for a worker.
_finishing: dict[uuid.UUID, float] = {}
_get_offset = 0


def _enqueue_finish(job_id: uuid.UUID) -> None:
    from generation.tasks import enqueue_sync

    now = time.monotonic()
    if now - _finishing.get(job_id, -1e9) < 15:
        return
    _finishing[job_id] = now
    if len(_finishing) > 10_000:
        for key, moment in list(_finishing.items()):
            if now - moment > 60:
                del _finishing[key]
    enqueue_sync(job_id)


def predictions_poll_pass() -> int:
    """One look at every running Replicate prediction: those done are finished (by sync
    tasks, in parallel), those past their deadline canceled and refunded. Returns how many
    were running."""
    global _get_offset
    now = timezone.now()
    rows = list(
        Job.objects.filter(status=Status.RUNNING, provider=AIModel.Provider.REPLICATE)
        .exclude(prediction_id="")
        .order_by("started_at")
        .values("id", "provider", "prediction_id", "provider_token", "started_at", "deadline_at", "model_id")[
            : settings.JOB_POLL_BATCH
        ]
    )
    if not rows:
        return 0
    provider = get_provider(AIModel.Provider.REPLICATE)
    seen: dict[str, Prediction] = {}
    by_token: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_token.setdefault(row["provider_token"], []).append(row)
    for token, group in by_token.items():
        try:
            found, _ = provider.recent(since=min(r["started_at"] for r in group) - LOOKBACK, token=token)
            seen |= found
        except ProviderError as error:
            logger.warning("poller could not list predictions: %s", error)
    # The rest (the list unavailable, or too long to reach them): a few by id each pass, in turn.
    unseen = [row for row in rows if row["prediction_id"] not in seen]
    if unseen:
        start = _get_offset % len(unseen)
        for row in (unseen[start:] + unseen[:start])[: settings.JOB_POLL_GETS_PER_PASS]:
            try:
                seen[row["prediction_id"]] = provider.get(row["prediction_id"], token=row["provider_token"])
            except ProviderError as error:
                logger.warning("poller could not ask about %s: %s", row["prediction_id"], error)
        _get_offset += settings.JOB_POLL_GETS_PER_PASS
    for row in rows:
        prediction = seen.get(row["prediction_id"])
        if prediction is not None and prediction.is_final:
            note_model_seconds(row["model_id"], prediction)
            _enqueue_finish(row["id"])
        elif row["deadline_at"] and row["deadline_at"] <= now:
            # Built from the row: what cancelling needs, without a query per overdue job.
            job = Job(pk=row["id"], provider=row["provider"], prediction_id=row["prediction_id"],
                      provider_token=row["provider_token"])  # fmt: skip
            _cancel_quietly(job)
            job_fail(job_id=job.pk, message=MESSAGE_TIMEOUT, provider_error="deadline passed")
    return len(rows)


def _poller_lease() -> timedelta:
    return timedelta(seconds=max(10, 5 * settings.JOB_POLL_INTERVAL))


def poller_kick() -> bool:
    """Make sure a poller runs: enqueue one unless one holds the lease or was enqueued in the
    last few seconds (a burst of jobs enqueues one). True if this call enqueued it."""
    from generation.tasks import enqueue_poll

    now = timezone.now()
    PredictionPoller.objects.get_or_create(name=POLLER)
    kicked = (
        PredictionPoller.objects.filter(name=POLLER)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .filter(Q(kicked_at__isnull=True) | Q(kicked_at__lt=now - timedelta(seconds=10)))
        .update(kicked_at=now)
    )
    if kicked:
        enqueue_poll()
    return bool(kicked)


def predictions_poll(*, max_seconds: float | None = None, idle_seconds: float | None = None) -> dict[str, int]:
    """The poller: passes every JOB_POLL_INTERVAL seconds while predictions run, for up to
    `max_seconds`, then hands over to a fresh task (so a deploy or a dead worker costs one
    lease, about 10 s). One poller at a time, by the lease row."""
    max_seconds = settings.JOB_POLLER_RUN_SECONDS if max_seconds is None else max_seconds
    idle_seconds = settings.JOB_POLLER_IDLE_SECONDS if idle_seconds is None else idle_seconds
    holder = uuid.uuid4().hex
    now = timezone.now()
    PredictionPoller.objects.get_or_create(name=POLLER)
    taken = (
        PredictionPoller.objects.filter(name=POLLER)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(holder=holder))
        .update(holder=holder, lease_until=now + _poller_lease())
    )
    if not taken:
        return {"passes": 0, "running": 0}
    passes = running = 0
    until = time.monotonic() + max_seconds
    idle_since: float | None = None
    try:
        while True:
            started = time.monotonic()
            running = predictions_poll_pass()
            passes += 1
            kept = PredictionPoller.objects.filter(name=POLLER, holder=holder).update(
                lease_until=timezone.now() + _poller_lease(), last_pass_at=timezone.now(), passes=F("passes") + 1
            )
            if not kept:
                return {"passes": passes, "running": running}  # another poller took over
            idle_since = (idle_since or started) if not running else None
            if (idle_since is not None and started - idle_since >= idle_seconds) or time.monotonic() >= until:
                break
            time.sleep(max(0.0, settings.JOB_POLL_INTERVAL - (time.monotonic() - started)))
    finally:
        PredictionPoller.objects.filter(name=POLLER, holder=holder).update(lease_until=None, kicked_at=None)
    # A job handed off just as this poller stopped saw the lease still held and did not kick.
    if _has_running_predictions():
        poller_kick()
    return {"passes": passes, "running": running}


def _has_running_predictions() -> bool:
    return (
        Job.objects.filter(status=Status.RUNNING, provider=AIModel.Provider.REPLICATE)
        .exclude(prediction_id="")
        .exists()
    )
