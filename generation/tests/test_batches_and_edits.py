from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse

from accounts.tests.factories import UserFactory
from billing.models import LedgerEntry
from billing.services import balance_of, credits_grant
from generation.models import Batch, Job, Upload
from generation.services import job_create, job_run
from generation.services.running import prediction_request_for
from generation.tests.factories import AIModelFactory, local_edit_model
from generation.tests.photos import photo
from generation.tests.polling import run_to_the_end
from generation.uploads import image_validate, upload_store
from tests.s3 import local_s3, new_bucket, s3_storage_settings

pytestmark = pytest.mark.django_db


def replicate_edit_model():
    return AIModelFactory(
        key="test-kontext",
        name="Kontext test",
        kind="image_edit",
        provider="replicate",
        provider_ref="black-forest-labs/flux-kontext-pro",
        aspect_ratios={"original": "match_input_image"},
        credit_cost=1000,
        timeout_seconds=30,
    )


def post_batch(client, model, files, prompt="Make it look like autumn"):
    data = {"model": model.pk, "prompt": prompt, "form_token": str(uuid.uuid4()), "photos": files}
    return client.post(reverse("batch_new"), data)


def test_a_batch_of_ten_with_one_bad_photo_charges_nine_edits(client, creator, fake_replicate):
    credits_grant(user=creator, amount=5_000, key="purchase:batch")  # 15,000 in all
    model = replicate_edit_model()
    client.force_login(creator)
    files = [photo(f"p{n}.png", "PNG", colour=(n * 20, 100, 100), poison=(n == 6)) for n in range(10)]
    response = post_batch(client, model, files)
    batch = Batch.objects.get(user=creator)
    assert response.status_code == 302 and response["Location"] == reverse("batch_detail", args=[batch.id])
    assert balance_of(creator) == 15_000 - 10_000  # all ten charged up front

    for job in batch.jobs.all():
        job_run(job_id=job.id)  # each gives its worker back at once; the poller finishes all ten
    run_to_the_end(batch.jobs.first().id)

    statuses = sorted(batch.jobs.values_list("status", flat=True))
    assert statuses == ["failed"] + ["succeeded"] * 9
    failed = batch.jobs.get(status="failed")
    assert LedgerEntry.objects.filter(kind="refund", reference=f"job:{failed.id}").count() == 1
    assert balance_of(creator) == 15_000 - 9 * 1_000
    assert len(fake_replicate.uploads) == 10  # each photo went to the provider

    page = client.get(reverse("batch_detail", args=[batch.id])).content.decode()
    assert "9 succeeded" in page and "1 failed" in page and "hx-trigger" not in page
    lists = client.get(reverse("batch_list")).content.decode()
    assert "Completed" in lists and batch.prompt in lists


def test_an_unfinished_batch_is_listed_as_ongoing_and_its_page_polls(client, creator):
    model = local_edit_model()
    client.force_login(creator)
    post_batch(client, model, [photo(), photo("b.jpg")])
    batch = Batch.objects.get()
    lists = client.get(reverse("batch_list")).content.decode()
    assert lists.index("Ongoing") < lists.index(batch.prompt) < lists.index("Completed")
    fragment = client.get(reverse("batch_status", args=[batch.id])).content.decode()
    assert 'hx-trigger="every 2s"' in fragment and "2 queued" in fragment


@pytest.mark.parametrize(
    ("count", "prompt", "message"),
    [(11, "Autumn", "A batch takes up to 10 photos; you chose 11."), (3, "   ", "Describe what you want to see.")],
)
def test_eleven_photos_or_an_empty_prompt_create_and_charge_nothing(client, creator, settings, count, prompt, message):
    model = local_edit_model()
    client.force_login(creator)
    response = post_batch(client, model, [photo(f"p{n}.jpg") for n in range(count)], prompt=prompt)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Batch.objects.exists() and not Job.objects.exists() and not Upload.objects.exists()
    assert balance_of(creator) == 10_000


def test_a_batch_the_balance_cannot_cover_is_refused_whole(client):
    user = UserFactory()
    credits_grant(user=user, amount=2_500, key="purchase:small")
    client.force_login(user)
    response = post_batch(client, local_edit_model(), [photo(f"p{n}.jpg") for n in range(3)])
    assert "Not enough credits: this needs 3,000 and you have 2,500." in response.content.decode()
    assert not Job.objects.exists() and not Upload.objects.exists()
    assert balance_of(user) == 2_500


def test_a_single_edit_shows_before_and_after(client, creator):
    client.force_login(creator)
    model = local_edit_model()
    data = {"model": model.pk, "prompt": "Golden hour", "form_token": str(uuid.uuid4()), "photo": photo()}
    client.post(reverse("create_edit"), data)
    job = Job.objects.get()
    job_run(job_id=job.id)
    job.refresh_from_db()
    assert job.status == "succeeded"
    page = client.get(reverse("job_detail", args=[job.id])).content.decode()
    assert "data-compare" in page
    assert reverse("upload_file", args=[job.source_id]) in page
    assert reverse("output_file", args=[job.outputs.get().id]) in page


def test_on_s3_the_provider_gets_the_photo_as_a_short_lived_signed_url(creator, fake_replicate, settings):
    with local_s3() as (endpoint, client):
        settings.STORAGES = {**settings.STORAGES, "default": s3_storage_settings(endpoint, new_bucket(client))}
        upload = upload_store(user=creator, image=image_validate(photo()))
        job = job_create(
            user=creator, model=replicate_edit_model(), prompt="Snow", aspect_ratio="original", source=upload
        )
        run_to_the_end(job.id)
        job.refresh_from_db()
        assert job.status == "succeeded"
        sent = fake_replicate.predictions[job.prediction_id].input["input_image"]
        # The photo as the worker wrote it again (not the file as it came), by a signed URL.
        assert not job.source.needs_cleaning and job.source.file.name != upload.file.name
        url = prediction_request_for(job).input["input_image"]
        query = parse_qs(urlparse(url).query)
        assert url.startswith(endpoint) and job.source.file.name in url
        assert query["X-Amz-Expires"] == [str(settings.PROVIDER_PHOTO_URL_EXPIRE)]
        # Signed when the request is built: the same object and lifetime (the signing second may differ).
        assert sent.split("?")[0] == url.split("?")[0]
        assert parse_qs(urlparse(sent).query)["X-Amz-Expires"] == query["X-Amz-Expires"]
