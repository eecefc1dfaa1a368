from __future__ import annotations

import json
import time

import pytest
from django.urls import reverse

from generation.models import Job, ProviderWebhook
from generation.providers import PredictionRequest, get_provider
from generation.services import job_create
from generation.services.running import job_claim
from generation.tests.factories import replicate_model

pytestmark = pytest.mark.django_db
URL = "/webhooks/replicate/"


@pytest.fixture
def waiting_job(creator, fake_replicate):
    """A job whose worker created the prediction and is waiting for it."""
    fake_replicate.predict_seconds = 60
    job = job_create(user=creator, model=replicate_model(), prompt="A slow sunrise", aspect_ratio="square")
    job = job_claim(job.id)
    prediction = get_provider("replicate").create(
        PredictionRequest(model_ref=job.provider_ref, input={"prompt": job.prompt})
    )
    Job.objects.filter(pk=job.pk).update(prediction_id=prediction.id)
    fake_replicate.set_predict_seconds(prediction.id, 0)  # now it is done
    return Job.objects.get(pk=job.pk)


def completed_body(job: Job) -> bytes:
    return json.dumps({"id": job.prediction_id, "status": "succeeded", "output": ["ignored"]}).encode()


def post(client, body: bytes, headers: dict[str, str]):
    return client.post(URL, body, content_type="application/json", headers=headers)


def test_a_valid_webhook_finishes_the_job(
    client, waiting_job, fake_replicate, sync_queue, django_capture_on_commit_callbacks
):
    body = completed_body(waiting_job)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, body, fake_replicate.sign(body))
    assert response.status_code == 200
    waiting_job.refresh_from_db()
    assert waiting_job.status == Job.Status.SUCCEEDED
    assert waiting_job.outputs.count() == 1


def test_a_bad_signature_is_rejected_and_changes_nothing(client, waiting_job, fake_replicate, sync_queue):
    body = completed_body(waiting_job)
    headers = fake_replicate.sign(body)
    tampered = body.replace(b"succeeded", b"failed!!!")
    assert post(client, tampered, headers).status_code == 400
    headers["webhook-signature"] = "v1,AAAA"
    assert post(client, body, headers).status_code == 400
    assert post(client, body, {}).status_code == 400
    assert not ProviderWebhook.objects.exists()
    assert Job.objects.get(pk=waiting_job.pk).status == Job.Status.RUNNING


def test_a_stale_timestamp_is_rejected(client, waiting_job, fake_replicate, sync_queue):
    body = completed_body(waiting_job)
    headers = fake_replicate.sign(body, timestamp=int(time.time()) - 3_600)
    assert post(client, body, headers).status_code == 400
    assert Job.objects.get(pk=waiting_job.pk).status == Job.Status.RUNNING


def test_five_copies_of_one_delivery_have_one_effect(
    client, waiting_job, fake_replicate, sync_queue, django_capture_on_commit_callbacks
):
    body = completed_body(waiting_job)
    headers = fake_replicate.sign(body, webhook_id="msg_same")
    answers = []
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        for _ in range(5):
            answers.append(post(client, body, headers).json())
    assert answers[0] == {"ok": True}
    assert all(answer == {"ok": True, "duplicate": True} for answer in answers[1:])
    assert not [c for c in callbacks if "replicate_webhook" in c.__qualname__]  # handed over at once
    syncs = [
        p for m, p, _ in fake_replicate.requests if m == "GET" and p == f"/v1/predictions/{waiting_job.prediction_id}"
    ]
    assert len(syncs) == 1  # one sync ran
    assert ProviderWebhook.objects.count() == 1
    waiting_job.refresh_from_db()
    assert waiting_job.status == Job.Status.SUCCEEDED
    assert waiting_job.outputs.count() == 1


def test_the_secret_is_fetched_from_replicate_when_not_configured(client, waiting_job, fake_replicate, sync_queue):
    body = completed_body(waiting_job)
    post(client, body, fake_replicate.sign(body))
    assert ("GET", "/v1/webhooks/default/secret") in [(m, p) for m, p, _ in fake_replicate.requests]


def test_without_replicate_configured_the_endpoint_is_not_there(client, settings):
    settings.REPLICATE_API_TOKENS = []
    assert client.post(URL, b"{}", content_type="application/json").status_code == 404
    assert reverse("replicate_webhook") == URL


def test_a_delivery_that_failed_after_it_was_recorded_does_its_work_when_redelivered(
    client, waiting_job, fake_replicate, monkeypatch
):
    from django.test import Client
    from django_q.conf import Conf

    from tests.clusters import free_port, use_queue

    # The queue is down: the delivery is recorded, the sync cannot be handed over, Replicate gets a 503.
    use_queue(monkeypatch, f"redis://127.0.0.1:{free_port()}/0")
    body = completed_body(waiting_job)
    headers = fake_replicate.sign(body, webhook_id="msg_retry")
    assert post(Client(raise_request_exception=False), body, headers).status_code == 503
    assert ProviderWebhook.objects.get(webhook_id="msg_retry").processed_at is None
    assert Job.objects.get(pk=waiting_job.pk).status == Job.Status.RUNNING

    # Replicate delivers it again once the queue is back: not a duplicate, the job finishes.
    monkeypatch.setattr(Conf, "SYNC", True)
    assert post(client, body, headers).json() == {"ok": True}
    waiting_job.refresh_from_db()
    assert waiting_job.status == Job.Status.SUCCEEDED
    assert ProviderWebhook.objects.get(webhook_id="msg_retry").processed_at is not None
    # And a third copy is a duplicate.
    assert post(client, body, headers).json() == {"ok": True, "duplicate": True}


# --- Signed, but not a prediction we can use: 400, and nothing stored ------------------------


def prediction(job: Job, **fields) -> str:
    return json.dumps({"id": job.prediction_id, "status": "succeeded", "output": ["x"], **fields})


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


BODIES = {
    "an input that is a string": lambda job: prediction(job, input="not an object"),
    "an input that is a list": lambda job: prediction(job, input=[1, 2]),
    "a lone surrogate in the id": lambda job: prediction(job, id="p\ud800"),
    "a lone surrogate in the status": lambda job: prediction(job, status="succ\udfff"),
    "a NUL in the id": lambda job: prediction(job, id="p\u0000"),
    "5,000-deep nesting": lambda job: prediction(job).replace('"output": ["x"]', f'"output": {deep(5_000)}'),
    "a status that is an object": lambda job: prediction(job, status={"s": 1}),
    "a body that is a list": lambda job: json.dumps([prediction(job)]),
}


@pytest.mark.parametrize("make", list(BODIES.values()), ids=list(BODIES))
def test_a_signed_but_malformed_prediction_is_refused_and_nothing_is_stored(
    client, waiting_job, fake_replicate, sync_queue, make
):
    client.raise_request_exception = False
    body = make(waiting_job).encode()
    response = client.post(URL, body, content_type="application/json", headers=fake_replicate.sign(body))
    assert response.status_code == 400
    assert not ProviderWebhook.objects.exists()
    assert Job.objects.get(pk=waiting_job.pk).status == Job.Status.RUNNING


def test_a_signature_dated_an_hour_ahead_is_refused(client, waiting_job, fake_replicate, sync_queue):
    body = prediction(waiting_job).encode()
    headers = fake_replicate.sign(body, timestamp=int(time.time()) + 3_600)
    assert client.post(URL, body, content_type="application/json", headers=headers).status_code == 400
    assert not ProviderWebhook.objects.exists()
