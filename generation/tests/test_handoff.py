"""No worker waits on the provider: the task records the prediction and returns; the webhook or
the poller finishes the job."""

from __future__ import annotations

import json
import threading
import time
from unittest import mock

import pytest
from django.db import connection
from django_q.conf import Conf

from billing.services import balance_of
from generation.models import Job, PredictionPoller
from generation.providers import get_provider
from generation.services import job_cancel, job_create, job_run, predictions_poll
from generation.services.common import model_seconds_note
from generation.services.running import prediction_create_wait
from generation.tests.factories import AIModelFactory, replicate_model

pytestmark = pytest.mark.django_db
# The pollers run in threads, on connections of their own that see only what was committed.
threaded = pytest.mark.django_db(transaction=True)


def test_a_task_gives_its_worker_back_while_a_minute_long_prediction_runs(creator, fake_replicate):
    fake_replicate.predict_seconds = 60
    job = job_create(
        user=creator, model=replicate_model(timeout_seconds=600), prompt="A long video", aspect_ratio="square"
    )
    started = time.monotonic()
    job_run(job_id=job.id)
    assert time.monotonic() - started < 3
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING and job.prediction_id and job.provider_token
    assert fake_replicate.status_of(job.prediction_id) in ("starting", "processing")
    # Held until the deadline, so a second delivery of the task does not start it again.
    assert job.lease_until > job.deadline_at
    job_run(job_id=job.id)
    assert fake_replicate.created_count == 1


@threaded
def test_the_poller_finishes_a_job_within_two_seconds_of_its_prediction(creator, fake_replicate, settings):
    settings.JOB_POLL_INTERVAL = 1.0  # the production cadence
    fake_replicate.predict_seconds = 60
    job = job_create(user=creator, model=replicate_model(timeout_seconds=600), prompt="Poll me", aspect_ratio="square")
    job_run(job_id=job.id)
    job.refresh_from_db()

    def poller():
        try:
            with mock.patch.object(Conf, "SYNC", True):
                predictions_poll(max_seconds=8, idle_seconds=0)
        finally:
            connection.close()

    thread = threading.Thread(target=poller)
    thread.start()
    time.sleep(1.3)  # a few passes see it running
    done = time.monotonic()
    fake_replicate.set_predict_seconds(job.prediction_id, 0)
    while time.monotonic() - done < 5 and Job.objects.get(pk=job.pk).status == Job.Status.RUNNING:
        time.sleep(0.05)
    lag = time.monotonic() - done
    thread.join(timeout=15)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    # About two seconds: a pass each second, then the finishing (a little slack for a busy CI).
    assert lag < 2.5, f"finished {lag:.2f} s after its prediction"
    assert PredictionPoller.objects.get().last_pass_at is not None


@threaded
def test_one_poller_at_a_time(creator, fake_replicate):
    fake_replicate.predict_seconds = 60
    job = job_create(user=creator, model=replicate_model(timeout_seconds=600), prompt="Once", aspect_ratio="square")
    job_run(job_id=job.id)
    results = []

    def poller():
        try:
            results.append(predictions_poll(max_seconds=1, idle_seconds=0))
        finally:
            connection.close()

    threads = [threading.Thread(target=poller) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(r["passes"] > 0 for r in results) == [False, True]
    # Each pass looked at every running prediction in one list call, not one call each.
    assert fake_replicate.list_calls <= results[0]["passes"] + results[1]["passes"] + 1


def test_a_person_cancels_a_handed_off_job_and_its_prediction_with_the_token_that_made_it(
    creator, fake_replicate, settings
):
    fake_replicate.tokens.add("r8_other")
    fake_replicate.accounts = {"r8_test_token": "a", "r8_other": "b"}
    settings.REPLICATE_API_TOKENS = ["r8_test_token", "r8_other"]
    fake_replicate.predict_seconds = 60
    model = replicate_model(timeout_seconds=600)
    jobs = [job_create(user=creator, model=model, prompt=f"Never mind {n}", aspect_ratio="square") for n in range(2)]
    for job in jobs:
        job_run(job_id=job.id)
        job.refresh_from_db()
        job_cancel(job=job)
        job.refresh_from_db()
        assert job.status == Job.Status.CANCELED
        assert fake_replicate.status_of(job.prediction_id) == "canceled"
    assert balance_of(creator) == 10_000
    with mock.patch.object(Conf, "SYNC", True):
        assert predictions_poll(max_seconds=1, idle_seconds=0)["running"] == 0


def test_the_deadline_still_holds_without_a_worker(creator, fake_replicate):
    fake_replicate.predict_seconds = 60
    job = job_create(user=creator, model=replicate_model(timeout_seconds=1), prompt="Too slow", aspect_ratio="square")
    job_run(job_id=job.id)
    with mock.patch.object(Conf, "SYNC", True):
        predictions_poll(max_seconds=3, idle_seconds=0)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and "took too long" in job.error_message
    assert fake_replicate.status_of(job.prediction_id) == "canceled"
    assert balance_of(creator) == 10_000


def test_only_a_model_known_to_be_fast_holds_the_worker_for_its_result(creator, fake_replicate, settings):
    settings.REPLICATE_CREATE_WAIT = 5
    fast = AIModelFactory(key="fast", provider="replicate", provider_ref="owner/fast")
    slow = AIModelFactory(key="slow", provider="replicate", provider_ref="owner/slow", timeout_seconds=600)
    provider = get_provider("replicate")
    fast_job = job_create(user=creator, model=fast, prompt="quick", aspect_ratio="square")
    slow_job = job_create(user=creator, model=slow, prompt="long", aspect_ratio="square")
    assert prediction_create_wait(fast_job, provider) == 0  # nothing known yet: the worker is not held
    from generation.providers import Prediction

    model_seconds_note(fast.pk, Prediction(id="a", status="succeeded", metrics={"total_time": 1.2}))
    model_seconds_note(slow.pk, Prediction(id="b", status="succeeded", metrics={"total_time": 45.0}))
    assert prediction_create_wait(fast_job, provider) == 5
    assert prediction_create_wait(slow_job, provider) == 0


def test_a_webhook_naming_another_job_adopts_nothing(client, creator, fake_replicate, settings):
    # The job id in the webhook URL is a hint (the URL is not signed): the prediction's own
    # input must name the same job.
    settings.REPLICATE_WEBHOOK_SECRET = fake_replicate.webhook_secret
    fake_replicate.drop_next_creates(1)
    fake_replicate.predict_seconds = 60
    settings.PROVIDER_MAX_RETRIES = 0
    model = replicate_model(timeout_seconds=600)
    lost = job_create(user=creator, model=model, prompt="lost", aspect_ratio="square")
    other = job_create(user=creator, model=model, prompt="other", aspect_ratio="square")
    fake_replicate.list_enabled = False
    job_run(job_id=lost.id)  # made at Replicate, the answer cut: no id saved, lookups fail
    assert Job.objects.get(pk=lost.pk).prediction_id == ""
    (prediction_id,) = fake_replicate.predictions
    body = json.dumps({"id": prediction_id, "status": "succeeded", "input": {"dreampixel_job": str(lost.id)}}).encode()
    Job.objects.filter(pk=other.pk).update(status=Job.Status.RUNNING)
    response = client.post(
        f"/webhooks/replicate/?job={other.id}", body, content_type="application/json", headers=fake_replicate.sign(body)
    )
    assert response.status_code == 200
    assert Job.objects.get(pk=other.pk).prediction_id == ""
    response = client.post(
        f"/webhooks/replicate/?job={lost.id}", body, content_type="application/json", headers=fake_replicate.sign(body)
    )
    assert response.status_code == 200
    assert Job.objects.get(pk=lost.pk).prediction_id == prediction_id


@pytest.mark.parametrize("id_saved", [True, False])
def test_a_job_taken_over_just_past_its_deadline_asks_the_provider_before_giving_up(creator, fake_replicate, id_saved):
    from datetime import timedelta

    from django.utils import timezone

    fake_replicate.predict_seconds = 60
    job = job_create(user=creator, model=replicate_model(timeout_seconds=600), prompt="Late", aspect_ratio="square")
    job_run(job_id=job.id)
    job.refresh_from_db()
    fake_replicate.set_predict_seconds(job.prediction_id, 0)  # done meanwhile
    now = timezone.now()
    # Past its deadline but within the grace period, its holder gone (and, for the second
    # case, the prediction id never saved).
    Job.objects.filter(pk=job.pk).update(
        deadline_at=now - timedelta(seconds=5),
        lease_until=now - timedelta(seconds=1),
        prediction_id=job.prediction_id if id_saved else "",
    )
    job_run(job_id=job.id)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.attempts == 2
    assert fake_replicate.created_count == 1
    assert balance_of(creator) == 9_500
