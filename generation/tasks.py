"""django-q2 tasks. Each takes an id, loads, and calls a service; each is safe to run twice."""

from __future__ import annotations

import uuid

from django_q.tasks import async_task

from generation import services


def run_job(job_id: str) -> None:
    services.job_run(job_id=uuid.UUID(job_id))


def sync_job(job_id: str) -> None:
    services.job_sync(job_id=uuid.UUID(job_id))


def sweep_stuck_jobs() -> dict[str, int]:
    return services.sweep_stuck_jobs()


def enqueue_run(job_id: uuid.UUID) -> None:
    async_task("generation.tasks.run_job", str(job_id), task_name=f"job-{job_id}", group="jobs")


def enqueue_sync(job_id: uuid.UUID) -> None:
    async_task("generation.tasks.sync_job", str(job_id), task_name=f"sync-{job_id}", group="jobs")
