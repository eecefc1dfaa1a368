"""Reads of the site's machinery for staff: the admin home, `supervise_qcluster --status`."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from operations.models import WorkerCluster

WORKING = "working"
# States that mean a cluster should be working and is not.
STALE_STATES = ("no recent heartbeat", "supervisor gone")


def worker_clusters() -> list[WorkerCluster]:
    """Supervised clusters seen in the last day, each with a `state` staff can act on."""
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
            cluster.state = WORKING
    return clusters


def worker_cluster_problems(clusters: list[WorkerCluster]) -> list[str]:
    """What an operator must look at: no cluster working, or one that stopped working without
    being stopped. Empty when all is well (a cluster stopped on purpose is not a problem)."""
    problems = [f"{cluster.name}: {cluster.state}" for cluster in clusters if cluster.state in STALE_STATES]
    if not any(cluster.state == WORKING for cluster in clusters):
        problems.insert(0, "no supervised cluster is working")
    return problems
