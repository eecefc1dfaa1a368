"""Creating jobs: every rule checked first, then charge and insert in one transaction."""

from __future__ import annotations

import logging
import secrets
import uuid

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from billing.services import InsufficientCredits, balance_of, credits_charge
from generation.models import AIModel, Batch, Job, Kind, SiteSettings, Upload
from generation.presets import styles_for
from generation.providers import provider_available
from generation.queue import job_enqueue
from generation.services.common import MAX_PROMPT_LENGTH, GenerationError, GenerationPaused
from generation.uploads import ValidatedImage, upload_store, uploads_discard

logger = logging.getLogger("generation.services")


def _check_request(
    *, model: AIModel, prompt: str, aspect_ratio: str, style: str = "", negative_prompt: str = ""
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
    if negative_prompt and not model.takes_negative_prompt:
        raise GenerationError(f"{model.name} takes no negative prompt; leave it empty or choose another model.")
    if len(negative_prompt) > MAX_PROMPT_LENGTH:
        raise GenerationError(f"Keep the negative prompt under {MAX_PROMPT_LENGTH:,} characters.")
    return prompt


def job_insert(*, user: User, model: AIModel, prompt: str, aspect_ratio: str, **fields) -> Job:
    """Insert a job and write its charge; call inside a transaction."""
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
        cost=model.credit_cost,
        provider=model.provider,
        provider_ref=model.provider_ref,
        duration_seconds=model.duration_seconds,
        last_enqueued_at=timezone.now(),  # the enqueue follows on commit
        **fields,
    )
    # The memo names the model, never the prompt: the ledger is kept after an account is deleted.
    credits_charge(user=user, amount=job.cost, key=job.charge_key, reference=job.reference, memo=model.name)
    transaction.on_commit(lambda: job_enqueue(job.id))
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
    negative_prompt: str = "",
    source: Upload | None = None,
    photo: ValidatedImage | None = None,
    batch: Batch | None = None,
    form_token: uuid.UUID | None = None,
) -> Job:
    """Charge and insert in one transaction; enqueue on commit. Raises InsufficientCredits.

    An edit takes either an existing `source` upload (run again) or a new, validated `photo`,
    which is stored only once every rule has passed, and removed again if no job is made."""
    _check_user(user)
    negative_prompt = negative_prompt.strip()
    prompt = _check_request(
        model=model, prompt=prompt, aspect_ratio=aspect_ratio, style=style, negative_prompt=negative_prompt
    )
    has_photo = source is not None or photo is not None
    if (model.kind == Kind.IMAGE_EDIT) != has_photo:
        raise GenerationError("A photo edit needs a photo." if not has_photo else f"{model.name} does not edit photos.")
    if source is not None and source.user_id != user.pk:
        raise GenerationError("That photo is not yours.")
    if batch is not None and batch.user_id != user.pk:
        raise GenerationError("That batch is not yours.")

    if form_token is not None:
        existing = Job.objects.filter(user=user, form_token=form_token).first()
        if existing is not None:
            return existing
    stored = upload_store(user=user, image=photo) if photo is not None else None  # storage I/O, no transaction
    try:
        with transaction.atomic():
            job = job_insert(
                user=user, model=model, prompt=prompt, aspect_ratio=aspect_ratio, seed=seed, style=style,
                negative_prompt=negative_prompt, source=stored or source, batch=batch, form_token=form_token,
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

    `photos` are ValidatedImage values (generation.uploads.image_validate)."""
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
