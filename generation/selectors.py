from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import User
from generation.models import AIModel, Batch, Job, JobOutput, Kind
from generation.providers import provider_available


def user_jobs(*, user: User) -> QuerySet[Job]:
    return Job.objects.filter(user=user, deleted_at__isnull=True)


def user_batches(*, user: User) -> QuerySet[Batch]:
    return Batch.objects.filter(user=user, deleted_at__isnull=True)


def gallery_outputs(*, user: User, kind: str | None = None) -> QuerySet[JobOutput]:
    # Only what a gallery tile shows: the page renders dozens of these per request.
    outputs = (
        JobOutput.objects.filter(job__user=user, job__deleted_at__isnull=True, job__status=Job.Status.SUCCEEDED)
        .select_related("job")
        .only("id", "index", "thumbnail", "content_type", "created_at", "job__id", "job__prompt", "job__kind")
    )
    if kind:
        outputs = outputs.filter(job__kind=kind)
    return outputs.order_by("-created_at", "-index")


def catalog_credit_costs() -> dict[str, int]:
    """What each offering costs now, from the catalog staff edit: the cheapest model people can
    choose of it. Keys: "image", "image_edit", and "video_<seconds>s" per video length."""
    costs: dict[str, int] = {}
    models = AIModel.objects.filter(enabled=True).values_list("kind", "duration_seconds", "provider", "credit_cost")
    for kind, seconds, provider, cost in models:
        if not provider_available(provider):
            continue
        key = f"{kind}_{seconds}s" if kind == Kind.VIDEO else kind
        costs[key] = min(cost, costs.get(key, cost))
    return costs
