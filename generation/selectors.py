from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import User
from generation.models import Batch, Job, JobOutput


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
