"""A batch downloads as one zip, streamed; a failed photo can be tried again on its own."""

from __future__ import annotations

import io
import uuid
import zipfile

import pytest
from django.urls import reverse

from accounts.tests.factories import UserFactory
from generation.models import AIModel, Job
from generation.services import batch_create, job_fail, job_run
from generation.tests.factories import AIModelFactory
from generation.tests.photos import photo_bytes
from generation.uploads import image_validate

pytestmark = pytest.mark.django_db


def _batch(user, count: int):
    from django.core.files.uploadedfile import SimpleUploadedFile

    model = AIModelFactory(key="local-edit", kind="image_edit", aspect_ratios={"original": "original"}, credit_cost=100)
    photos = [
        image_validate(SimpleUploadedFile(f"p{n}.png", photo_bytes("PNG", size=(40, 30), colour=(n * 20, 50, 90))))
        for n in range(count)
    ]
    return batch_create(user=user, model=model, prompt="Warmer light", photos=photos)


def test_a_batch_downloads_as_one_streamed_zip_of_its_finished_photos(client, creator):
    batch = _batch(creator, 3)
    jobs = list(batch.jobs.order_by("created_at"))
    for job in jobs[:2]:
        job_run(job_id=job.id)
    client.force_login(creator)
    page = client.get(reverse("batch_detail", args=[batch.id])).content.decode()
    assert "Download all (2) as a zip" in page

    response = client.get(reverse("batch_download", args=[batch.id]))
    assert response.streaming and response["Content-Type"] == "application/zip"
    chunks = list(response.streaming_content)
    assert len(chunks) > 3  # sent piece by piece as each file is read, not as one archive
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert archive.namelist() == ["dreampixel-01.png", "dreampixel-02.png"]
    assert archive.testzip() is None
    expected = [job.outputs.get().file.read() for job in jobs[:2]]
    assert [archive.read(name) for name in archive.namelist()] == expected


def test_another_persons_batch_zip_is_a_404(client, creator):
    batch = _batch(creator, 1)
    job_run(job_id=batch.jobs.get().id)
    client.force_login(UserFactory())
    assert client.get(reverse("batch_download", args=[batch.id])).status_code == 404


def test_a_failed_photo_of_a_batch_is_tried_again_on_its_own_in_the_same_batch(client, creator):
    batch = _batch(creator, 2)
    failed, good = batch.jobs.order_by("created_at")
    job_fail(job_id=failed.id, message="The provider could not read this photo.")
    job_run(job_id=good.id)
    client.force_login(creator)
    page = client.get(reverse("batch_detail", args=[batch.id])).content.decode()
    assert page.count("Try this photo again") == 1
    # Staff change the price in between: the button says what the retry will cost now.
    AIModel.objects.filter(pk=batch.model_id).update(credit_cost=batch.model.credit_cost + 250)
    page = client.get(reverse("batch_detail", args=[batch.id])).content.decode()
    assert f"Try this photo again · {batch.model.credit_cost + 250:,}" in page
    response = client.post(reverse("job_again", args=[failed.id]), {"form_token": str(uuid.uuid4()), "back": "batch"})
    assert response["Location"] == reverse("batch_detail", args=[batch.id])
    retry = Job.objects.filter(batch=batch).order_by("-created_at").first()
    assert retry.pk not in (failed.pk, good.pk) and retry.source_id == failed.source_id
