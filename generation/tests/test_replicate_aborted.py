"""Replicate's `aborted` status, and predictions of shapes the product has never seen.

Replicate documents a final status `aborted` (the prediction's deadline passed before it could
start). The newest `replicate` client refuses it with a pydantic error, and the account's list
covers every prediction of the account, runs started on Replicate's website included: one such
prediction anywhere in the list must stop nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from unittest import mock

import httpx
import pytest
import time_machine
from django.utils import timezone
from django_q.conf import Conf

from billing.models import LedgerEntry
from billing.services import balance_of
from generation.models import Job
from generation.providers.replicate import token_fingerprint
from generation.services import MESSAGE_UNAVAILABLE, job_create, job_run, predictions_poll_pass, sweep_stuck_jobs
from generation.services.finishing import job_sync
from generation.services.running import job_claim
from generation.tests.factories import replicate_model
from generation.tests.polling import run_to_the_end

pytestmark = pytest.mark.django_db

URL = "/webhooks/replicate/"


def refunds(job: Job) -> int:
    return LedgerEntry.objects.filter(kind="refund", reference=f"job:{job.id}").count()


def new_job(creator, prompt: str = "A lighthouse at dusk", **model_fields) -> Job:
    return job_create(user=creator, model=replicate_model(**model_fields), prompt=prompt, aspect_ratio="square", seed=3)


def others_in_the_list(fake) -> None:
    """What another app on the same account, or a run from Replicate's website, leaves in the
    list: an aborted prediction, a status nobody has seen yet, and an item of an odd shape."""
    fake.add_prediction(status="aborted", source="web")
    fake.add_prediction(status="paused-for-review")
    fake.add_prediction(status="succeeded", input="not an object", output={"video": 3}, metrics=None)


def test_an_aborted_prediction_fails_its_job_and_refunds_it_once(creator, fake_replicate):
    job = new_job(creator, "A storm [aborted]")
    run_to_the_end(job.id)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error_message == MESSAGE_UNAVAILABLE
    assert "aborted" in job.provider_error
    job_sync(job_id=job.id)
    job_run(job_id=job.id)
    assert refunds(job) == 1
    assert balance_of(creator) == 10_000


def test_another_apps_aborted_prediction_in_the_list_stops_no_poller(creator, fake_replicate):
    others_in_the_list(fake_replicate)
    job = new_job(creator)
    run_to_the_end(job.id)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    # The poller's own pass reads the list with those items in it and raises nothing.
    assert fake_replicate.list_calls >= 1
    assert predictions_poll_pass() == 0


def test_the_poller_finishes_every_job_with_an_aborted_prediction_among_them(creator, fake_replicate):
    fake_replicate.predict_seconds = 60
    jobs = [new_job(creator, f"Picture {n}") for n in range(3)]
    aborted = new_job(creator, "Never started [aborted]")
    for job in [*jobs, aborted]:
        job_run(job_id=job.id)
    others_in_the_list(fake_replicate)
    for job in [*jobs, aborted]:
        fake_replicate.set_predict_seconds(Job.objects.get(pk=job.pk).prediction_id, 0)
    with mock.patch.object(Conf, "SYNC", True):  # the finishing tasks it enqueues run inline
        assert predictions_poll_pass() == 4
    statuses = {job.pk: Job.objects.get(pk=job.pk).status for job in [*jobs, aborted]}
    assert [statuses[job.pk] for job in jobs] == [Job.Status.SUCCEEDED] * 3
    assert statuses[aborted.pk] == Job.Status.FAILED
    assert refunds(aborted) == 1


def test_the_sweeper_goes_on_past_a_job_whose_search_meets_an_aborted_prediction(creator, fake_replicate, settings):
    # One job's worker died between "create" and saving the id: the sweeper looks for it in the
    # list, which holds another app's aborted prediction. The jobs after it are still settled,
    # and the requeue half of the sweep still runs.
    fake_replicate.predict_seconds = 60
    lost = new_job(creator, "Lost on the way", timeout_seconds=30)
    job_claim(lost.id)
    Job.objects.filter(pk=lost.pk).update(provider_token=token_fingerprint("r8_test_token"))
    done = new_job(creator, "Done meanwhile", timeout_seconds=30)
    job_run(job_id=done.id)
    done.refresh_from_db()
    fake_replicate.set_predict_seconds(done.prediction_id, 0)
    others_in_the_list(fake_replicate)
    waiting = new_job(creator, "Its task was lost")

    later = timezone.now() + timedelta(seconds=30 + settings.JOB_SWEEP_GRACE_SECONDS + settings.JOB_LEASE_SECONDS)
    later = max(later, timezone.now() + timedelta(seconds=settings.JOB_REQUEUE_AFTER_SECONDS + 5))
    with time_machine.travel(later):
        counts = sweep_stuck_jobs()
    assert counts == {"finished": 1, "failed": 1, "restarted": 1}
    assert Job.objects.get(pk=lost.pk).status == Job.Status.FAILED
    assert refunds(lost) == 1
    assert Job.objects.get(pk=done.pk).status == Job.Status.SUCCEEDED
    assert Job.objects.get(pk=waiting.pk).last_enqueued_at is not None


def test_a_worker_that_lost_a_create_answer_finds_its_prediction_past_an_aborted_one(creator, fake_replicate):
    # The create went through but its answer was lost: the worker searches the list (another
    # app's aborted prediction is in it) for the one made for its job, and finds it.
    others_in_the_list(fake_replicate)
    fake_replicate.drop_next_creates(1)
    job = new_job(creator, "A fox in the snow")
    run_to_the_end(job.id)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert fake_replicate.created_count == 1


def test_a_worker_taking_over_a_job_searches_past_an_aborted_prediction(creator, fake_replicate):
    # The first worker died after choosing its token, before any create: the next one searches,
    # finds nothing of its own, and creates it.
    job = new_job(creator, "A heron")
    job_claim(job.id)
    Job.objects.filter(pk=job.pk).update(
        provider_token=token_fingerprint("r8_test_token"), lease_until=timezone.now() - timedelta(seconds=1)
    )
    others_in_the_list(fake_replicate)
    run_to_the_end(job.id)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert fake_replicate.created_count == 1


def test_a_signed_aborted_webhook_fails_the_job_and_refunds_it(
    client, creator, fake_replicate, sync_queue, settings, django_capture_on_commit_callbacks
):
    fake_replicate.predict_seconds = 60
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"  # webhooks on: no poller runs
    job = new_job(creator, "Queued too long [aborted]")
    job_run(job_id=job.id)
    job.refresh_from_db()
    fake_replicate.set_predict_seconds(job.prediction_id, 0)
    # The body Replicate sends is the prediction as its API shows it.
    prediction = httpx.get(
        f"{fake_replicate.url}/v1/predictions/{job.prediction_id}",
        headers={"Authorization": "Bearer r8_test_token"},
    ).json()
    assert prediction["status"] == "aborted"
    body = json.dumps(prediction).encode()
    settings.REPLICATE_WEBHOOK_SECRET = fake_replicate.webhook_secret
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(URL, body, content_type="application/json", headers=fake_replicate.sign(body))
    assert response.status_code == 200
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert refunds(job) == 1
    assert balance_of(creator) == 10_000
