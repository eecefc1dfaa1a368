from __future__ import annotations

import io
import uuid

import av
import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from billing.models import LedgerEntry
from billing.services import balance_of
from generation.models import Job, SiteSettings
from generation.services import GenerationError, job_cancel, job_create, job_run, job_share
from generation.tests.factories import AIModelFactory, local_model, replicate_model
from generation.tests.polling import run_to_the_end
from tests.concurrency import jobs_start_in_threads

pytestmark = pytest.mark.django_db

VIDEO_RATIOS = {"portrait": "9:16", "square": "1:1", "landscape": "16:9"}


def local_video_model(seconds: int = 3, cost: int = 2_000):
    return AIModelFactory(
        key=f"test-video-{seconds}", name=f"Preview video {seconds} s", kind="video", credit_cost=cost,
        duration_seconds=seconds, aspect_ratios=VIDEO_RATIOS,
    )  # fmt: skip


def refunds(job) -> int:
    return LedgerEntry.objects.filter(kind="refund", reference=f"job:{job.id}").count()


# --- Video ---------------------------------------------------------------------------------


def test_a_local_video_job_makes_a_playable_clip_and_a_poster(client, creator):
    client.force_login(creator)
    model = local_video_model(3)
    data = {"model": model.pk, "prompt": "Waves at night", "aspect_ratio": "landscape", "style": "cinematic",
            "form_token": str(uuid.uuid4())}  # fmt: skip
    client.post(reverse("create_video"), data)
    job = Job.objects.get()
    assert (job.kind, job.cost, job.duration_seconds, job.style) == ("video", 2_000, 3, "cinematic")
    job_run(job_id=job.id)
    job.refresh_from_db()
    assert job.status == "succeeded"
    output = job.outputs.get()
    assert output.content_type == "video/mp4" and (output.width, output.height) == (512, 288)
    with default_storage.open(output.file.name) as stored, av.open(io.BytesIO(stored.read())) as clip:
        stream = clip.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert float(stream.duration * stream.time_base) == pytest.approx(3, abs=0.2)
    assert output.thumbnail.name and default_storage.exists(output.thumbnail.name)
    page = client.get(reverse("job_detail", args=[job.id])).content.decode()
    assert "<video" in page and f'poster="{reverse("output_thumbnail", args=[output.id])}"' in page
    gallery = client.get(reverse("gallery"), {"kind": "video"}).content.decode()
    assert reverse("output_thumbnail", args=[output.id]) in gallery and "Video" in gallery


def test_video_prices_follow_the_length_and_presets_shape_the_prompt(creator, fake_replicate):
    three = AIModelFactory(key="rv3", name="Seedance 3 s", kind="video", provider="replicate",
                           provider_ref="bytedance/seedance-1-lite", credit_cost=2_000, duration_seconds=3,
                           aspect_ratios=VIDEO_RATIOS, timeout_seconds=30)  # fmt: skip
    five = AIModelFactory(key="rv5", name="Seedance 5 s", kind="video", provider="replicate",
                          provider_ref="bytedance/seedance-1-lite", credit_cost=3_000, duration_seconds=5,
                          aspect_ratios=VIDEO_RATIOS, timeout_seconds=30)  # fmt: skip
    short = job_create(user=creator, model=three, prompt="A fox", aspect_ratio="portrait", style="anime")
    long = job_create(user=creator, model=five, prompt="A fox", aspect_ratio="portrait")
    assert balance_of(creator) == 10_000 - 2_000 - 3_000
    run_to_the_end(short.id)
    short.refresh_from_db()
    sent = fake_replicate.predictions[short.prediction_id].input
    assert sent["duration"] == 3 and sent["aspect_ratio"] == "9:16"
    assert sent["prompt"].startswith("A fox. anime style")
    assert short.status == "succeeded" and short.outputs.get().content_type == "video/mp4"
    assert long.cost == 3_000


def test_an_undecodable_video_fails_and_refunds(creator, fake_replicate):
    model = AIModelFactory(key="rvx", name="Broken video", kind="video", provider="replicate",
                           provider_ref="owner/video-model", credit_cost=2_000, duration_seconds=3,
                           aspect_ratios=VIDEO_RATIOS, timeout_seconds=30)  # fmt: skip
    job = job_create(user=creator, model=model, prompt="broken [corrupt]", aspect_ratio="square")
    run_to_the_end(job.id)
    job.refresh_from_db()
    assert job.status == "failed" and not job.outputs.exists() and refunds(job) == 1


# --- Emergency switch ------------------------------------------------------------------------


def test_with_the_switch_off_submissions_are_refused_uncharged_and_running_jobs_finish(client, creator):
    model = local_model()
    running = job_create(user=creator, model=model, prompt="already queued", aspect_ratio="square")
    switch = SiteSettings.current()
    switch.generation_enabled = False
    switch.pause_message = "Paused for maintenance until 14:00 UTC."
    switch.save()

    client.force_login(creator)
    page = client.get(reverse("create")).content.decode()
    assert "Paused for maintenance until 14:00 UTC." in page and "disabled" in page
    data = {"model": model.pk, "prompt": "new one", "aspect_ratio": "square", "form_token": str(uuid.uuid4())}
    response = client.post(reverse("create"), data)
    assert "Paused for maintenance" in response.content.decode()
    with pytest.raises(GenerationError, match="Paused"):
        job_create(user=creator, model=model, prompt="direct", aspect_ratio="square")
    assert Job.objects.count() == 1
    assert balance_of(creator) == 9_500

    job_run(job_id=running.id)
    assert Job.objects.get(pk=running.pk).status == "succeeded"

    switch.generation_enabled = True
    switch.save()  # no restart: the next request reads it
    assert client.post(reverse("create"), data | {"form_token": str(uuid.uuid4())}).status_code == 302
    assert Job.objects.count() == 2


def test_staff_flip_the_switch_in_the_admin(staff_client):
    SiteSettings.current()
    response = staff_client.post(
        reverse("admin:generation_sitesettings_change", args=[1]),
        {"generation_enabled": "", "pause_message": "Back soon.", "staff_reason": "Provider outage"},
    )
    assert response.status_code == 302
    assert not SiteSettings.current().generation_enabled


# --- Cancel ----------------------------------------------------------------------------------


def test_a_queued_job_is_canceled_and_refunded_once(client, creator):
    job = job_create(user=creator, model=local_model(), prompt="never mind", aspect_ratio="square")
    client.force_login(creator)
    client.post(reverse("job_cancel", args=[job.id]))
    client.post(reverse("job_cancel", args=[job.id]))
    job.refresh_from_db()
    assert job.status == "canceled" and refunds(job) == 1
    assert balance_of(creator) == 10_000
    job_run(job_id=job.id)  # the task arriving later does nothing
    assert Job.objects.get(pk=job.pk).status == "canceled"


@pytest.mark.django_db(transaction=True)
def test_a_running_job_is_canceled_at_the_provider_and_refunded_once(creator, fake_replicate):
    fake_replicate.predict_seconds = 30
    job = job_create(user=creator, model=replicate_model(), prompt="too slow", aspect_ratio="square")

    (thread,) = jobs_start_in_threads([job])
    from generation.tests.test_qcluster import wait_for

    wait_for(lambda: Job.objects.get(pk=job.pk).prediction_id, 10, "no prediction was created")
    job_cancel(job=Job.objects.get(pk=job.pk))
    thread.join(timeout=10)
    assert not thread.is_alive()
    job.refresh_from_db()
    assert job.status == "canceled"
    assert fake_replicate.predictions[job.prediction_id].cancel_count >= 1
    assert refunds(job) == 1 and balance_of(creator) == 10_000
    assert not job.outputs.exists()


def test_a_finished_job_cannot_be_canceled(client, creator):
    job = job_create(user=creator, model=local_model(), prompt="done", aspect_ratio="square")
    job_run(job_id=job.id)
    with pytest.raises(GenerationError, match="already finished"):
        job_cancel(job=Job.objects.get(pk=job.pk))
    client.force_login(creator)
    response = client.post(reverse("job_cancel", args=[job.id]), follow=True)
    assert "already finished" in response.content.decode()
    assert refunds(job) == 0 and Job.objects.get(pk=job.pk).status == "succeeded"


# --- Sharing ---------------------------------------------------------------------------------


def test_a_shared_link_shows_the_job_to_anyone_until_revoked(client, creator):
    job = job_create(user=creator, model=local_model(), prompt="A lantern festival", aspect_ratio="square")
    job_run(job_id=job.id)
    client.force_login(creator)
    client.post(reverse("job_share", args=[job.id]))
    job.refresh_from_db()
    link = f"/s/{job.share_token}/"
    assert link in client.get(reverse("job_detail", args=[job.id])).content.decode()

    client.logout()
    page = client.get(link).content.decode()
    assert "A lantern festival" in page
    assert 'property="og:image" content="http://testserver/s/' in page
    assert creator.email not in page and reverse("gallery") not in page
    media = client.get(f"/s/{job.share_token}/media/")
    assert media.status_code == 200 and b"".join(media.streaming_content)[:4] == b"\x89PNG"

    client.force_login(creator)
    client.post(reverse("job_share", args=[job.id]), {"share": "off"})
    client.logout()
    assert client.get(link).status_code == 404
    assert client.get(f"/s/{job.share_token}/media/").status_code == 404


def test_a_private_or_unfinished_job_never_has_a_working_link(client, creator):
    job = job_create(user=creator, model=local_model(), prompt="private", aspect_ratio="square")
    with pytest.raises(GenerationError):
        job_share(job=job)
    job_run(job_id=job.id)
    for token in ("", "guess", str(job.id), job.id.hex):
        assert client.get(f"/s/{token}/").status_code == 404


def test_with_the_switch_off_an_edit_stores_no_photo(client, creator, settings):
    import os

    from generation.models import Upload
    from generation.tests.photos import photo

    edit = AIModelFactory(key="sw-edit", name="Editor", kind="image_edit", aspect_ratios={"original": "original"})
    SiteSettings.objects.update_or_create(pk=1, defaults={"generation_enabled": False})
    client.force_login(creator)
    data = {"model": edit.pk, "prompt": "warmer", "form_token": str(uuid.uuid4()), "photo": photo()}
    response = client.post(reverse("create_edit"), data)
    assert "paused" in response.content.decode()
    assert not Upload.objects.exists() and not Job.objects.exists()
    assert not os.path.exists(settings.MEDIA_ROOT) or not any(files for _, _, files in os.walk(settings.MEDIA_ROOT))
    assert balance_of(creator) == 10_000
