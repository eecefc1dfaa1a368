"""Jobs on Replicate: the real `replicate` client against a fake Replicate on loopback."""

from __future__ import annotations

import threading

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.urls import reverse

from billing.models import LedgerEntry
from billing.services import balance_of
from generation.models import Job
from generation.services import MESSAGE_BLOCKED, MESSAGE_EXPIRED, MESSAGE_TIMEOUT, job_create, job_run
from generation.tests.factories import replicate_model
from generation.tests.polling import run_to_the_end

pytestmark = pytest.mark.django_db


def run(creator, prompt: str, **model_fields) -> Job:
    job = job_create(
        user=creator, model=replicate_model(**model_fields), prompt=prompt, aspect_ratio="portrait", seed=5
    )
    run_to_the_end(job.id)
    job.refresh_from_db()
    return job


def refunds(job: Job) -> int:
    return LedgerEntry.objects.filter(kind="refund", reference=f"job:{job.id}").count()


def test_a_successful_prediction_is_copied_into_our_storage(creator, fake_replicate):
    job = run(creator, "A green comet")
    assert job.status == Job.Status.SUCCEEDED
    assert fake_replicate.created_count == 1
    prediction = fake_replicate.predictions[job.prediction_id]
    assert prediction.model == "black-forest-labs/flux-schnell"
    # The job's own id travels with the prediction, so it can always find it again.
    assert prediction.input == {
        "prompt": "A green comet",
        "aspect_ratio": "2:3",
        "seed": 5,
        "dreampixel_job": str(job.id),
    }
    assert "predict_time" in job.metrics
    output = job.outputs.get()
    with default_storage.open(output.file.name) as stored:
        assert stored.read(8) == b"\x89PNG\r\n\x1a\n"
    assert (output.width, output.height) == (64, 64)
    assert balance_of(creator) == 9_500


def test_a_model_failure_is_refunded_once_and_explained(creator, fake_replicate, client):
    job = run(creator, "A crash [fail]")
    assert job.status == Job.Status.FAILED
    assert "CUDA out of memory" in job.provider_error
    assert "refunded" in job.error_message
    job_run(job_id=job.id)
    assert refunds(job) == 1
    assert balance_of(creator) == 10_000
    client.force_login(creator)
    assert job.error_message in client.get(reverse("job_detail", args=[job.id])).content.decode()


@pytest.mark.parametrize("marker", ["[nsfw]", "[empty]", "[null]"])
def test_a_blocked_or_empty_result_fails_with_a_blocked_message_and_refunds(creator, fake_replicate, marker):
    job = run(creator, f"Something {marker}")
    assert job.status == Job.Status.FAILED
    assert job.error_message == MESSAGE_BLOCKED
    assert refunds(job) == 1
    assert not job.outputs.exists()


def test_a_slow_prediction_times_out_is_canceled_and_refunded(creator, fake_replicate):
    job = run(creator, "Forever [slow]", timeout_seconds=1)
    assert job.status == Job.Status.FAILED
    assert job.error_message == MESSAGE_TIMEOUT
    assert fake_replicate.predictions[job.prediction_id].cancel_count == 1
    assert refunds(job) == 1
    assert balance_of(creator) == 10_000


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_transient_errors_are_retried_and_charged_once(creator, fake_replicate, status):
    fake_replicate.fail_next(2, status=status)
    job = run(creator, "Try again")
    assert job.status == Job.Status.SUCCEEDED
    assert fake_replicate.created_count == 1
    assert LedgerEntry.objects.filter(reference=f"job:{job.id}").count() == 1
    assert balance_of(creator) == 9_500


def test_a_provider_refusing_every_create_fails_the_job_and_refunds(creator, fake_replicate, settings):
    # 429 answers: the provider surely made nothing, so nothing can be thrown away.
    settings.PROVIDER_MAX_RETRIES = 2
    fake_replicate.fail_next(50, status=429)
    job = run(creator, "Never")
    assert job.status == Job.Status.FAILED
    assert "trouble" in job.error_message
    assert balance_of(creator) == 10_000


def test_a_create_that_may_have_gone_through_is_not_failed_before_the_deadline(creator, fake_replicate, settings):
    # 500 answers (and timeouts) may come after the prediction was made: the job keeps
    # looking for it until its deadline, and only the sweeper fails it then.
    import time_machine
    from django.utils import timezone

    from generation.services import sweep_stuck_jobs

    settings.PROVIDER_MAX_RETRIES = 2
    fake_replicate.fail_next(50, status=500)
    job = run(creator, "Maybe")
    assert job.status == Job.Status.RUNNING and not job.prediction_id
    assert refunds(job) == 0
    with time_machine.travel(job.deadline_at + timezone.timedelta(seconds=settings.JOB_SWEEP_GRACE_SECONDS + 5)):
        sweep_stuck_jobs()
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error_message == MESSAGE_TIMEOUT
    assert refunds(job) == 1
    assert fake_replicate.created_count == 0


def test_an_expired_output_fails_the_job_never_a_success_without_files(creator, fake_replicate, tmp_path):
    job = run(creator, "Gone [expired]")
    assert job.status == Job.Status.FAILED
    assert job.error_message == MESSAGE_EXPIRED
    assert not job.outputs.exists()
    assert refunds(job) == 1
    _, files = default_storage.listdir("outputs") if default_storage.exists("outputs") else ([], [])
    assert files == []


def test_api_tokens_rotate(creator, fake_replicate, settings):
    fake_replicate.tokens.update({"r8_second"})
    settings.REPLICATE_API_TOKENS = ["r8_test_token", "r8_second"]
    for n in range(4):
        run(creator, f"rotation {n}")
    used = fake_replicate.tokens_used()
    assert used["r8_test_token"] > 0 and used["r8_second"] > 0


@pytest.mark.django_db(transaction=True)
def test_the_same_task_delivered_twice_at_once_runs_the_job_once(creator, fake_replicate):
    fake_replicate.predict_seconds = 0.3
    job = job_create(user=creator, model=replicate_model(), prompt="Twins", aspect_ratio="square")
    barrier = threading.Barrier(2)

    def deliver():
        barrier.wait()
        try:
            job_run(job_id=job.id)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    run_to_the_end(job.id)  # the task had handed off: the poller finishes it
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert job.attempts == 1
    assert fake_replicate.created_count == 1
    assert job.outputs.count() == 1
    assert balance_of(creator) == 9_500


def test_predictions_ask_for_a_signed_webhook_when_the_site_has_a_public_address(creator, fake_replicate, settings):
    settings.PUBLIC_BASE_URL = "https://dreampixel.example.com"
    job = run(creator, "With a webhook")
    prediction = fake_replicate.predictions[job.prediction_id]
    assert prediction.webhook == f"https://dreampixel.example.com/webhooks/replicate/?job={job.id}"
    assert prediction.webhook_events_filter == ["completed"]


def test_the_preview_renderer_is_offered_only_without_a_replicate_token(client, creator, settings):
    from generation.tests.factories import local_model

    local_model()
    replicate_model()
    client.force_login(creator)
    settings.REPLICATE_API_TOKENS = []
    settings.LOCAL_RENDERER_ENABLED = True
    page = client.get(reverse("create")).content.decode()
    assert "Preview renderer" in page and "FLUX test" not in page
    settings.REPLICATE_API_TOKENS = ["r8_test_token"]
    settings.LOCAL_RENDERER_ENABLED = False
    page = client.get(reverse("create")).content.decode()
    assert "Preview renderer" not in page and "FLUX test" in page
