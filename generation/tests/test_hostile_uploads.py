"""Photos that cost more than they weigh: judged from their headers before anything is decoded or
charged, then decoded by the job's worker in a child process with a time limit.

tests/faults/test_hostile_uploads.py sends the same files to gunicorn as the Procfile runs it."""

from __future__ import annotations

import io
import os
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from billing.models import LedgerEntry
from billing.services import balance_of, credits_grant
from generation.imagemeta import image_without_metadata
from generation.models import Job, Upload
from generation.services import job_run
from generation.tests.factories import AIModelFactory, local_edit_model, local_model
from generation.tests.photos import photo, photo_bytes, pixel_bomb_webp
from generation.tests.test_photo_privacy import XMP, _exif, assert_no_metadata
from generation.uploads import MAX_PIXELS_PER_REQUEST

pytestmark = pytest.mark.django_db


@pytest.fixture
def edit_model():
    return local_edit_model()


def webp(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="image/webp")


def post_batch(client, model, files):
    data = {"model": model.pk, "prompt": "Brighter", "form_token": str(uuid.uuid4()), "photos": files}
    return client.post(reverse("batch_new"), data)


def post_edit(client, model, file):
    data = {"model": model.pk, "prompt": "Brighter", "form_token": str(uuid.uuid4()), "photo": file}
    return client.post(reverse("create_edit"), data)


def stored_files(settings) -> list[str]:
    root = settings.MEDIA_ROOT
    return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files] if os.path.exists(root) else []


def nothing_kept_or_charged(user, settings, balance: int) -> None:
    assert not Upload.objects.exists() and not Job.objects.exists()
    assert stored_files(settings) == []
    assert balance_of(user) == balance


def test_a_batch_of_pixel_bombs_is_refused_from_the_headers_with_a_message(client, creator, edit_model, settings):
    bomb = pixel_bomb_webp()
    client.force_login(creator)
    response = post_batch(client, edit_model, [webp(f"p{n}.webp", bomb) for n in range(10)])
    page = response.content.decode()
    assert response.status_code == 200
    assert "p0.webp is 39.9 megapixels in 1.5 KB: that is not a photo we can edit" in page
    nothing_kept_or_charged(creator, settings, 10_000)


def test_a_single_pixel_bomb_is_refused_too(client, creator, edit_model, settings):
    client.force_login(creator)
    response = post_edit(client, edit_model, webp("bomb.webp", pixel_bomb_webp()))
    assert "megapixels in" in response.content.decode()
    nothing_kept_or_charged(creator, settings, 10_000)


def test_an_account_that_cannot_afford_the_batch_is_told_so_before_any_photo_is_opened(client, edit_model, settings):
    from accounts.tests.factories import UserFactory

    short = UserFactory()
    credits_grant(user=short, amount=edit_model.credit_cost * 9, key=f"purchase:short-{short.pk}")
    client.force_login(short)
    # Ten files that are no photos at all: the first thing said is the price, not the files.
    files = [SimpleUploadedFile(f"n{n}.webp", b"RIFF not a picture", content_type="image/webp") for n in range(10)]
    page = post_batch(client, edit_model, files).content.decode()
    assert "Not enough credits: this needs 10,000 and you have 9,000." in page
    assert "not a photo we can read" not in page
    assert "Buy more credits" in page
    nothing_kept_or_charged(short, settings, 9_000)

    pricey = AIModelFactory(
        key="pricey-edit", kind="image_edit", aspect_ratios={"original": "original"}, credit_cost=10_000
    )
    not_a_photo = SimpleUploadedFile("n.webp", b"RIFF not a picture", content_type="image/webp")
    page = post_edit(client, pricey, not_a_photo).content.decode()
    assert "Not enough credits" in page and "not a photo we can read" not in page


def test_a_batch_over_the_pixel_budget_is_refused_whole(client, creator, edit_model, settings):
    credits_grant(user=creator, amount=10_000, key="purchase:budget")
    buffer = io.BytesIO()
    Image.new("RGB", (6_000, 4_500), (90, 140, 200)).save(buffer, format="JPEG", quality=60)  # 27 MP each
    big = buffer.getvalue()
    assert MAX_PIXELS_PER_REQUEST < 10 * 6_000 * 4_500
    client.force_login(creator)
    files = [SimpleUploadedFile(f"b{n}.jpg", big, content_type="image/jpeg") for n in range(10)]
    page = post_batch(client, edit_model, files).content.decode()
    assert "These photos are 270 megapixels together; one batch can be up to 250 megapixels" in page
    nothing_kept_or_charged(creator, settings, 20_000)


def animation(fmt: str) -> bytes:
    frames = [Image.new("RGB", (64, 48), colour) for colour in ((200, 30, 30), (30, 200, 30), (30, 30, 200))]
    buffer = io.BytesIO()
    extra = {"xmp": XMP} if fmt == "WEBP" else {}
    frames[0].save(buffer, format=fmt, save_all=True, append_images=frames[1:], duration=[100, 200, 300], loop=0,
                   exif=_exif(), **extra)  # fmt: skip
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["WEBP", "PNG"])
def test_an_animated_photo_is_refused_with_a_message(client, creator, edit_model, settings, fmt):
    data = animation(fmt)
    assert b"CAMERA-SERIAL" in data or b"Exif" in data
    client.force_login(creator)
    response = post_edit(client, edit_model, SimpleUploadedFile(f"moving.{fmt.lower()}", data))
    assert f"moving.{fmt.lower()} is an animation; choose a still photo" in response.content.decode()
    nothing_kept_or_charged(creator, settings, 10_000)


@pytest.mark.parametrize("fmt", ["WEBP", "PNG"])
def test_an_animation_is_written_again_frame_by_frame_without_its_metadata(fmt):
    clean, width, height = image_without_metadata(animation(fmt))
    assert_no_metadata(clean)
    with Image.open(io.BytesIO(clean)) as image:
        assert (image.format, image.n_frames, (width, height)) == (fmt, 3, (48, 64))  # upright, as EXIF said
        durations = []
        for index in range(image.n_frames):
            image.seek(index)
            image.load()
            durations.append(image.info.get("duration"))
            assert not image.getexif()
        assert durations == [100, 200, 300]


def test_uploads_have_a_limit_of_their_own(client, creator, edit_model, settings, stopped_clock):
    settings.RATELIMIT_UPLOADS_PER_USER = "2/m"
    credits_grant(user=creator, amount=10_000, key="purchase:limit")
    client.force_login(creator)
    for _ in range(2):
        assert post_edit(client, edit_model, photo()).status_code == 302
    assert post_edit(client, edit_model, photo()).status_code == 429
    # Creating without a photo is counted apart (the job limit): still open.
    form = {"model": local_model().pk, "prompt": "A lighthouse", "aspect_ratio": "square",
            "form_token": str(uuid.uuid4())}  # fmt: skip
    assert client.post(reverse("create"), form).status_code == 302


def test_the_workers_decoding_is_stopped_at_its_time_limit_and_the_job_refunded(client, creator, edit_model, settings):
    settings.UPLOAD_PROCESS_SECONDS = 0.3
    # A real 40 MP colour photo, progressive: decoding and writing it again takes over a second
    # here, several times the limit, even on a quick machine.
    gradient = Image.linear_gradient("L").resize((7_000, 5_700))
    colours = (
        gradient,
        gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        gradient.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
    )
    buffer = io.BytesIO()
    Image.merge("RGB", colours).save(buffer, format="JPEG", quality=90, progressive=True)
    client.force_login(creator)
    assert post_edit(client, edit_model, SimpleUploadedFile("big.jpg", buffer.getvalue())).status_code == 302
    job = Job.objects.get()
    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "failed"
    assert (
        job.error_message
        == "Your photo took too long to process; try a smaller photo or a JPEG. Your credits were refunded."
    )
    assert LedgerEntry.objects.filter(kind="refund", reference=f"job:{job.pk}").count() == 1
    assert balance_of(creator) == 10_000
    assert stored_files(settings) == []  # the file as it came is not kept


def test_a_photo_damaged_inside_fails_its_job_with_a_message_and_is_not_kept(client, creator, edit_model, settings):
    data = bytearray(photo_bytes("PNG", size=(300, 300)))
    start = data.find(b"IDAT") + 4
    data[start + 6 : start + 36] = bytes(range(30))  # the compressed pixels, not the file's end
    client.force_login(creator)
    assert post_edit(client, edit_model, SimpleUploadedFile("broken.png", bytes(data))).status_code == 302
    job = Job.objects.get()
    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.error_message) == (
        "failed", "Your photo is damaged or incomplete; try exporting it again. Your credits were refunded.",
    )  # fmt: skip
    assert balance_of(creator) == 10_000
    assert stored_files(settings) == []
    # Running it again says the photo is gone instead of failing again.
    response = client.post(reverse("job_again", args=[job.pk]), {"form_token": str(uuid.uuid4())}, follow=True)
    assert "no longer kept" in response.content.decode()
