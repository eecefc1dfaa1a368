"""Handing work to django-q2. The task bodies are in generation/tasks.py, named here by path, so
the services that enqueue never import the tasks that call them."""

from __future__ import annotations

import logging
import uuid

from django_q.tasks import async_task

logger = logging.getLogger("generation.services")

RUN_JOB_TASK = "generation.tasks.run_job"  # its one argument is the job's id


def job_enqueue(job_id: uuid.UUID) -> bool:
    """Hand the job's run task to the queue; False if the queue could not take it.

    A queue that is down is not the person's problem: their job is committed and charged, so
    it stays queued and the sweeper sends it again once its `last_enqueued_at` is old enough.
    Whatever the broker raises (Redis, or the database for the ORM broker) is caught here."""
    try:
        async_task(RUN_JOB_TASK, str(job_id), task_name=f"job-{job_id}", group="jobs")
    except Exception:
        logger.exception(
            "could not enqueue job %s; the sweeper will send it again", job_id, extra={"job_id": str(job_id)}
        )
        return False
    return True


def job_sync_enqueue(job_id: uuid.UUID) -> None:
    async_task("generation.tasks.sync_job", str(job_id), task_name=f"sync-{job_id}", group="jobs")


def poller_enqueue() -> None:
    async_task("generation.tasks.poll_predictions", task_name="poll-predictions", group="poller")
