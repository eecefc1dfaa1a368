from __future__ import annotations

import contextlib
import statistics
import uuid
from datetime import datetime

from django.core.cache import cache
from django.db.models import QuerySet
from redis.exceptions import RedisError

from accounts.models import User
from core.keyset import Key
from core.versioned import version_bump, versioned
from generation.models import AIModel, Batch, Job, JobOutput, Kind, ShowcaseItem
from generation.providers import provider_available

# The gallery's order, newest job first: walks the person's (user, -created_at, -id) job
# index and each job's outputs by (job, index), never the whole outputs table.
GALLERY_KEYS = (Key("job__created_at", datetime), Key("job_id", uuid.UUID), Key("index", int))


def user_jobs(*, user: User) -> QuerySet[Job]:
    return Job.objects.filter(user=user, deleted_at__isnull=True)


# What the status fragment shows while a job waits (generation/views.py): open job pages poll it.
WAITING_FIELDS = (
    "id",
    "user_id",
    "model_id",
    "status",
    "kind",
    "prompt",
    "cost",
    "num_outputs",
    "aspect_ratio",
    "source_id",
    "created_at",
    "started_at",
    "finished_at",
    "error_message",
)


def job_waiting(*, user: User, job_id: uuid.UUID) -> Job | None:
    """One of the person's jobs with only the fields its status fragment shows, or None."""
    return user_jobs(user=user).filter(pk=job_id).only(*WAITING_FIELDS).first()


def deleted_job_ids(ids: list[str]) -> set[str]:
    """Of these job ids (from ledger references), those deleted: their page is gone."""
    valid = []
    for value in ids:
        try:
            valid.append(uuid.UUID(value))
        except ValueError:
            continue
    found = Job.objects.filter(pk__in=valid, deleted_at__isnull=False).values_list("pk", flat=True)
    return {str(pk) for pk in found}


def user_output(*, user: User, output_id: uuid.UUID) -> JobOutput | None:
    """One of the person's finished results (to upscale, vary, remix or animate), or None."""
    return (
        JobOutput.objects.select_related("job")
        .filter(pk=output_id, job__user=user, job__deleted_at__isnull=True, job__status=Job.Status.SUCCEEDED)
        .first()
    )


def derived_jobs(*, outputs: list[JobOutput]) -> dict[uuid.UUID, list[Job]]:
    """The jobs made from each of these results (upscales, animations, variations), oldest
    first, by result: one query through the index on source_output."""
    made: dict[uuid.UUID, list[Job]] = {}
    if not outputs:
        return made
    jobs = (
        Job.objects.filter(source_output__in=[output.id for output in outputs], deleted_at__isnull=True)
        .select_related("model")
        .only("id", "kind", "status", "upscale_factor", "duration_seconds", "source_output_id", "model__name")
        .order_by("created_at")
    )
    for job in jobs:
        assert job.source_output_id is not None  # filtered above
        made.setdefault(job.source_output_id, []).append(job)
    return made


def user_batches(*, user: User) -> QuerySet[Batch]:
    return Batch.objects.filter(user=user, deleted_at__isnull=True)


# Only what a gallery tile shows (templates/generation/gallery.html): a page renders dozens of
# them, and a field left out would be read with a query of its own per tile.
GALLERY_TILE_FIELDS = (
    "id",
    "index",
    "thumbnail",
    "content_type",
    "created_at",
    "job__id",
    "job__prompt",
    "job__kind",
    "job__created_at",
    "job__num_outputs",
    "job__failed_outputs",
    "job__favourite",
)


def gallery_outputs(*, user: User, kind: str | None = None, favourites: bool = False) -> QuerySet[JobOutput]:
    outputs = (
        JobOutput.objects.filter(job__user=user, job__deleted_at__isnull=True, job__status=Job.Status.SUCCEEDED)
        .select_related("job")
        .only(*GALLERY_TILE_FIELDS)
    )
    if kind:
        outputs = outputs.filter(job__kind=kind)
    if favourites:
        outputs = outputs.filter(job__favourite=True)
    return outputs.order_by("-job__created_at", "-job_id", "-index")


# The catalog's prices are read by every signed-in page (the header's low-balance hint) and
# change only when staff edit the catalog: its enabled models' price rows are kept under the
# catalog's version (core/versioned.py), which `catalog_changed` replaces once a change commits.
CATALOG_SECONDS = 5 * 60
CATALOG_VERSION_KEY = "generation:catalog-version"


def _catalog_price_rows() -> list[tuple[str, int | None, int | None, str, int]]:
    return list(
        AIModel.objects.filter(enabled=True)
        .order_by()
        .values_list("kind", "duration_seconds", "upscale_factor", "provider", "credit_cost")
    )


def catalog_changed() -> None:
    """A model of the catalog was saved or deleted: prices read before are not served again."""
    version_bump(CATALOG_VERSION_KEY)


def catalog_credit_costs() -> dict[str, int]:
    """What each offering costs now, from the catalog staff edit: the cheapest model people can
    choose of it. Keys: "image", "image_edit", "video_<seconds>s" and "animate_<seconds>s" per
    clip length, "upscale_<factor>x" per factor. An image's price is per result."""
    costs: dict[str, int] = {}
    # Which providers are available is settings, read on each call; only the rows are kept.
    rows = versioned(
        version_key=CATALOG_VERSION_KEY,
        key="generation:catalog-prices",
        make=_catalog_price_rows,
        seconds=CATALOG_SECONDS,
    )
    for kind, seconds, factor, provider, cost in rows:
        if not provider_available(provider):
            continue
        if kind in (Kind.VIDEO, Kind.ANIMATE):
            key = f"{kind}_{seconds}s"
        elif kind == Kind.UPSCALE:
            key = f"{kind}_{factor}x"
        else:
            key = kind
        costs[key] = min(cost, costs.get(key, cost))
    return costs


def catalog_making_costs() -> dict[str, int]:
    """What one can make from nothing but a prompt or a photo (billing's price list, whose
    cheapest entry is the low-balance line): an upscale needs a result first, so is left out."""
    return {key: cost for key, cost in catalog_credit_costs().items() if not key.startswith(Kind.UPSCALE)}


TYPICAL_SAMPLE = 20  # recent finished jobs a model's typical run time is taken from
TYPICAL_CACHE_SECONDS = 300


def model_typical_seconds(*, model_id: int) -> int | None:
    """The median run time of a model's recent successful jobs, for "usually about N s" while
    a job waits; the catalog's estimate (`expected_seconds`) until a first job has finished.
    Cached: every open job page asks, and it changes slowly. None when neither is known."""
    key = f"generation:typical-seconds:{model_id}"
    try:
        cached = cache.get(key)
    except RedisError:  # Redis down: the job page still shows, with the estimate read afresh
        cached = None
    if cached is not None:
        return cached or None
    # The newest few by an index on (model, status, finished_at): the same cost at any table size.
    rows = (
        Job.objects.filter(model_id=model_id, status=Job.Status.SUCCEEDED, started_at__isnull=False)
        .order_by("-finished_at")
        .values_list("started_at", "finished_at")[:TYPICAL_SAMPLE]
    )
    # started_at is never null here (filtered above); finished_at of a succeeded job is not either,
    # but the column allows it.
    durations = [(finished - started).total_seconds() for started, finished in rows if started and finished]
    if durations:
        typical = max(1, round(statistics.median(durations)))
    else:
        typical = AIModel.objects.filter(pk=model_id).values_list("expected_seconds", flat=True).first() or 0
    with contextlib.suppress(RedisError):
        cache.set(key, typical, TYPICAL_CACHE_SECONDS)
    return typical or None


SHOWCASE_SIZE = 6


def showcase_items() -> list:
    """What the landing page features: staff's picks that are still finished, shared and not
    deleted, with what a tile shows (one output, the photo before an edit)."""
    return list(
        ShowcaseItem.objects.filter(
            active=True,
            job__status=Job.Status.SUCCEEDED,
            job__share_token__isnull=False,
            job__deleted_at__isnull=True,
        )
        .select_related("job")
        .only("id", "caption", "job__id", "job__prompt", "job__kind", "job__share_token", "job__source_id")
        .order_by("position", "-created_at")[:SHOWCASE_SIZE]
    )
