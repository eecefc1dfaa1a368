"""Creating jobs: every rule checked first, then charge and insert in one transaction."""

from __future__ import annotations

import logging
import secrets
import uuid

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from billing.services import InsufficientCredits, balance_of, credits_charge
from generation.models import (
    KINDS_FROM_AN_IMAGE,
    AIModel,
    Batch,
    Job,
    JobOutput,
    Kind,
    SiteSettings,
    Upload,
    job_charge_key,
)
from generation.presets import styles_for
from generation.providers import provider_available
from generation.queue import job_enqueue
from generation.services.common import MAX_PROMPT_LENGTH, GenerationError, GenerationPaused
from generation.uploads import MAX_PIXELS, ValidatedImage, upload_from_output, upload_store, uploads_discard

logger = logging.getLogger("generation.services")


def _check_request(
    *,
    model: AIModel,
    prompt: str,
    aspect_ratio: str,
    style: str = "",
    negative_prompt: str = "",
    num_outputs: int = 1,
) -> str:
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
    if style not in styles_for(model.kind):
        raise GenerationError("Choose one of the style presets.")
    if not 1 <= num_outputs <= model.max_outputs:
        raise GenerationError(
            f"{model.name} makes one result at a time."
            if model.max_outputs == 1
            else f"{model.name} makes 1 to {model.max_outputs} results at a time."
        )
    if negative_prompt and not model.takes_negative_prompt:
        raise GenerationError(f"{model.name} takes no negative prompt; leave it empty or choose another model.")
    if len(negative_prompt) > MAX_PROMPT_LENGTH:
        raise GenerationError(f"Keep the negative prompt under {MAX_PROMPT_LENGTH:,} characters.")
    return prompt


def _check_source_output(*, user: User, model: AIModel, output: JobOutput) -> None:
    """A result someone starts from: their own, a picture, finished, and not too large to grow."""
    job = Job.objects.get(pk=output.job_id)  # as it is now, not as the caller last saw it
    if job.user_id != user.pk or job.deleted_at is not None or job.status != Job.Status.SUCCEEDED:
        raise GenerationError("That picture is not one of yours.")
    if output.is_video:
        raise GenerationError("Only a picture can be the start of this; choose an image.")
    factor = model.upscale_factor or 1
    if (output.width or 0) * (output.height or 0) * factor * factor > MAX_PIXELS:
        raise GenerationError(
            f"This picture is {output.width:,}×{output.height:,} pixels already: ×{factor} would be too large."
        )


def job_insert(
    *,
    user: User,
    model: AIModel,
    prompt: str,
    aspect_ratio: str,
    num_outputs: int = 1,
    on_the_house: bool = False,
    **fields,
) -> Job:
    """Insert a job and write its charges, one per result; call inside a transaction. A job
    `on_the_house` (a staff re-run) costs nothing: no charge now, so nothing to refund whatever
    becomes of it."""
    # Every job records the seed it ran with, so the page can show it and a person can repeat
    # a result; without one of their own, a fresh one each time makes a new variation.
    seed = fields.pop("seed", None)
    fields["seed_chosen"] = seed is not None
    fields["seed"] = seed if seed is not None else secrets.randbelow(2**32)
    job = Job.objects.create(
        user=user,
        model=model,
        kind=model.kind,
        prompt=prompt,
        aspect_ratio=aspect_ratio,
        cost=0 if on_the_house else model.cost_of(num_outputs),
        num_outputs=num_outputs,
        provider=model.provider,
        provider_ref=model.provider_ref,
        duration_seconds=model.duration_seconds,
        upscale_factor=model.upscale_factor,
        last_enqueued_at=timezone.now(),  # the enqueue follows on commit
        **fields,
    )
    # One charge per result, so that each one that fails is refunded on its own (the refund
    # gives back exactly its charge, once: billing's one-to-one rule). The memo names the model,
    # never the prompt: the ledger is kept after an account is deleted.
    for index in range(num_outputs if job.cost else 0):
        memo = model.name if num_outputs == 1 else f"{model.name} · result {index + 1} of {num_outputs}"
        try:
            credits_charge(
                user=user, amount=model.credit_cost, key=job_charge_key(job.id, index), reference=job.reference,
                memo=memo,
            )  # fmt: skip
        except InsufficientCredits as short:
            # Say what the whole job needs against the balance before it (this transaction
            # rolls back the results charged so far).
            raise InsufficientCredits(needed=job.cost, balance=short.balance + index * model.credit_cost) from None
    transaction.on_commit(lambda: job_enqueue(job.id))
    return job


def _no_photo_message(model: AIModel) -> str:
    return {
        Kind.IMAGE_EDIT: "A photo edit needs a photo.",
        Kind.UPSCALE: "Choose the picture to upscale.",
        Kind.ANIMATE: "Choose the photo to animate.",
    }.get(Kind(model.kind), "Choose a photo.")


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
    negative_prompt: str = "",
    source: Upload | None = None,
    photo: ValidatedImage | None = None,
    source_output: JobOutput | None = None,
    batch: Batch | None = None,
    num_outputs: int = 1,
    form_token: uuid.UUID | None = None,
) -> Job:
    """Charge and insert in one transaction; enqueue on commit. Raises InsufficientCredits.

    A kind that starts from an image (an edit, an upscale, an animation) takes an existing
    `source` upload (run again), a new, validated `photo`, or one of the person's results
    (`source_output`), copied for the job. A photo or copy is stored only once every rule has
    passed, and removed again if no job is made."""
    _check_user(user)
    negative_prompt = negative_prompt.strip()
    prompt = _check_request(
        model=model, prompt=prompt, aspect_ratio=aspect_ratio, style=style, negative_prompt=negative_prompt,
        num_outputs=num_outputs,
    )  # fmt: skip
    has_photo = source is not None or photo is not None or source_output is not None
    if (model.kind in KINDS_FROM_AN_IMAGE) != has_photo:
        raise GenerationError(
            _no_photo_message(model) if not has_photo else f"{model.name} does not start from a photo."
        )
    if source is not None and source.user_id != user.pk:
        raise GenerationError("That photo is not yours.")
    if source is not None and not source.file:
        raise GenerationError("That photo is no longer kept (it was deleted or could not be read); upload it again.")
    if source_output is not None:
        _check_source_output(user=user, model=model, output=source_output)
    if batch is not None and batch.user_id != user.pk:
        raise GenerationError("That batch is not yours.")

    if form_token is not None:
        existing = Job.objects.filter(user=user, form_token=form_token).first()
        if existing is not None:
            return existing
    balance = balance_of(user)
    if balance < model.cost_of(num_outputs):  # say so before storing anything
        raise InsufficientCredits(needed=model.cost_of(num_outputs), balance=balance)
    # Storage I/O, outside any transaction.
    stored = None
    if photo is not None:
        stored = upload_store(user=user, image=photo)
    elif source_output is not None:
        stored = upload_from_output(user=user, output=source_output)
    try:
        with transaction.atomic():
            job = job_insert(
                user=user, model=model, prompt=prompt, aspect_ratio=aspect_ratio, seed=seed, style=style,
                negative_prompt=negative_prompt, source=stored or source, source_output=source_output, batch=batch,
                num_outputs=num_outputs, form_token=form_token,
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


def batch_create(
    *,
    user: User,
    model: AIModel,
    prompt: str,
    photos: list,
    style: str = "",
    negative_prompt: str = "",
    form_token: uuid.UUID | None = None,
) -> Batch:
    """One prompt, up to ten photos: each photo its own job and charge, all or nothing.

    `photos` are ValidatedImage values (generation.uploads.image_validate): checked from their
    headers, decoded later by each job's worker."""
    _check_user(user)
    negative_prompt = negative_prompt.strip()
    prompt = _check_request(
        model=model, prompt=prompt, aspect_ratio="original", style=style, negative_prompt=negative_prompt
    )
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
    balance = balance_of(user)
    if balance < total:  # say so before storing anything
        raise InsufficientCredits(needed=total, balance=balance)

    # Photos go to storage first (network I/O), then one transaction charges every job.
    uploads = [upload_store(user=user, image=photo) for photo in photos]
    try:
        with transaction.atomic():
            batch = Batch.objects.create(user=user, model=model, prompt=prompt, form_token=form_token)
            for upload in uploads:
                job_insert(
                    user=user, model=model, prompt=prompt, aspect_ratio="original", source=upload, batch=batch,
                    style=style, negative_prompt=negative_prompt,
                )  # fmt: skip
    except Exception:
        uploads_discard(uploads)
        raise
    return batch
