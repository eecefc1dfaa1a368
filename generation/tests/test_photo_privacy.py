"""Photos keep no location and deleted files are gone at once."""

from __future__ import annotations

import io
import os
import uuid

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from accounts.services import user_delete
from generation.models import Job, Upload
from generation.outputs import store_output
from generation.provenance import TRAINED_ALGORITHMIC_MEDIA, Provenance
from generation.services import job_run
from generation.tests.factories import local_edit_model

pytestmark = pytest.mark.django_db

XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description where="XMP-HOME"/></rdf:RDF></x:xmpmeta>'


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the camera was held upright, the pixels lie on their side
    exif[0x010F] = "CAMERA-SERIAL-42"
    exif[0x8825] = {1: "N", 2: (52.0, 22.0, 1.5), 3: "E", 4: (4.0, 53.0, 2.0)}  # GPS
    return exif


def located_photo(fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    extra = {"comment": b"IPTC-ish comment", "xmp": XMP} if fmt == "JPEG" else {"xmp": XMP} if fmt == "WEBP" else {}
    Image.new("RGB", (400, 200), (30, 120, 200)).save(buffer, format=fmt, exif=_exif(), **extra)
    return buffer.getvalue()


def assert_no_metadata(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        assert not image.getexif(), dict(image.getexif())
        assert not {"exif", "xmp", "comment", "XML:com.adobe.xmp"} & set(image.info)
    for secret in (b"CAMERA-SERIAL", b"XMP-HOME", b"IPTC-ish", b"Exif\x00\x00"):
        assert secret not in data


def post_edit(client, data: bytes, name: str = "home.jpg"):
    form = {"model": local_edit_model().pk, "prompt": "Golden hour", "form_token": str(uuid.uuid4()),
            "photo": SimpleUploadedFile(name, data, content_type="image/jpeg")}  # fmt: skip
    return client.post(reverse("create_edit"), form)


def stored_files() -> list[bytes]:
    root = settings.MEDIA_ROOT
    return [open(os.path.join(d, f), "rb").read() for d, _, files in os.walk(root) for f in files]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_an_uploaded_photo_is_served_and_kept_only_without_its_location(client, creator, fmt):
    client.force_login(creator)
    assert post_edit(client, located_photo(fmt), name=f"home.{fmt.lower()}").status_code == 302
    upload = Upload.objects.get()
    # As it came, until its job's worker cleans it: served to nobody, its owner included.
    assert upload.needs_cleaning
    assert client.get(reverse("upload_file", args=[upload.pk])).status_code == 404

    job_run(job_id=Job.objects.get().pk)
    upload.refresh_from_db()
    assert not upload.needs_cleaning
    with default_storage.open(upload.file.name) as stored:
        data = stored.read()
    assert_no_metadata(data)
    # Turned upright first: the 400x200 pixels with "rotate 90°" are a 200x400 portrait.
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (200, 400)
    assert (upload.width, upload.height) == (200, 400)
    served = b"".join(client.get(reverse("upload_file", args=[upload.pk])).streaming_content)
    assert_no_metadata(served)
    # The file as it came is gone: nothing in storage holds the location any more.
    for data in stored_files():
        assert b"CAMERA-SERIAL" not in data and b"XMP-HOME" not in data


def test_provider_outputs_keep_none_of_their_metadata_only_the_mark_that_ai_made_them():
    stored = store_output(located_photo("JPEG"), provenance=Provenance(model="FLUX.1 schnell", model_ref="flux"))
    with default_storage.open(stored.file_name) as file:
        data = file.read()
    with Image.open(io.BytesIO(data)) as image:
        assert not image.getexif(), dict(image.getexif())
        assert "comment" not in image.info
        assert TRAINED_ALGORITHMIC_MEDIA.encode() in image.info["xmp"]  # ours, not the provider's
    for secret in (b"CAMERA-SERIAL", b"XMP-HOME", b"IPTC-ish", b"Exif\x00\x00"):
        assert secret not in data


def test_a_deleted_job_takes_its_photo_with_it_at_once(client, creator):
    client.force_login(creator)
    post_edit(client, located_photo())
    job = Job.objects.get()
    job_run(job_id=job.pk)
    upload = Upload.objects.get()
    photo_url, name = reverse("upload_file", args=[upload.pk]), upload.file.name
    assert client.get(photo_url).status_code == 200

    assert client.post(reverse("job_delete", args=[job.pk])).status_code == 302
    assert client.get(photo_url).status_code == 404
    assert not default_storage.exists(name)  # gone now, not at the next daily cleanup


def test_a_photo_another_kept_job_still_uses_stays(client, creator):
    client.force_login(creator)
    post_edit(client, located_photo())
    first = Job.objects.get()
    job_run(job_id=first.pk)
    again = Job.objects.create(
        user=creator, model=first.model, kind=first.kind, status=Job.Status.SUCCEEDED, cost=0, prompt="again",
        source=first.source, provider=first.provider,
    )  # fmt: skip
    client.post(reverse("job_delete", args=[first.pk]))
    assert client.get(reverse("upload_file", args=[again.source_id])).status_code == 200


def test_deleting_the_account_deletes_every_photo_at_once(creator, django_capture_on_commit_callbacks):
    client = Client()
    client.force_login(creator)
    post_edit(client, located_photo())
    job_run(job_id=Job.objects.get().pk)
    post_edit(client, b"not a photo")  # refused: stores nothing
    names = [u.file.name for u in Upload.objects.filter(user=creator)]
    outputs = [o.file.name for o in Job.objects.get().outputs.all()]
    assert names and outputs
    with django_capture_on_commit_callbacks(execute=True):
        user_delete(user=creator)
    assert not any(default_storage.exists(name) for name in names + outputs)
    assert not Upload.objects.filter(user=creator).exclude(file="").exists()


def test_shared_media_is_cacheable_only_briefly(client, creator, settings):
    from generation.services import job_share

    client.force_login(creator)
    post_edit(client, located_photo())
    job = Job.objects.get()
    job_run(job_id=job.pk)
    job.refresh_from_db()
    token = job_share(job=job)
    response = Client().get(f"/s/{token}/media/")
    assert response.status_code == 200
    assert response["Cache-Control"] == f"public, max-age={settings.SHARED_MEDIA_MAX_AGE}"
    assert settings.SHARED_MEDIA_MAX_AGE <= 300


def test_the_job_page_shows_the_photo_only_once_its_worker_has_cleaned_it(client, creator):
    client.force_login(creator)
    assert post_edit(client, located_photo("JPEG"), name="home.jpg").status_code == 302
    job = Job.objects.get()
    photo_url = reverse("upload_file", args=[job.source_id])
    # Claimed by a worker that is still cleaning the photo: the page links no picture that would
    # answer 404, whichever way it is drawn (the page, or the section the poll swaps in).
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING)
    status_url = reverse("job_status", args=[job.pk])
    for page in (client.get(reverse("job_detail", args=[job.pk])), client.get(status_url, {"status": "queued"})):
        assert page.status_code == 200 and photo_url not in page.content.decode()
    Upload.objects.filter(pk=job.source_id).update(needs_cleaning=False)
    assert photo_url in client.get(reverse("job_detail", args=[job.pk])).content.decode()
