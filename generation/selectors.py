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


def worker_clusters() -> list:
    """Supervised clusters seen in the last day, each with a `state` staff can act on."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from generation.models import WorkerCluster

    now = timezone.now()
    clusters = list(WorkerCluster.objects.filter(seen_at__gte=now - timedelta(days=1)).order_by("name")[:50])
    stall = timedelta(seconds=settings.QCLUSTER_STALL_SECONDS)
    for cluster in clusters:
        if cluster.stopped_at:
            cluster.state = "stopped"
        elif now - cluster.seen_at > timedelta(minutes=2):
            cluster.state = "supervisor gone"  # it writes every few seconds
        elif cluster.last_heartbeat_at is None or now - cluster.last_heartbeat_at > stall:
            cluster.state = "no recent heartbeat"
        else:
            cluster.state = "working"
    return clusters
