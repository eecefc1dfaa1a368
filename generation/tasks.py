"""django-q2 tasks. Each takes an id, loads, and calls a service; each is safe to run twice."""

from __future__ import annotations

import uuid

from django_q.tasks import async_task

from dreampixel.logging import bound
from generation import services


def run_job(job_id: str) -> None:
    with bound(job_id=job_id):
        services.job_run(job_id=uuid.UUID(job_id))


def sync_job(job_id: str) -> None:
    with bound(job_id=job_id):
        services.job_sync(job_id=uuid.UUID(job_id))


def poll_predictions() -> dict[str, int]:
    # Runs while Replicate predictions run without webhooks, then ends (see services.running).
    return services.predictions_poll()


def sweep_stuck_jobs() -> dict[str, int]:
    return services.sweep_stuck_jobs()


def cluster_heartbeat() -> None:
    # Nothing to do: finishing is the point. The supervisor enqueues it while its cluster is
    # idle, and the cluster's monitor records each finished task (generation.supervisor).
    return None


def cleanup() -> dict[str, int]:
    from generation.cleanup import cleanup_run

    return {part.name: part.count for part in cleanup_run(dry_run=False)}


def check_alerts() -> list[str]:
    from generation.alerts import alerts_check

    return [alert.key for alert in alerts_check()]


def enqueue_run(job_id: uuid.UUID) -> None:
    async_task("generation.tasks.run_job", str(job_id), task_name=f"job-{job_id}", group="jobs")


def enqueue_sync(job_id: uuid.UUID) -> None:
    async_task("generation.tasks.sync_job", str(job_id), task_name=f"sync-{job_id}", group="jobs")


def enqueue_poll() -> None:
    async_task("generation.tasks.poll_predictions", task_name="poll-predictions", group="poller")
