"""The sweeper: nothing stays running forever, and no queued job waits for a task that was lost."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from core.skips import item_guard
from generation.models import Job
from generation.queue import job_enqueue
from generation.services.common import MESSAGE_TIMEOUT, Status, job_lease, job_prediction_cancel
from generation.services.finishing import job_fail, job_finish
from generation.services.polling import has_running_predictions, poller_kick
from generation.services.running import job_ask_provider


def sweep_stuck_jobs() -> dict[str, int]:
    """Nothing stays running forever: finish, fail or restart jobs whose worker went away."""
    now = timezone.now()
    grace = timedelta(seconds=settings.JOB_SWEEP_GRACE_SECONDS)
    counts = {"finished": 0, "failed": 0, "restarted": 0}

    # Past the deadline: take the job over, then ask the provider once.
    overdue = Job.objects.filter(status=Status.RUNNING, deadline_at__lt=now - grace).values_list("pk", flat=True)
    for job_id in list(overdue[:200]):
        # One job that cannot be settled stops neither the others nor the requeue below.
        with item_guard(loop="sweeper", item=f"job {job_id}"):
            outcome = _sweep_overdue(job_id, now - grace)
            if outcome:
                counts[outcome] += 1

    # Lost their worker before the deadline, or their task was lost (a queue restart, a
    # cluster killed with tasks it had taken, an enqueue that failed): send them again. Each
    # job at most once per JOB_REQUEUE_AFTER_SECONDS: the conditional update of
    # last_enqueued_at decides, so a long backlog does not gain a duplicate task every minute.
    # The claim makes a duplicate delivery harmless anyway.
    requeue_before = now - timedelta(seconds=settings.JOB_REQUEUE_AFTER_SECONDS)
    due = (Q(status=Status.RUNNING, lease_until__lt=now, deadline_at__gte=now - grace) | Q(status=Status.QUEUED)) & (
        Q(last_enqueued_at__lt=requeue_before) | Q(last_enqueued_at__isnull=True, created_at__lt=requeue_before)
    )
    for job_id in list(Job.objects.filter(due).values_list("pk", flat=True)[:200]):
        with item_guard(loop="sweeper", item=f"job {job_id}"):
            if Job.objects.filter(due, pk=job_id).update(last_enqueued_at=now):
                job_enqueue(job_id)
                counts["restarted"] += 1
    if not settings.PUBLIC_BASE_URL and has_running_predictions():
        poller_kick()  # a poller lost with its worker is started again within the minute
    return counts


def _sweep_overdue(job_id, deadline_before) -> str:
    """Take an overdue job over (a fresh lease keeps a worker from racing us), ask the provider
    once, and finish or fail it. Returns what happened ("finished", "failed" or "")."""
    taken = Job.objects.filter(pk=job_id, status=Status.RUNNING, deadline_at__lt=deadline_before).update(
        lease_until=timezone.now() + job_lease()
    )
    if not taken:
        return ""
    job = Job.objects.select_related("model").get(pk=job_id)
    # Known by id, or found by the job's own id if a create may have gone through.
    prediction = job_ask_provider(job=job)
    if prediction is not None and prediction.is_final:
        job_finish(job=job, prediction=prediction)
        return "finished"
    job_prediction_cancel(job)
    return "failed" if job_fail(job_id=job.pk, message=MESSAGE_TIMEOUT, provider_error="swept: past deadline") else ""


def job_requeue_lost(*, job_id: uuid.UUID, enqueued_at: datetime) -> bool:
    """A run task of this job, enqueued at `enqueued_at`, was held by a cluster that is now dead
    (`supervise_qcluster` hands such tasks back after a restart). True: the caller sends it
    again now, and the job is marked as sent. False when the job is final, or when it was sent
    again after that task (by the sweeper, or an earlier give-back): whoever sent it later
    decided, so the job gets one new task, not two.

    A running job's lease belonged to the dead cluster's worker: it ends now, so the task sent
    again takes the job over at once instead of a minute later."""
    now = timezone.now()
    not_sent_since = Q(pk=job_id) & (Q(last_enqueued_at__lte=enqueued_at) | Q(last_enqueued_at__isnull=True))
    return bool(
        Job.objects.filter(not_sent_since, status=Status.QUEUED).update(last_enqueued_at=now)
        or Job.objects.filter(not_sent_since, status=Status.RUNNING).update(last_enqueued_at=now, lease_until=now)
    )
