"""django-q2 tasks of generation. Each takes an id, loads, and calls a service; each is safe to
run twice. They are enqueued by name (generation/queue.py, operations/schedules.py)."""

from __future__ import annotations

import uuid

from core.logging import bound
from generation import services


def run_job(job_id: str) -> None:
    with bound(job_id=job_id):
        services.job_run(job_id=uuid.UUID(job_id))


def sync_job(job_id: str) -> None:
    with bound(job_id=job_id):
        services.job_sync(job_id=uuid.UUID(job_id))


def poll_predictions() -> dict[str, int]:
    # Runs while Replicate predictions run without webhooks, then ends (services/polling.py).
    return services.predictions_poll()


def sweep_stuck_jobs() -> dict[str, int]:
    return services.sweep_stuck_jobs()
