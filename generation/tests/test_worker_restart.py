"""A worker killed after creating the prediction: the job resumes that same prediction."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from billing.services import balance_of
from generation.models import Job
from generation.services import job_create, sweep_stuck_jobs
from generation.tests.factories import replicate_model
from generation.tests.test_qcluster import ROOT, database_url, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_worker_killed_before_saving_its_prediction_id_finds_that_prediction_again(
    creator, fake_replicate, monkeypatch
):
    # The create reaches Replicate (the prediction exists, and is paid for) but its answer is
    # late, and the worker is killed before it could save the id: the next attempt finds
    # exactly this job's prediction by the job's id, and creates no second one.
    from django_q.conf import Conf

    fake_replicate.predict_seconds = 1.5
    job = job_create(user=creator, model=replicate_model(timeout_seconds=600), prompt="Survivor", aspect_ratio="square")
    # Another job with the same inputs, created at the same moment: it must not be adopted.
    twin = job_create(
        user=creator, model=replicate_model(timeout_seconds=600), prompt="Survivor", aspect_ratio="square"
    )
    monkeypatch.setattr(Conf, "SYNC", True)  # from here on, what the sweeper enqueues runs inline
    fake_replicate.delay_next(1, 30)

    worker = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", f"from generation.tasks import run_job; run_job('{job.id}')"],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": database_url(),
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "REPLICATE_API_TOKENS": "r8_test_token",
            "REPLICATE_BASE_URL": fake_replicate.url,
            "REPLICATE_CREATE_WAIT": "1",
        },
    )
    try:
        wait_for(lambda: fake_replicate.created_count == 1, 30, "the worker never created its prediction")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    stuck = Job.objects.get(pk=job.pk)
    assert stuck.status == Job.Status.RUNNING
    assert stuck.prediction_id == "" and stuck.provider_token  # a create may have gone through
    (paid,) = fake_replicate.predictions
    from generation.services import job_run

    job_run(job_id=twin.id)  # the twin runs meanwhile and makes its own

    # Once the dead worker's lease has run out, the sweeper hands the job to a new worker.
    with time_machine.travel(timezone.now() + timedelta(seconds=settings.JOB_LEASE_SECONDS + 5), tick=True):
        assert sweep_stuck_jobs()["restarted"] == 1

    job.refresh_from_db()
    twin.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert job.prediction_id == paid
    assert twin.prediction_id != paid and twin.status == Job.Status.SUCCEEDED
    assert fake_replicate.created_count == 2
    assert job.attempts == 2
    assert balance_of(creator) == 10_000 - 2 * 500


def test_a_job_past_its_deadline_is_finished_or_failed_by_the_sweeper(creator, fake_replicate):
    fake_replicate.predict_seconds = 60
    finished_meanwhile = job_create(user=creator, model=replicate_model(), prompt="Done late", aspect_ratio="square")
    never_finishes = job_create(user=creator, model=replicate_model(), prompt="Stuck", aspect_ratio="square")
    from generation.providers import PredictionRequest, get_provider
    from generation.services.running import job_claim

    for job in (finished_meanwhile, never_finishes):
        job_claim(job.id)
        prediction = get_provider("replicate").create(
            PredictionRequest(model_ref="black-forest-labs/flux-schnell", input={})
        )
        Job.objects.filter(pk=job.pk).update(prediction_id=prediction.id)
    fake_replicate.set_predict_seconds(Job.objects.get(pk=finished_meanwhile.pk).prediction_id, 0)

    with time_machine.travel(timezone.now() + timedelta(minutes=10), tick=True):
        result = sweep_stuck_jobs()
    assert result == {"finished": 1, "failed": 1, "restarted": 0}
    assert Job.objects.get(pk=finished_meanwhile.pk).status == Job.Status.SUCCEEDED
    stuck = Job.objects.get(pk=never_finishes.pk)
    assert stuck.status == Job.Status.FAILED
    assert fake_replicate.predictions[stuck.prediction_id].cancel_count == 1
    assert balance_of(creator) == 10_000 - 500
    assert not Job.objects.filter(status=Job.Status.RUNNING).exists()
