"""Driving a job to its end in a test: the task, then the poller, inline."""

from __future__ import annotations

import uuid
from unittest import mock

from generation.services import job_run, predictions_poll


def run_to_the_end(job_id: uuid.UUID, *, seconds: float = 10.0) -> None:
    """What a cluster does without webhooks: the task hands the prediction off, the poller
    finishes it (its sync tasks run inline here)."""
    from django_q.conf import Conf

    job_run(job_id=job_id)
    with mock.patch.object(Conf, "SYNC", True):
        predictions_poll(max_seconds=seconds, idle_seconds=0)
