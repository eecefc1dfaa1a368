"""The fake Replicate and the product against Replicate's own published shapes.

fakes/contracts/replicate_published_examples.json holds Replicate's Prediction type and statuses
(its JavaScript client's index.d.ts) and the documented examples of a prediction, the list and a
webhook body (the HTTP API reference and the webhooks guide), each with its source. The fake must
answer nothing outside that type; the product must read each documented example right, through
the same code that reads the live API."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from django.utils import timezone

from generation.models import Job
from generation.providers import get_provider
from generation.providers.replicate import prediction_from_json
from generation.services import job_create, job_run
from generation.tests.factories import replicate_model

pytestmark = pytest.mark.django_db

CONTRACT = json.loads(
    (Path(__file__).resolve().parents[2] / "fakes" / "contracts" / "replicate_published_examples.json").read_text()
)
FIELDS = set(CONTRACT["prediction_fields"]["required"]) | set(CONTRACT["prediction_fields"]["optional"])
EXAMPLES = CONTRACT["examples"]
TOKEN = {"Authorization": "Bearer r8_test_token"}


def test_replicate_publishes_aborted_as_a_final_status_and_the_product_treats_it_so():
    from generation.providers import FINAL_STATUSES

    assert "aborted" in CONTRACT["statuses"]
    assert set(CONTRACT["final_statuses"]) == FINAL_STATUSES


def test_every_prediction_the_fake_answers_is_of_replicates_published_type(creator, fake_replicate, settings):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"  # webhooks asked for: the get shows them
    prompts = ["A plain one", "Broken [fail]", "Too late [aborted]", "Filtered [nsfw]"]
    for prompt in prompts:
        job_run(job_id=job_create(user=creator, model=replicate_model(), prompt=prompt, aspect_ratio="square").id)
    listed = httpx.get(f"{fake_replicate.url}/v1/predictions", headers=TOKEN).json()
    assert set(listed) == set(EXAMPLES["predictions_list"])
    bodies = list(listed["results"])
    for item in listed["results"]:
        bodies.append(httpx.get(f"{fake_replicate.url}/v1/predictions/{item['id']}", headers=TOKEN).json())
    for body in bodies:
        assert set(body) <= FIELDS, set(body) - FIELDS
        assert set(CONTRACT["prediction_fields"]["required"]) <= set(body)
        assert body["status"] in CONTRACT["statuses"]
    # And every field of the documented examples is one the fake knows too.
    assert set(EXAMPLES["prediction_get"]) <= set(bodies[-1]) | {"logs"}


def test_the_documented_prediction_reads_as_a_succeeded_prediction_with_its_output_and_time():
    prediction = prediction_from_json(EXAMPLES["prediction_get"])
    assert (prediction.id, prediction.status, prediction.is_final) == ("gm3qorzdhgbfurvjtvhg6dckhu", "succeeded", True)
    assert prediction.outputs == ["hello Alice"]
    assert prediction.metrics == {"predict_time": 0.012683}
    assert prediction.error == ""


def test_the_documented_webhook_body_of_an_unfinished_prediction_reads_as_running():
    prediction = prediction_from_json(EXAMPLES["webhook_starting"])
    assert (prediction.status, prediction.is_final, prediction.outputs, prediction.metrics) == (
        "starting",
        False,
        [],
        {},
    )


def test_the_documented_list_is_read_through_the_provider_as_the_poller_reads_it(fake_replicate):
    # The documented list item, served by the fake as Replicate would serve it.
    item = EXAMPLES["predictions_list"]["results"][0]
    fields = {k: v for k, v in item.items() if k not in ("id", "status", "model", "input", "source")}
    added = fake_replicate.add_prediction(
        status=item["status"], model=item["model"], input=item["input"], source=item["source"], **fields
    )
    found, reached = get_provider("replicate").recent(since=timezone.now() - timezone.timedelta(hours=1))
    assert reached
    assert found[added].outputs == ["hello Alice"] and found[added].is_final


def test_a_documented_webhook_body_for_a_running_job_is_accepted_and_changes_nothing(
    client, creator, fake_replicate, settings
):
    settings.REPLICATE_WEBHOOK_SECRET = fake_replicate.webhook_secret
    fake_replicate.predict_seconds = 60
    job = job_create(user=creator, model=replicate_model(), prompt="A slow one", aspect_ratio="square")
    job_run(job_id=job.id)
    job.refresh_from_db()
    body = json.dumps({**EXAMPLES["webhook_starting"], "id": job.prediction_id}).encode()
    response = client.post(
        "/webhooks/replicate/", body, content_type="application/json", headers=fake_replicate.sign(body)
    )
    assert response.status_code == 200
    assert Job.objects.get(pk=job.pk).status == Job.Status.RUNNING
