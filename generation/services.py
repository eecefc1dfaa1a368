"""Jobs: create (charge + insert + enqueue), run on a worker, finish, fail (refund once).

The flow is DESIGN.md's "data flow of one job". No provider call happens inside a database
transaction, and every task is safe to run twice: state moves by conditional updates whose
row count says whether this process got there first.
"""

from __future__ import annotations

import io
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from storages.backends.s3 import S3Storage

from accounts.models import User
from billing.services import credits_charge, credits_refund
from generation.models import AIModel, Batch, Job, JobOutput, JobReport, Kind, SiteSettings, Upload
from generation.outputs import StoredOutput, UnreadableOutput, delete_files, store_output
from generation.presets import STYLES, styled_prompt
from generation.providers import (
    OutputUnavailable,
    Prediction,
    PredictionRequest,
    ProviderError,
    ProviderUnavailable,
    get_provider,
    provider_available,
)
from generation.uploads import ValidatedImage

logger = logging.getLogger(__name__)
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


class _DeadlinePassed(Exception):
    pass


# --- Creating --------------------------------------------------------------------------


def _check_request(*, model: AIModel, prompt: str, aspect_ratio: str, style: str = "") -> str:
    """The rules every submission meets; returns the cleaned prompt. Charges nothing."""
    switch = SiteSettings.current()
    if not switch.generation_enabled:
        raise GenerationPaused(switch.pause_message)
    prompt = prompt.strip()
    if not prompt:
        raise GenerationError("Describe what you want to see.")
    if len(prompt) > MAX_PROMPT_LENGTH:
        raise GenerationError(f"Keep the prompt under {MAX_PROMPT_LENGTH:,} characters.")
    if not model.enabled or not provider_available(model.provider):
        raise GenerationError(f"{model.name} is not available right now. Choose another model.")
    if aspect_ratio not in model.aspect_ratios:
        raise GenerationError(f"{model.name} does not offer the {aspect_ratio} shape.")
    if style not in STYLES:
        raise GenerationError("Choose one of the style presets.")
    return prompt


def _new_job(*, user: User, model: AIModel, prompt: str, aspect_ratio: str, **fields) -> Job:
    """Insert a job and write its charge; call inside a transaction."""
    job = Job.objects.create(
        user=user,
        model=model,
        kind=model.kind,
        prompt=prompt,
        aspect_ratio=aspect_ratio,
        cost=model.credit_cost,
        provider=model.provider,
        provider_ref=model.provider_ref,
        duration_seconds=model.duration_seconds,
        **fields,
    )
    # The memo names the model, never the prompt: the ledger is kept after an account is deleted.
    credits_charge(user=user, amount=job.cost, key=job.charge_key, reference=job.reference, memo=model.name)
    transaction.on_commit(lambda: _enqueue_run(job.id))
    return job


def _check_user(user: User) -> None:
    if user.is_suspended:
        raise GenerationError("Your account is suspended, so you cannot start new jobs. Please contact support.")


def job_create(
    *,
    user: User,
    model: AIModel,
    prompt: str,
    aspect_ratio: str,
    seed: int | None = None,
    style: str = "",
    source: Upload | None = None,
    photo: ValidatedImage | None = None,
    form_token: uuid.UUID | None = None,
) -> Job:
    """Charge and insert in one transaction; enqueue on commit. Raises InsufficientCredits.

    An edit takes either an existing `source` upload (run again) or a new, validated `photo`,
    which is stored only once every rule has passed, and removed again if no job is made."""
    from generation.uploads import upload_store, uploads_discard

    _check_user(user)
    prompt = _check_request(model=model, prompt=prompt, aspect_ratio=aspect_ratio, style=style)
    has_photo = source is not None or photo is not None
    if (model.kind == Kind.IMAGE_EDIT) != has_photo:
        raise GenerationError("A photo edit needs a photo." if not has_photo else f"{model.name} does not edit photos.")
    if source is not None and source.user_id != user.pk:
        raise GenerationError("That photo is not yours.")

    if form_token is not None:
        existing = Job.objects.filter(user=user, form_token=form_token).first()
        if existing is not None:
            return existing
    stored = upload_store(user=user, image=photo) if photo is not None else None  # storage I/O, no transaction
    try:
        with transaction.atomic():
            job = _new_job(
                user=user, model=model, prompt=prompt, aspect_ratio=aspect_ratio, seed=seed, style=style,
                source=stored or source, form_token=form_token,
            )  # fmt: skip
    except IntegrityError:
        if stored is not None:
            uploads_discard([stored])
        # The same form posted twice at the same moment: the first insert won.
        existing = Job.objects.filter(user=user, form_token=form_token).first() if form_token else None
        if existing is None:
            raise
        return existing
    except Exception:
        if stored is not None:
            uploads_discard([stored])  # e.g. short of credits: keep no photo for a job that is not
        raise
    logger.info("job created", extra={"job_id": str(job.id), "user_id": user.pk})
    return job


def _enqueue_run(job_id: uuid.UUID) -> None:
    from generation.tasks import enqueue_run

    enqueue_run(job_id)


# --- Running (the task body) -------------------------------------------------------------


def _lease() -> timedelta:
    return timedelta(seconds=settings.JOB_LEASE_SECONDS)


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
            remaining = (job.deadline_at - timezone.now()).total_seconds()
            if attempt == settings.PROVIDER_MAX_RETRIES or remaining <= delay:
                raise
            logger.warning("provider trouble, retrying in %.1fs: %s", delay, error, extra={"job_id": str(job.id)})
            time.sleep(delay)
            _renew_lease(job)
            delay = min(delay * 2, 10.0)
    raise AssertionError("unreachable")


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


def _cancel_quietly(job: Job) -> None:
    if not job.prediction_id:
        return
    try:
        get_provider(job.provider).cancel(job.prediction_id)
    except ProviderError as error:
        logger.warning("could not cancel prediction %s: %s", job.prediction_id, error, extra={"job_id": str(job.id)})


def _message_for_failure(provider_error: str) -> str:
    lowered = provider_error.lower()
    if "nsfw" in lowered or "safety" in lowered or "sensitive" in lowered:
        return MESSAGE_BLOCKED
    return "The model could not make this one. Your credits were refunded; try rewording the prompt."


def job_finish(*, job: Job, prediction: Prediction) -> bool:
    """Act on a final prediction: keep its outputs, or fail and refund. True if this call
    decided the job's outcome."""
    if prediction.status != "succeeded":
        error = prediction.error or f"prediction {prediction.status}"
        return job_fail(
            job_id=job.pk, message=_message_for_failure(error), provider_error=error, metrics=prediction.metrics
        )
    if not prediction.outputs:
        # What a safety filter returns: success with nothing in it.
        return job_fail(
            job_id=job.pk, message=MESSAGE_BLOCKED, provider_error="empty output", metrics=prediction.metrics
        )

    provider = get_provider(job.provider)
    stored: list[StoredOutput] = []
    try:
        for url in prediction.outputs:
            data = _with_retries(job, lambda url=url: provider.fetch_output(url))
            stored.append(store_output(data))
    except (OutputUnavailable, ProviderUnavailable) as error:
        delete_files([name for s in stored for name in (s.file_name, s.thumbnail_name)])
        return job_fail(job_id=job.pk, message=MESSAGE_EXPIRED, provider_error=str(error), metrics=prediction.metrics)
    except UnreadableOutput as error:
        delete_files([name for s in stored for name in (s.file_name, s.thumbnail_name)])
        return job_fail(
            job_id=job.pk, message=MESSAGE_UNREADABLE, provider_error=str(error), metrics=prediction.metrics
        )

    if job_succeed(job_id=job.pk, outputs=stored, metrics=prediction.metrics):
        return True
    # Someone else finished it first; what we copied is not needed.
    delete_files([name for s in stored for name in (s.file_name, s.thumbnail_name)])
    return False


def job_succeed(*, job_id: uuid.UUID, outputs: list[StoredOutput], metrics: dict) -> bool:
    with transaction.atomic():
        updated = Job.objects.filter(pk=job_id, status=Status.RUNNING).update(
            status=Status.SUCCEEDED, finished_at=timezone.now(), lease_until=None, metrics=metrics or {}
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
    return bool(updated)


def job_fail(
    *,
    job_id: uuid.UUID,
    message: str,
    provider_error: str = "",
    metrics: dict | None = None,
    status: str = Status.FAILED,
) -> bool:
    """Fail (or cancel) a job that has not finished, and refund its charge in the same
    transaction. Returns False when the job had already finished: nothing changes then."""
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
        updated = Job.objects.filter(pk=job_id, status__in=[Status.QUEUED, Status.RUNNING]).update(**fields)
        if updated:
            credits_refund(charge_key=f"charge:{job_id}", key=f"refund:{job_id}", memo=status.capitalize())
    if updated:
        logger.info("job %s", status, extra={"job_id": str(job_id), "error": provider_error[:200]})
        _after_final(job_id)
    return bool(updated)


def _after_final(job_id: uuid.UUID) -> None:
    from generation.notifications import notify_finished

    transaction.on_commit(lambda: notify_finished(job_id))


# --- Webhooks and the sweeper ------------------------------------------------------------


def job_sync(*, job_id: uuid.UUID) -> None:
    """Look at the provider's prediction and finish the job if it is done (webhook path)."""
    job = Job.objects.select_related("model").filter(pk=job_id, status=Status.RUNNING).exclude(prediction_id="").first()
    if job is None:
        return
    try:
        prediction = get_provider(job.provider).get(job.prediction_id)
    except ProviderError as error:
        logger.warning("sync of %s failed: %s", job.pk, error, extra={"job_id": str(job.pk)})
        return
    if prediction.is_final:
        job_finish(job=job, prediction=prediction)


def sweep_stuck_jobs() -> dict[str, int]:
    """Nothing stays running forever: finish, fail or restart jobs whose worker went away."""
    now = timezone.now()
    grace = timedelta(seconds=settings.JOB_SWEEP_GRACE_SECONDS)
    counts = {"finished": 0, "failed": 0, "restarted": 0}

    # Past the deadline: take the job over (a fresh lease keeps a worker from racing us),
    # then ask the provider once.
    overdue = Job.objects.filter(status=Status.RUNNING, deadline_at__lt=now - grace).values_list("pk", flat=True)
    for job_id in list(overdue[:200]):
        taken = Job.objects.filter(pk=job_id, status=Status.RUNNING, deadline_at__lt=now - grace).update(
            lease_until=timezone.now() + _lease()
        )
        if not taken:
            continue
        job = Job.objects.select_related("model").get(pk=job_id)
        prediction = None
        if job.prediction_id:
            try:
                prediction = get_provider(job.provider).get(job.prediction_id)
            except ProviderError as error:
                logger.warning("sweeper could not ask about %s: %s", job_id, error, extra={"job_id": str(job_id)})
        if prediction is not None and prediction.is_final:
            job_finish(job=job, prediction=prediction)
            counts["finished"] += 1
        else:
            _cancel_quietly(job)
            if job_fail(job_id=job.pk, message=MESSAGE_TIMEOUT, provider_error="swept: past deadline"):
                counts["failed"] += 1

    # Lost their worker before the deadline, or never reached one: run them again. The
    # claim makes a duplicate delivery harmless.
    orphans = Job.objects.filter(
        Q(status=Status.RUNNING, lease_until__lt=now, deadline_at__gte=now - grace)
        | Q(status=Status.QUEUED, created_at__lt=now - timedelta(seconds=settings.JOB_REQUEUE_AFTER_SECONDS))
    ).values_list("pk", flat=True)
    for job_id in list(orphans[:200]):
        _enqueue_run(job_id)
        counts["restarted"] += 1
    return counts


# --- People's actions --------------------------------------------------------------------


def job_delete(*, job: Job) -> None:
    """Remove a finished job's files from the person's gallery; the row stays for the ledger."""
    if not job.is_final:
        raise GenerationError("A job can be deleted once it has finished.")
    outputs = list(JobOutput.objects.filter(job=job))
    names = [name for output in outputs for name in (output.file.name, output.thumbnail.name)]
    with transaction.atomic():
        JobOutput.objects.filter(job=job).delete()
        Job.objects.filter(pk=job.pk).update(deleted_at=timezone.now(), prompt="")
    delete_files(names)  # storage I/O after the rows are gone, outside the transaction


def job_cancel(*, job: Job) -> None:
    """The person stops a queued or running job: refunded once, the prediction canceled."""
    if not job_fail(
        job_id=job.pk, message="You canceled this job. Your credits were refunded.", status=Status.CANCELED
    ):
        raise GenerationError("This job has already finished, so it cannot be canceled.")
    job.refresh_from_db(fields=["prediction_id", "status"])
    _cancel_quietly(job)  # provider call after the transaction; a worker that raced us also checks


def job_share(*, job: Job) -> str:
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


# --- Batches -----------------------------------------------------------------------------


def batch_create(
    *,
    user: User,
    model: AIModel,
    prompt: str,
    photos: list,
    form_token: uuid.UUID | None = None,
) -> Batch:
    """One prompt, up to ten photos: each photo its own job and charge, all or nothing.

    `photos` are ValidatedImage values (generation.uploads.image_validate)."""
    from generation.uploads import upload_store, uploads_discard

    _check_user(user)
    prompt = _check_request(model=model, prompt=prompt, aspect_ratio="original")
    if model.kind != Kind.IMAGE_EDIT:
        raise GenerationError(f"{model.name} does not edit photos.")
    if not photos:
        raise GenerationError("Add at least one photo.")
    if len(photos) > Batch.MAX_ITEMS:
        raise GenerationError(f"A batch takes up to {Batch.MAX_ITEMS} photos; you added {len(photos)}.")
    if form_token is not None:
        existing = Batch.objects.filter(user=user, form_token=form_token).first()
        if existing is not None:
            return existing
    total = model.credit_cost * len(photos)
    from billing.services import InsufficientCredits, balance_of

    balance = balance_of(user)
    if balance < total:  # say so before storing anything
        raise InsufficientCredits(needed=total, balance=balance)

    # Photos go to storage first (network I/O), then one transaction charges every job.
    uploads = [upload_store(user=user, image=photo) for photo in photos]
    try:
        with transaction.atomic():
            batch = Batch.objects.create(user=user, model=model, prompt=prompt, form_token=form_token)
            for upload in uploads:
                _new_job(user=user, model=model, prompt=prompt, aspect_ratio="original", source=upload, batch=batch)
    except Exception:
        uploads_discard(uploads)
        raise
    return batch


# --- Reports and staff actions -----------------------------------------------------------


def job_report(*, user: User, job: Job, reason: str) -> JobReport:
    """The person flags a finished job as a bad result, once per job."""
    reason = reason.strip()
    if job.user_id != user.pk:
        raise GenerationError("That job is not yours.")
    if job.status != Status.SUCCEEDED:
        raise GenerationError("Only a finished result can be reported; failed jobs are refunded already.")
    if not reason:
        raise GenerationError("Tell us what is wrong with the result.")
    report, created = JobReport.objects.get_or_create(job=job, defaults={"reason": reason[:1000]})
    if not created:
        raise GenerationError("You already reported this result.")
    return report


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
    return True


def job_refund_by_staff(*, job: Job, staff: User, memo: str = "Refunded by staff") -> bool:
    """Refund a job's charge (once, whatever its status). False if it was refunded already."""
    from billing.models import LedgerEntry

    if LedgerEntry.objects.filter(idempotency_key=job.refund_key).exists():
        return False
    if job.can_cancel:
        return job_fail(job_id=job.pk, message="Canceled and refunded by our team.", status=Status.CANCELED)
    credits_refund(charge_key=job.charge_key, key=job.refund_key, actor=staff, memo=memo)
    return True


def job_rerun_by_staff(*, job: Job, staff: User) -> Job:
    """Run a finished job again for its owner without charging them twice.

    A failed or canceled job was refunded, so the new job is charged as usual; a succeeded one
    was paid for, so its re-run is given back with an adjustment. Clicking twice makes one."""
    from billing.services import credits_adjust

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
        new_job = _new_job(
            user=job.user, model=job.model, prompt=job.prompt, aspect_ratio=job.aspect_ratio, seed=job.seed,
            style=job.style, source=job.source, form_token=token,
        )  # fmt: skip
    return new_job
