from __future__ import annotations

import functools
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.urls import get_script_prefix, reverse
from django.utils import timezone

from core.storages import file_extension
from generation.presets import styles_for


class Kind(models.TextChoices):
    IMAGE = "image", "Image"
    IMAGE_EDIT = "image_edit", "Photo edit"
    VIDEO = "video", "Video"
    # From an image: a result made larger, and a photo (or a result) set in motion.
    UPSCALE = "upscale", "Upscale"
    ANIMATE = "animate", "Animated photo"


# The kinds that start from an image (a person's photo, or one of their results).
KINDS_FROM_AN_IMAGE = (Kind.IMAGE_EDIT, Kind.UPSCALE, Kind.ANIMATE)
# The kinds whose result is a video.
VIDEO_KINDS = (Kind.VIDEO, Kind.ANIMATE)
# Results per job, at most (Midjourney's four).
MAX_OUTPUTS = 4


class AspectRatio(models.TextChoices):
    # Our names for shapes; each catalog entry maps the ones it offers to its own value
    # (AIModel.aspect_ratios), so a video's "portrait" can be 9:16 where an image's is 2:3.
    PORTRAIT = "portrait", "Portrait"
    SQUARE = "square", "Square"
    LANDSCAPE = "landscape", "Landscape"
    WIDE = "wide", "Wide"
    TALL = "tall", "Story"
    PORTRAIT_4_5 = "portrait_4_5", "Social"
    PORTRAIT_3_4 = "portrait_3_4", "Classic"
    ORIGINAL = "original", "Same as the photo"


class AIModel(models.Model):
    """One entry of the catalog staff manage: what people can choose, and what it costs."""

    class Provider(models.TextChoices):
        REPLICATE = "replicate", "Replicate"
        LOCAL = "local", "Local preview renderer"

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=255, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    provider = models.CharField(max_length=16, choices=Provider.choices)
    # Replicate: "owner/name" (official models) or "owner/name:version".
    provider_ref = models.CharField(max_length=200, blank=True)
    # Credits per job. A change applies to new jobs only: each job keeps the cost it was charged.
    credit_cost = models.PositiveIntegerField()
    timeout_seconds = models.PositiveIntegerField(default=300)
    # Our aspect ratio → the value this model accepts, e.g. {"portrait": "2:3"}. The keys are
    # the shapes offered for this model.
    aspect_ratios = models.JSONField(default=dict)
    # Videos: the clip length this entry makes (and is priced for).
    duration_seconds = models.PositiveSmallIntegerField(null=True, blank=True)
    # Upscalers: how many times larger this entry makes an image (and is priced for).
    upscale_factor = models.PositiveSmallIntegerField(null=True, blank=True)
    # How many results one job may ask for: more than one only for models whose API takes
    # `num_outputs` (and the preview renderer). credit_cost is the price of each.
    max_outputs = models.PositiveSmallIntegerField(default=1, db_default=1)
    # The input the photo goes in, for kinds that start from an image ("image" for most
    # upscalers and image-to-video models, "input_image" for FLUX Kontext).
    image_input = models.CharField(max_length=40, blank=True, default="input_image", db_default="input_image")
    # Input the provider gets on top of prompt, aspect ratio and seed.
    input_defaults = models.JSONField(default=dict, blank=True)
    # The input this model reads a negative prompt from (e.g. "negative_prompt"); empty: the
    # model takes none, and the form does not offer one.
    negative_prompt_input = models.CharField(
        max_length=64, blank=True, default="", db_default="", help_text="Empty when the model takes no negative prompt."
    )
    # What a job usually takes, for the waiting page until the model has finished jobs of its own.
    expected_seconds = models.PositiveIntegerField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)
    # What the provider charges us, for spend estimates: per prediction, plus per second of
    # run time (Replicate's `predict_time` metric). US dollars; either may be zero.
    provider_usd_per_run = models.DecimalField(max_digits=10, decimal_places=6, default=0)
    provider_usd_per_second = models.DecimalField(max_digits=10, decimal_places=6, default=0)

    class Meta:
        ordering = ["kind", "position", "name"]
        verbose_name = "AI model"
        constraints = [
            models.CheckConstraint(condition=Q(credit_cost__gt=0), name="generation_aimodel_cost_positive"),
            models.CheckConstraint(condition=Q(timeout_seconds__gt=0), name="generation_aimodel_timeout_positive"),
            models.CheckConstraint(
                condition=Q(max_outputs__gte=1, max_outputs__lte=MAX_OUTPUTS), name="generation_aimodel_outputs_range"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_preview(self) -> bool:
        return self.provider == self.Provider.LOCAL

    def offered_ratios(self) -> list[str]:
        return [ratio for ratio in AspectRatio.values if ratio in self.aspect_ratios]

    def cost_of(self, outputs: int = 1) -> int:
        return self.credit_cost * outputs

    @property
    def takes_negative_prompt(self) -> bool:
        return bool(self.negative_prompt_input)


class SiteSettings(models.Model):
    """One row: the emergency switch staff flip in the admin."""

    generation_enabled = models.BooleanField(
        default=True, help_text="Off: new jobs are refused (nothing is charged); running jobs finish."
    )
    pause_message = models.CharField(
        max_length=300,
        blank=True,
        default="Creating is paused for a little while. Your gallery and credits are safe; please come back soon.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "site settings"
        verbose_name_plural = "site settings"

    def __str__(self) -> str:
        return "Generation on" if self.generation_enabled else "Generation paused"

    @classmethod
    def current(cls) -> SiteSettings:
        # Read on every request that needs it: flipping the switch takes effect at once.
        return cls.objects.get_or_create(pk=1)[0]


def upload_upload_to(instance: Upload | None, filename: str) -> str:
    return f"uploads/{timezone.now():%Y/%m}/{uuid.uuid4().hex}.{file_extension(filename)}"


class Upload(models.Model):
    """A person's photo, kept privately for edits (generation/uploads.py)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="uploads")
    file = models.FileField(upload_to=upload_upload_to, max_length=255)
    content_type = models.CharField(max_length=50)
    size = models.PositiveBigIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    # Stored as it came (checked from its header only) until its job's worker decodes it and
    # writes it again without metadata; served to nobody meanwhile. False for every photo
    # stored before this field (they were cleaned on the web request).
    needs_cleaning = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    def __str__(self) -> str:
        return f"Upload {self.id}"


class Batch(models.Model):
    """Up to ten photos edited with one prompt; each photo is its own job, charged alone."""

    MAX_ITEMS = 10

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="batches")
    model = models.ForeignKey(AIModel, on_delete=models.PROTECT, related_name="batches")
    prompt = models.TextField()
    form_token = models.UUIDField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # When the "your batch is done" email went out (once, even if two last jobs finish together).
    notified_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "batches"
        constraints = [
            models.UniqueConstraint(fields=["user", "form_token"], name="generation_batch_one_per_form_token"),
        ]

    def __str__(self) -> str:
        return f"Batch {self.id}"

    def get_absolute_url(self) -> str:
        return reverse("batch_detail", args=[self.id])


class Job(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"

    FINAL_STATUSES = (Status.SUCCEEDED, Status.FAILED, Status.CANCELED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="jobs")
    model = models.ForeignKey(AIModel, on_delete=models.PROTECT, related_name="jobs")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    prompt = models.TextField()
    aspect_ratio = models.CharField(max_length=16, choices=AspectRatio.choices)
    seed = models.BigIntegerField(null=True, blank=True)
    # Whether the person chose the seed: "run again" keeps a chosen seed and draws a new one
    # otherwise, so it makes a new variation. A database default too, like provider_token's:
    # rows written by SQL (bench/scale.py) or by the previous release during a deploy get it.
    seed_chosen = models.BooleanField(default=False, db_default=False)
    # Videos: a style preset that shapes the prompt (generation/presets.py), and the length.
    style = models.CharField(max_length=32, blank=True)
    # What the picture should not show, for models that take it (AIModel.negative_prompt_input).
    negative_prompt = models.TextField(blank=True, default="", db_default="")
    # The person's favourites, a filter of their gallery.
    favourite = models.BooleanField(default=False, db_default=False)
    duration_seconds = models.PositiveSmallIntegerField(null=True, blank=True)
    # Edits: the person's photo.
    source = models.ForeignKey(Upload, null=True, blank=True, on_delete=models.PROTECT, related_name="jobs")
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.PROTECT, related_name="jobs")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    # Credits charged, copied from the catalog when the job was created: the price of one
    # result times num_outputs. Each result is charged (and refunded) on its own.
    cost = models.PositiveIntegerField()
    # Results asked for (1 to MAX_OUTPUTS), and how many of them failed (each refunded): a
    # succeeded job delivered num_outputs - failed_outputs, as outputs 0, 1, ... The services
    # keep the ranges; no CHECK on these columns, whose adding would scan the jobs table locked.
    num_outputs = models.SmallIntegerField(default=1, db_default=1)
    failed_outputs = models.SmallIntegerField(default=0, db_default=0)
    # Upscales: the factor, copied from the catalog like a video's length.
    upscale_factor = models.SmallIntegerField(null=True, blank=True)
    # Upscales and animations of a result, and edits of one: the result they started from
    # (its file was copied into `source`, so the job keeps its input if that result is deleted).
    # No database constraint (adding one would lock the jobs table while it is checked), and the
    # id stays when the result is deleted: the page then says where it came from is gone. Its
    # index is built concurrently (0018).
    source_output = models.ForeignKey(
        "JobOutput",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="derived_jobs",
        db_index=False,
        db_constraint=False,
    )
    provider = models.CharField(max_length=16, choices=AIModel.Provider.choices)
    provider_ref = models.CharField(max_length=200, blank=True)
    # Saved before any wait, so a restarted worker resumes this prediction instead of paying
    # for a new one.
    prediction_id = models.CharField(max_length=100, blank=True, db_index=True)
    # Which API token created (or is creating) the prediction, by fingerprint, never the token
    # itself: get, cancel and the lookup after an interruption use that token's account.
    # Saved before the create call, so "set, but no prediction id" means a create may have
    # reached the provider and the job must look for it before creating another.
    provider_token = models.CharField(max_length=16, blank=True, default="", db_default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    # The worker running the job holds it until this time and renews it while it waits; a job
    # whose lease ran out lost its worker and may be picked up again.
    lease_until = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    # When the job's run task was last handed to the queue: the sweeper sends a queued job
    # again only when this is older than JOB_REQUEUE_AFTER_SECONDS (a conditional update), so
    # a task lost with a queue or a cluster comes back within a minute, and a long backlog
    # gains at most one extra task per job and interval.
    last_enqueued_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The provider's run metrics (e.g. predict_time in seconds) for spend estimates.
    metrics = models.JSONField(default=dict, blank=True)
    # When the provider finished the prediction: finished_at minus this is how long its end took
    # to reach the job (the webhook or the poller, then copying the outputs), shown in /metrics.
    prediction_completed_at = models.DateTimeField(null=True, blank=True)
    error_message = models.CharField(max_length=500, blank=True)  # for the person
    provider_error = models.TextField(blank=True)  # raw, for staff
    # The create form's token: a double-click or a retried POST finds the first job.
    form_token = models.UUIDField(null=True, blank=True, editable=False)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Set while the person shares the finished job at /s/<token>; cleared to revoke.
    share_token = models.CharField(max_length=64, null=True, blank=True, unique=True, editable=False)

    # Not a column: the batch page gives each job it lists a form token for "Try this photo again".
    retry_token: uuid.UUID

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # A person's pages (jobs, gallery) in their order, with the id as the keyset tiebreak.
            models.Index(fields=["user", "-created_at", "-id"], name="generation_job_user_hist_idx"),
            models.Index(fields=["status", "deadline_at"], name="generation_job_status_idx"),
            # A model's recent run times, for the estimate a waiting job page shows.
            models.Index(fields=["model", "status", "-finished_at"], name="generation_job_model_done_idx"),
            # The admin list's default order and the admin home's and statistics' ranges.
            models.Index(fields=["-created_at", "-id"], name="generation_job_recent_idx"),
            # Alerts: jobs finished in the last hour.
            models.Index(fields=["finished_at"], name="generation_job_finished_idx"),
            # A result's page lists the upscales and animations made from it.
            models.Index(
                fields=["source_output"], condition=Q(source_output__isnull=False), name="generation_job_derived_idx"
            ),
            # The gallery's favourites, in the person's order: only favourites are in it.
            models.Index(
                fields=["user", "-created_at", "-id"],
                condition=Q(favourite=True),
                name="generation_job_user_fav_idx",
            ),
            # Also, on PostgreSQL: generation_job_search_idx, the gallery's full-text search
            # (generation/search.py, created by migration 0022).
        ]
        constraints = [
            models.UniqueConstraint(fields=["user", "form_token"], name="generation_job_one_per_form_token"),
            # A paid prediction belongs to one job: it is never adopted twice.
            models.UniqueConstraint(
                fields=["prediction_id"],
                condition=~models.Q(prediction_id=""),
                name="generation_job_one_job_per_prediction",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.id} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("job_detail", args=[self.id])

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL_STATUSES

    @property
    def charge_key(self) -> str:
        return job_charge_key(self.id)

    @property
    def refund_key(self) -> str:
        return job_refund_key(self.id)

    @property
    def unit_cost(self) -> int:
        # What one result costs: cost is always num_outputs times it.
        return self.cost // self.num_outputs

    @property
    def delivered_outputs(self) -> int:
        return self.num_outputs - self.failed_outputs

    @property
    def is_video(self) -> bool:
        return self.kind in VIDEO_KINDS

    @property
    def reference(self) -> str:
        return f"job:{self.id}"

    @property
    def run_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    @property
    def seed_to_repeat(self) -> int | None:
        # Running a job again keeps the seed the person chose; a drawn one is drawn afresh.
        return self.seed if self.seed_chosen else None

    @property
    def shape_label(self) -> str:
        # Our name and the model's own value: "Wide 16:9"; a video's portrait is 9:16.
        value = self.model.aspect_ratios.get(self.aspect_ratio, "")
        value = "" if value in ("original", "match_input_image") else value
        return f"{self.get_aspect_ratio_display()} {value}".strip()

    @property
    def style_label(self) -> str:
        return styles_for(self.kind).get(self.style, (self.style.capitalize(), ""))[0]

    @property
    def can_cancel(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)


# A job's entries in the ledger, by idempotency key: one charge per result, and at most one
# refund of each. The first result's keep the keys a one-result job always had
# (`charge:<job>`, `refund:<job>`); the others add their index (`charge:<job>:1`, ...).
def job_charge_key(job_id: uuid.UUID, index: int = 0) -> str:
    return f"charge:{job_id}" if index == 0 else f"charge:{job_id}:{index}"


def job_refund_key(job_id: uuid.UUID, index: int = 0) -> str:
    return f"refund:{job_id}" if index == 0 else f"refund:{job_id}:{index}"


_PLACEHOLDER = uuid.UUID(int=0)


@functools.cache
def _path_pattern(name: str) -> str:
    # reverse() once per URL name, then string formatting: the gallery builds dozens of links.
    # Kept without the script prefix, which is added per call (it can differ per request).
    path = reverse(name, args=[_PLACEHOLDER]).removeprefix(get_script_prefix())
    return path.replace(str(_PLACEHOLDER), "{}")


def fast_path(name: str, object_id: uuid.UUID) -> str:
    return get_script_prefix() + _path_pattern(name).format(object_id)


def output_upload_to(instance: JobOutput | None, filename: str) -> str:
    # Keys carry no user data: a date and a random name.
    return f"outputs/{timezone.now():%Y/%m}/{uuid.uuid4().hex}.{file_extension(filename)}"


def thumbnail_upload_to(instance: JobOutput | None, filename: str) -> str:
    return f"thumbnails/{timezone.now():%Y/%m}/{uuid.uuid4().hex}.webp"


class JobOutput(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="outputs")
    index = models.PositiveSmallIntegerField(default=0)
    file = models.FileField(upload_to=output_upload_to, max_length=255)
    thumbnail = models.FileField(upload_to=thumbnail_upload_to, max_length=255, blank=True)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    # Not columns: a job page lists the jobs made from each result; a shared page its address.
    made_from_it: list[Job]
    actions: dict
    shared_url: str

    class Meta:
        ordering = ["job", "index"]
        constraints = [
            models.UniqueConstraint(fields=["job", "index"], name="generation_joboutput_one_per_index"),
        ]

    def __str__(self) -> str:
        return f"Output {self.index} of {self.job_id}"

    @property
    def is_video(self) -> bool:
        return self.content_type.startswith("video/")

    @property
    def poster_url(self) -> str:
        return fast_path("output_thumbnail", self.id) if self.thumbnail else ""

    @property
    def thumbnail_url(self) -> str:
        return fast_path("output_thumbnail", self.id)

    @property
    def job_url(self) -> str:
        return fast_path("job_detail", self.job_id)

    @property
    def favourite_url(self) -> str:
        return fast_path("job_favourite", self.job_id)

    @property
    def extension(self) -> str:
        return file_extension(self.file.name)


class JobReport(models.Model):
    """A person flags a finished job as a bad result; staff refund it (once) or dismiss it."""

    class Status(models.TextChoices):
        OPEN = "open", "Waiting for review"
        REFUNDED = "refunded", "Refunded"
        DISMISSED = "dismissed", "Dismissed"

    job = models.OneToOneField(Job, on_delete=models.PROTECT, related_name="report")
    reason = models.TextField(max_length=1000)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    staff_note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="generation_report_queue_idx")]

    def __str__(self) -> str:
        return f"Report on {self.job_id} ({self.status})"


class ProviderWebhook(models.Model):
    """One received provider webhook, by its delivery id: a redelivery is recognized and ignored."""

    webhook_id = models.CharField(max_length=100, unique=True)
    prediction_id = models.CharField(max_length=100, db_index=True)
    status = models.CharField(max_length=32, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    # Set once the delivery's work was done (its sync handed over): a redelivery of a webhook
    # that failed after this row was saved does the work instead of being ignored.
    processed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.webhook_id


class ShowcaseItem(models.Model):
    """A finished, shared result staff chose for the landing page. It shows only while the job
    is still succeeded, shared and not deleted: its owner stopping the share removes it."""

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="showcase")
    caption = models.CharField(max_length=120, blank=True, help_text="Optional; the prompt is shown when empty.")
    position = models.PositiveSmallIntegerField(default=0, help_text="Smaller numbers are shown first.")
    active = models.BooleanField(default=True, help_text="Shown on the landing page.")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["position", "-created_at"]
        verbose_name = "showcase item"

    def __str__(self) -> str:
        return self.caption or self.job.prompt[:60]

    def clean(self) -> None:
        job = getattr(self, "job", None)
        if job is None:
            return
        if job.status != Job.Status.SUCCEEDED or job.deleted_at is not None:
            raise ValidationError({"job": "Only a finished result can be shown."})
        if not job.share_token:
            raise ValidationError({"job": "Only a result its owner shares can be shown; ask them to share it first."})


class PredictionPoller(models.Model):
    """The one poller that finishes running predictions when no webhook will (no
    PUBLIC_BASE_URL). A lease row: whoever holds it polls; a poller that died lets it run out."""

    name = models.CharField(max_length=32, primary_key=True)
    holder = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    # When a poller task was last enqueued, so a burst of jobs enqueues one, not hundreds.
    kicked_at = models.DateTimeField(null=True, blank=True)
    last_pass_at = models.DateTimeField(null=True, blank=True)
    passes = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"poller {self.name}"
