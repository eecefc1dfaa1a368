"""The provider answers 500/429/timeouts for a while, then recovers: jobs finish or are
refunded, and nothing stays running."""

from __future__ import annotations

import time
from unittest import mock

import pytest
from django_q.conf import Conf

from billing.models import LedgerEntry
from billing.services import balance_of
from generation.models import Job
from generation.services import job_create, predictions_poll, sweep_stuck_jobs
from generation.tests.factories import replicate_model
from tests.concurrency import jobs_run_in_threads
from tests.faults.settled import assert_every_job_settled

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_outage_then_recovery_leaves_every_job_finished_or_refunded(creator, fake_replicate, settings):
    settings.PROVIDER_MAX_RETRIES = 3
    settings.REPLICATE_TIMEOUT = 1
    model = replicate_model(timeout_seconds=20)
    jobs = [job_create(user=creator, model=model, prompt=f"outage {n}", aspect_ratio="square") for n in range(12)]
    # The outage: errors of every kind, and answers too slow for the client's timeout.
    fake_replicate.fail_next(8, status=500)
    fake_replicate.fail_next(6, status=429)
    fake_replicate.fail_next(6, status=503)
    fake_replicate.delay_next(4, 1.5)

    jobs_run_in_threads(jobs, threads=3)
    # Then the cluster's part: the poller finishes what was handed off, the sweeper runs again
    # the jobs that could not tell whether their create went through.
    with mock.patch.object(Conf, "SYNC", True):
        until = time.monotonic() + 60
        while time.monotonic() < until and Job.objects.exclude(status__in=Job.FINAL_STATUSES).exists():
            sweep_stuck_jobs()
            predictions_poll(max_seconds=1, idle_seconds=0)
            time.sleep(0.2)

    statuses = set(Job.objects.values_list("status", flat=True))
    assert statuses <= {"succeeded", "failed"}
    assert Job.objects.filter(status="succeeded").count() >= 6  # the provider came back
    for job in Job.objects.all():
        refunds = LedgerEntry.objects.filter(kind="refund", reference=f"job:{job.id}").count()
        assert refunds == (1 if job.status == "failed" else 0)
        assert LedgerEntry.objects.filter(idempotency_key=f"charge:{job.id}").count() == 1
    succeeded = Job.objects.filter(status="succeeded").count()
    assert balance_of(creator) == 10_000 - 500 * succeeded
    # A create that timed out but went through is found and used, not paid for twice.
    assert_every_job_settled(fake_replicate, note="outage")
