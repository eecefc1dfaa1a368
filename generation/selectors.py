from __future__ import annotations

import uuid
from datetime import datetime

from django.db.models import QuerySet

from accounts.models import User
from dreampixel.keyset import Key
from generation.models import Batch, Job, JobOutput

# The gallery's order, newest job first: walks the person's (user, -created_at, -id) job
# index and each job's outputs by (job, index), never the whole outputs table.
GALLERY_KEYS = (Key("job__created_at", datetime), Key("job_id", uuid.UUID), Key("index", int))


def user_jobs(*, user: User) -> QuerySet[Job]:
    return Job.objects.filter(user=user, deleted_at__isnull=True)


def user_batches(*, user: User) -> QuerySet[Batch]:
    return Batch.objects.filter(user=user, deleted_at__isnull=True)


def gallery_outputs(*, user: User, kind: str | None = None) -> QuerySet[JobOutput]:
    # Only what a gallery tile shows: the page renders dozens of these per request.
    outputs = (
        JobOutput.objects.filter(job__user=user, job__deleted_at__isnull=True, job__status=Job.Status.SUCCEEDED)
        .select_related("job")
        .only(
            "id",
            "index",
            "thumbnail",
            "content_type",
            "created_at",
            "job__id",
            "job__prompt",
            "job__kind",
            "job__created_at",
        )
    )
    if kind:
        outputs = outputs.filter(job__kind=kind)
    return outputs.order_by("-job__created_at", "-job_id", "-index")
