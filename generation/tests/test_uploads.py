"""Uploads are judged from their headers; a refused file stores nothing and charges nothing."""

from __future__ import annotations

import io
import os
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from billing.services import balance_of
from generation.models import Job, Upload
from generation.services import job_run
from generation.tests.factories import local_edit_model
from generation.tests.photos import photo, photo_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def edit_model():
    return local_edit_model()


def post_edit(client, edit_model, file):
    data = {"model": edit_model.pk, "prompt": "make it warmer", "form_token": str(uuid.uuid4()), "photo": file}
    return client.post(reverse("create_edit"), data)


def stored_files(settings) -> list[str]:
    root = settings.MEDIA_ROOT
    return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files] if os.path.exists(root) else []


def bomb() -> bytes:
    # 20,000 x 20,000 pixels in a file of a few kilobytes.
    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buffer, format="PNG")
    return buffer.getvalue()


def truncated_jpeg() -> bytes:
    data = photo_bytes("JPEG", size=(800, 600))
    return data[: len(data) // 2]


def eleven_megabytes() -> bytes:
    return photo_bytes("PNG") + os.urandom(11 * 1024 * 1024)


@pytest.mark.parametrize(
    ("name", "make", "content_type", "message"),
    [
        ("notes.png", lambda: b"Dear diary, this is not a picture.\n" * 20, "image/png", "is not a photo we can read"),
        ("half.jpg", truncated_jpeg, "image/jpeg", "is damaged or incomplete"),
        ("bomb.png", bomb, "image/png", "too large to open safely"),
        ("huge.png", eleven_megabytes, "image/png", "photos can be up to 10 MB"),
        ("anim.gif", lambda: photo_bytes("GIF"), "image/gif", "is a GIF file; use a JPEG, PNG or WebP photo"),
        ("wide.png", lambda: photo_bytes("PNG", size=(9_000, 5_000)), "image/png", "up to 40 megapixels"),
    ],
)
def test_a_bad_upload_is_refused_with_a_message_and_stores_and_charges_nothing(
    client, creator, edit_model, settings, name, make, content_type, message
):
    client.force_login(creator)
    response = post_edit(client, edit_model, SimpleUploadedFile(name, make(), content_type=content_type))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Upload.objects.exists()
    assert not Job.objects.exists()
    assert stored_files(settings) == []
    assert balance_of(creator) == 10_000


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_jpeg_png_and_webp_photos_are_accepted_and_stored_privately(client, creator, edit_model, fmt):
    client.force_login(creator)
    response = post_edit(client, edit_model, photo(f"p.{fmt.lower()}", fmt))
    assert response.status_code == 302
    upload = Upload.objects.get()
    assert upload.user == creator and (upload.width, upload.height) == (320, 240)
    assert upload.file.name.startswith("uploads/") and "p." not in upload.file.name
    assert balance_of(creator) == 9_000
    # Shown once its job's worker has written it again without metadata.
    assert client.get(reverse("upload_file", args=[upload.id])).status_code == 404
    job_run(job_id=Job.objects.get().pk)
    assert client.get(reverse("upload_file", args=[upload.id])).status_code == 200
    client.logout()
    assert client.get(reverse("upload_file", args=[upload.id])).status_code == 302  # to sign in


def test_another_users_photo_is_a_404(client, creator, edit_model):
    from accounts.tests.factories import UserFactory

    client.force_login(creator)
    post_edit(client, edit_model, photo())
    upload = Upload.objects.get()
    client.force_login(UserFactory())
    assert client.get(reverse("upload_file", args=[upload.id])).status_code == 404


def test_short_of_credits_the_photo_is_not_kept(client, edit_model, settings):
    from accounts.tests.factories import UserFactory

    client.force_login(UserFactory())
    response = post_edit(client, edit_model, photo())
    assert "Not enough credits" in response.content.decode()
    assert not Upload.objects.exists()
    assert stored_files(settings) == []
