"""From one result to the next: upscale twice or four times as large, vary, remix, and animate a picture or a photo.
Each is a job of its own, charged from the catalog and linked to the picture it started from."""

from __future__ import annotations

import io
import uuid

import av
import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image

from accounts.tests.factories import UserFactory
from billing.models import LedgerEntry
from billing.services import balance_of, credits_grant
from generation.models import AIModel, Job, JobOutput, Kind, Upload
from generation.services import GenerationError, job_create, job_delete, job_run
from generation.tests.factories import AIModelFactory, local_animator, local_edit_model, local_model, local_upscaler
from generation.tests.photos import photo, photo_bytes
from generation.tests.polling import run_to_the_end

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _own_catalog(db):
    # Each test prices its own preview upscalers, editors and animators: the seeded ones step aside,
    # whether or not an earlier test's flush removed them already (the seeded Replicate ones are used).
    AIModel.objects.filter(
        kind__in=[Kind.UPSCALE, Kind.IMAGE_EDIT, Kind.ANIMATE], provider=AIModel.Provider.LOCAL
    ).update(enabled=False)


def finished_image(user, **fields) -> JobOutput:
    job = job_create(user=user, model=local_model(max_outputs=4), prompt="A lighthouse at dusk", aspect_ratio="landscape",
                     **fields)  # fmt: skip
    job_run(job_id=job.id)
    return JobOutput.objects.select_related("job").filter(job=job).order_by("index")[0]


def read(output: JobOutput) -> bytes:
    with default_storage.open(output.file.name) as file:
        return file.read()


def test_an_image_is_upscaled_x2_and_x4_as_jobs_of_their_own_shown_beside_it(client, creator):
    twice, four_times = local_upscaler(2), local_upscaler(4)
    source = finished_image(creator, num_outputs=2)
    client.force_login(creator)
    page = client.get(source.job.get_absolute_url()).content.decode()
    # Each picture offers both factors at the catalog's prices, before anything is charged.
    assert page.count("Upscale ×2 · 300") == 2 and page.count("Upscale ×4 · 500") == 2

    made = []
    for model in (twice, four_times):
        response = client.post(reverse("result_upscale", args=[source.id]),
                               {"model": model.pk, "form_token": str(uuid.uuid4())})  # fmt: skip
        job = Job.objects.get(model=model)
        assert response.status_code == 302 and response["Location"] == job.get_absolute_url()
        assert (job.kind, job.upscale_factor, job.cost, job.source_output) == (
            Kind.UPSCALE,
            model.upscale_factor,
            model.credit_cost,
            source,
        )
        job_run(job_id=job.id)
        job.refresh_from_db()
        output = job.outputs.get()
        assert (output.width, output.height) == (
            source.width * model.upscale_factor,
            source.height * model.upscale_factor,
        )
        made.append(job)
    assert balance_of(creator) == 10_000 - 1_000 - 300 - 500

    # The picture's page lists what was made from it; each upscale shows its picture beside it.
    page = client.get(source.job.get_absolute_url()).content.decode()
    assert f'href="/jobs/{made[0].id}/">Upscale ×2</a>' in page and f'href="/jobs/{made[1].id}/">Upscale ×4</a>' in page
    upscale_page = client.get(made[0].get_absolute_url()).content.decode()
    assert "The picture before upscaling" in upscale_page and f'href="/jobs/{source.job_id}/"' in upscale_page
    assert "Remix…" not in upscale_page


def test_the_upscale_keeps_its_picture_when_the_original_job_is_deleted(client, creator, staff_client):
    source = finished_image(creator)
    job = job_create(user=creator, model=local_upscaler(2), prompt=source.job.prompt, aspect_ratio="original",
                     source_output=source)  # fmt: skip
    job_delete(job=source.job)
    job_run(job_id=job.id)  # it runs from its own copy of the picture
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and not JobOutput.objects.filter(pk=source.pk).exists()
    client.force_login(creator)
    assert "A result you have since deleted" in client.get(job.get_absolute_url()).content.decode()
    # Staff see the job too, its vanished source shown as empty.
    assert staff_client.get(reverse("admin:generation_job_change", args=[job.pk])).status_code == 200


def test_a_picture_that_would_grow_too_large_or_is_not_yours_is_refused_before_charging(client, creator):
    source = finished_image(creator)
    JobOutput.objects.filter(pk=source.pk).update(width=4000, height=3000)
    source.refresh_from_db()
    with pytest.raises(GenerationError, match="×4 would be too large"):
        job_create(user=creator, model=local_upscaler(4), prompt="x", aspect_ratio="original", source_output=source)
    client.force_login(creator)
    page = client.get(source.job.get_absolute_url()).content.decode()
    assert "Upscale ×4" not in page  # not even offered
    someone = UserFactory()
    credits_grant(user=someone, amount=5_000, key=f"purchase:{someone.pk}")
    client.force_login(someone)
    assert client.post(reverse("result_upscale", args=[source.id]), {"model": local_upscaler(2).pk}).status_code == 404
    assert client.post(reverse("result_vary", args=[source.id])).status_code == 404
    page = client.get(reverse("create_animate"), {"image": source.id}).content.decode()
    assert f"/files/{source.id}/thumbnail/" not in page  # another's picture is not offered
    assert balance_of(someone) == 5_000 and Job.objects.filter(user=someone).count() == 0


def test_vary_edits_the_chosen_picture_and_remix_opens_the_edit_form_with_it(client, creator):
    editor = local_edit_model()
    source = finished_image(creator, num_outputs=2)
    second = source.job.outputs.get(index=1)
    client.force_login(creator)
    response = client.post(reverse("result_vary", args=[second.id]), {"form_token": str(uuid.uuid4())})
    vary = Job.objects.get(kind=Kind.IMAGE_EDIT)
    assert response["Location"] == vary.get_absolute_url()
    assert (vary.model, vary.cost, vary.prompt, vary.source_output) == (editor, 1_000, source.job.prompt, second)
    with default_storage.open(vary.source.file.name) as copy:
        assert copy.read() == read(second)  # the chosen picture, not the first

    form = client.get(reverse("create_edit"), {"image": second.id}).content.decode()
    assert f"/files/{second.id}/thumbnail/" in form and "Starting from your image" in form
    response = client.post(reverse("create_edit"), {
        "model": editor.pk, "prompt": "Make it snow", "source_output": str(second.id), "form_token": str(uuid.uuid4()),
    })  # fmt: skip
    remix = Job.objects.get(prompt="Make it snow")
    assert response.status_code == 302 and remix.source_output == second and remix.source is not None


@pytest.mark.parametrize("seconds", [3, 5])
def test_a_result_and_an_uploaded_photo_are_animated_at_the_catalogs_price_for_their_length(client, creator, seconds):
    animator = local_animator(seconds)
    source = finished_image(creator)
    client.force_login(creator)
    page = client.get(source.job.get_absolute_url()).content.decode()
    assert f'href="/create/animate/?image={source.id}"' in page
    form = client.get(reverse("create_animate"), {"image": source.id}).content.decode()
    assert f"{animator.credit_cost:,} credits" in form and "How should it move?" in form

    client.post(reverse("create_animate"), {
        "model": animator.pk, "prompt": "Waves roll in", "source_output": str(source.id), "form_token": str(uuid.uuid4()),
    })  # fmt: skip
    client.post(reverse("create_animate"), {
        "model": animator.pk, "prompt": "Leaves move", "photo": photo("garden.jpg"), "form_token": str(uuid.uuid4()),
    })  # fmt: skip
    jobs = list(Job.objects.filter(kind=Kind.ANIMATE).order_by("created_at"))
    assert [job.cost for job in jobs] == [animator.credit_cost] * 2
    assert jobs[0].source_output == source and jobs[1].source_output is None and jobs[1].source is not None
    for job in jobs:
        job_run(job_id=job.id)
        output = job.outputs.get()
        assert output.content_type == "video/mp4" and output.thumbnail
        with av.open(io.BytesIO(read(output))) as clip:
            stream = clip.streams.video[0]
            assert float(stream.duration * stream.time_base) == pytest.approx(seconds, abs=0.2)
    assert balance_of(creator) == 10_000 - 500 - 2 * animator.credit_cost


def test_an_animation_needs_a_picture_and_a_video_cannot_be_upscaled(client, creator):
    animator = local_animator(3)
    client.force_login(creator)
    response = client.post(
        reverse("create_animate"), {"model": animator.pk, "prompt": "Move", "form_token": str(uuid.uuid4())}
    )
    assert "Choose a photo to animate." in response.content.decode()
    video = finished_video(creator)
    with pytest.raises(GenerationError, match="Only a picture"):
        job_create(user=creator, model=local_upscaler(2), prompt="x", aspect_ratio="original", source_output=video)


def finished_video(user) -> JobOutput:
    model = AIModelFactory(key="test-local-video", kind="video", credit_cost=2_000, duration_seconds=1,
                           aspect_ratios={"square": "1:1"})  # fmt: skip
    job = job_create(user=user, model=model, prompt="A clip", aspect_ratio="square")
    job_run(job_id=job.id)
    return JobOutput.objects.select_related("job").get(job=job)


# --- On Replicate: the catalog's models with their real inputs, against the fake ------------------


def replicate_entry(**fields):
    return AIModelFactory(provider="replicate", timeout_seconds=30, **fields)


def test_real_esrgan_gets_the_picture_and_the_factor_and_its_upscale_is_kept(creator, fake_replicate):
    source = finished_image(creator)
    esrgan = replicate_entry(
        key="real-esrgan-4x", name="Real-ESRGAN ×4", kind="upscale", credit_cost=300, upscale_factor=4,
        provider_ref="nightmareai/real-esrgan:42fed1c4974146d4d2414e2be2c5277c7fcf05fcc3a73abf41610695738c1d7b",
        image_input="image", aspect_ratios={"original": ""}, input_defaults={"face_enhance": False},
    )  # fmt: skip
    job = job_create(
        user=creator, model=esrgan, prompt=source.job.prompt, aspect_ratio="original", source_output=source
    )
    run_to_the_end(job.id)
    job.refresh_from_db()
    sent = fake_replicate.predictions[job.prediction_id]
    assert sent.model == "nightmareai/real-esrgan"
    assert sent.input["scale"] == 4 and sent.input["face_enhance"] is False and "aspect_ratio" not in sent.input
    assert sent.input["image"].startswith(fake_replicate.url)  # the picture, uploaded by the client
    output = job.outputs.get()
    assert job.status == Job.Status.SUCCEEDED and (output.width, output.height) == (source.width * 4, source.height * 4)


def test_seedance_animates_a_photo_from_its_first_frame_for_the_length_paid_for(creator, fake_replicate):
    seedance = replicate_entry(
        key="seedance-lite-i2v-5s", name="Seedance 1 Lite · 5 s", kind="animate", credit_cost=3_000,
        duration_seconds=5, provider_ref="bytedance/seedance-1-lite", image_input="image",
        aspect_ratios={"original": ""}, input_defaults={"resolution": "480p"},
    )  # fmt: skip
    upload = Upload.objects.create(user=creator, file=default_storage.save("uploads/t.png", io.BytesIO(photo_bytes("PNG"))),
                                   content_type="image/png", size=1, width=320, height=240)  # fmt: skip
    job = job_create(user=creator, model=seedance, prompt="The boat sails off", aspect_ratio="original", source=upload)
    run_to_the_end(job.id)
    job.refresh_from_db()
    sent = fake_replicate.predictions[job.prediction_id].input
    assert (sent["duration"], sent["resolution"], sent["prompt"]) == (5, "480p", "The boat sails off")
    assert sent["image"].startswith(fake_replicate.url) and "input_image" not in sent
    assert job.status == Job.Status.SUCCEEDED and job.outputs.get().content_type == "video/mp4"
    assert balance_of(creator) == 10_000 - 3_000


def test_flux_schnell_makes_four_and_an_image_its_filter_holds_back_is_refunded(creator, fake_replicate):
    flux = replicate_entry(key="flux-schnell", name="FLUX.1 schnell", provider_ref="black-forest-labs/flux-schnell",
                           max_outputs=4, input_defaults={"output_format": "png", "num_outputs": 1})  # fmt: skip
    job = job_create(user=creator, model=flux, prompt="Tulips [nsfw-one]", aspect_ratio="square", num_outputs=4)
    run_to_the_end(job.id)
    job.refresh_from_db()
    assert fake_replicate.predictions[job.prediction_id].input["num_outputs"] == 4
    assert (job.status, job.outputs.count(), job.failed_outputs) == (Job.Status.SUCCEEDED, 3, 1)
    assert LedgerEntry.objects.filter(kind="refund", reference=f"job:{job.id}").count() == 1
    assert balance_of(creator) == 10_000 - 1_500
    with Image.open(io.BytesIO(read(job.outputs.first()))) as image:
        assert image.format == "PNG"


def test_the_landing_page_prices_upscales_and_animations_from_the_catalog(client):
    local_upscaler(2, credit_cost=250), local_upscaler(4, credit_cost=400)
    local_animator(3, credit_cost=1_800), local_animator(5, credit_cost=2_700)
    page = client.get(reverse("landing")).content.decode()
    assert '<h3>Upscale ×2</h3><p class="price">250 <span>credits</span>' in page and "×4 for 400" in page
    assert (
        '<h3>Animate a photo, 3 s</h3><p class="price">1,800 <span>credits</span>' in page and "5 s for 2,700" in page
    )


def test_running_an_animation_again_starts_from_the_same_picture(client, creator):
    source = finished_image(creator)
    job = job_create(
        user=creator, model=local_animator(3), prompt="Waves", aspect_ratio="original", source_output=source
    )
    job_run(job_id=job.id)
    client.force_login(creator)
    client.post(reverse("job_again", args=[job.id]), {"form_token": str(uuid.uuid4())})
    again = Job.objects.filter(kind=Kind.ANIMATE).latest("created_at")
    assert again.pk != job.pk and again.source_output == source and again.cost == 2_000


@pytest.mark.parametrize("kind", ["upscale", "animate"])
def test_an_upscale_or_animation_the_model_fails_is_refunded_once(creator, fake_replicate, capsys, kind):
    from django.core.management import call_command

    model = replicate_entry(
        key=f"failing-{kind}", kind=kind, credit_cost=700, image_input="image", aspect_ratios={"original": ""},
        provider_ref="bytedance/seedance-1-lite" if kind == "animate" else "acme/upscaler",
        duration_seconds=3 if kind == "animate" else None, upscale_factor=2 if kind == "upscale" else None,
    )  # fmt: skip
    # A picture the fake's model chokes on (its top-left pixel), as a real model may.
    upload = Upload.objects.create(
        user=creator, file=default_storage.save("uploads/p.png", io.BytesIO(photo_bytes("PNG", poison=True))),
        content_type="image/png", size=1, width=320, height=240,
    )  # fmt: skip
    job = job_create(user=creator, model=model, prompt="It fails", aspect_ratio="original", source=upload)
    assert balance_of(creator) == 10_000 - 700
    run_to_the_end(job.id)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and "refunded" in job.error_message
    assert [e.amount for e in LedgerEntry.objects.filter(kind="refund", reference=f"job:{job.id}")] == [700]
    assert balance_of(creator) == 10_000
    call_command("reconcile", "--json", "--full")
    assert '"ok": true' in capsys.readouterr().out
