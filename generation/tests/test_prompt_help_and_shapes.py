"""Help with the prompt (presets, examples, negative prompts) and the shapes each model offers."""

from __future__ import annotations

import io

import pytest
from django.urls import reverse
from PIL import Image

from billing.services import balance_of
from generation.models import AIModel, Job, JobOutput
from generation.presets import surprise_prompt
from generation.services import GenerationError, job_create, job_run
from generation.tests.factories import AIModelFactory, local_model

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _own_catalog(db):
    # Each test offers only the models it makes: the seeded catalog steps aside.
    AIModel.objects.all().delete()


def _picture_size(job: Job) -> tuple[int, int]:
    output = JobOutput.objects.get(job=job)
    with output.file.open("rb") as file, Image.open(io.BytesIO(file.read())) as image:
        return image.size


def test_the_form_offers_only_the_shapes_of_the_page_s_models(client, creator):
    local_model(aspect_ratios={"square": "1:1", "wide": "16:9", "tall": "9:16"})
    client.force_login(creator)
    page = client.get(reverse("create")).content.decode()
    for shape in ('value="square"', 'value="wide"', 'value="tall"'):
        assert shape in page
    for shape in ('value="portrait"', 'value="landscape"', 'value="portrait_4_5"'):
        assert shape not in page
    assert "16:9" in page and "9:16" in page


def test_a_shape_the_chosen_model_does_not_offer_is_refused_and_nothing_is_charged(client, creator):
    narrow = local_model(aspect_ratios={"square": "1:1"})
    AIModelFactory(key="wide-one", aspect_ratios={"square": "1:1", "wide": "16:9"})
    client.force_login(creator)
    before = balance_of(creator)
    response = client.post(
        reverse("create"),
        {"model": narrow.pk, "prompt": "A harbour", "aspect_ratio": "wide", "form_token": "8a6e0a7e-2b43-4a43-9d3f-1c4c1d6e9f00"},
    )  # fmt: skip
    assert response.status_code == 200
    assert "Preview renderer offers square." in response.content.decode()
    assert balance_of(creator) == before and not Job.objects.exists()


@pytest.mark.parametrize(("shape", "size"), [("wide", (896, 504)), ("tall", (504, 896)), ("portrait_4_5", (640, 800)), ("portrait_3_4", (600, 800))])  # fmt: skip
def test_the_preview_renderer_draws_every_new_shape(creator, shape, size):
    shapes = {"wide": "16:9", "tall": "9:16", "portrait_4_5": "4:5", "portrait_3_4": "3:4"}
    model = local_model(aspect_ratios=shapes, input_defaults={})  # the renderer's own sizes
    job = job_create(user=creator, model=model, prompt="A comet over the sea", aspect_ratio=shape)
    job_run(job_id=job.id)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert _picture_size(job) == size


def test_the_catalog_migration_adds_the_new_shapes_to_the_models_that_take_them():
    from importlib import import_module

    from django.apps import apps

    ratios = {"portrait": "2:3", "square": "1:1", "landscape": "3:2"}
    AIModelFactory(key="flux-schnell", aspect_ratios=ratios)
    AIModelFactory(key="seedance-lite-3s", kind="video", aspect_ratios={"portrait": "9:16", "square": "1:1"})
    AIModelFactory(key="flux-kontext-pro", kind="image_edit", aspect_ratios={"original": "match_input_image"})
    AIModelFactory(key="local-preview", aspect_ratios=ratios)
    import_module("generation.migrations.0021_shapes_negative_prompts_favourites").seed(apps, None)
    offered = {model.key: model for model in AIModel.objects.all()}
    assert offered["flux-schnell"].aspect_ratios == ratios | {
        "wide": "16:9", "tall": "9:16", "portrait_4_5": "4:5", "portrait_3_4": "3:4"
    }  # fmt: skip
    assert offered["seedance-lite-3s"].aspect_ratios == {"portrait": "9:16", "square": "1:1", "portrait_3_4": "3:4"}
    assert offered["flux-kontext-pro"].aspect_ratios == {"original": "match_input_image"}
    assert offered["local-preview"].negative_prompt_input == "negative_prompt"
    assert not offered["flux-schnell"].takes_negative_prompt  # FLUX reads no negative prompt
    assert offered["seedance-lite-3s"].expected_seconds == 45


def test_an_image_style_preset_adds_its_words_to_what_the_renderer_is_given(client, creator):
    local_model()
    client.force_login(creator)
    client.post(
        reverse("create"),
        {"model": local_model().pk, "prompt": "A fox", "aspect_ratio": "square", "style": "watercolor",
         "form_token": "0b1a5a3c-0000-4000-8000-000000000001"},
    )  # fmt: skip
    job = Job.objects.get()
    assert job.style == "watercolor"
    job_run(job_id=job.id)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    page = client.get(reverse("job_detail", args=[job.id])).content.decode()
    assert "Watercolour" in page


def test_a_video_preset_is_refused_for_an_image(creator):
    with pytest.raises(GenerationError, match="style presets"):
        job_create(user=creator, model=local_model(), prompt="A fox", aspect_ratio="square", style="product")


def test_a_negative_prompt_reaches_a_model_that_takes_one_under_its_own_input_name(creator, fake_replicate):
    from generation.tests.factories import replicate_model

    model = replicate_model(negative_prompt_input="negative_prompt")
    job = job_create(user=creator, model=model, prompt="A quiet street", aspect_ratio="square", negative_prompt="cars")
    job_run(job_id=job.id)
    job.refresh_from_db()
    assert fake_replicate.predictions[job.prediction_id].input["negative_prompt"] == "cars"
    plain = AIModelFactory(key="no-negative", provider="replicate", provider_ref="black-forest-labs/flux-schnell")
    other = job_create(user=creator, model=plain, prompt="A quiet street", aspect_ratio="square")
    job_run(job_id=other.id)
    other.refresh_from_db()
    assert "negative_prompt" not in fake_replicate.predictions[other.prediction_id].input


def test_a_negative_prompt_is_refused_for_a_model_that_takes_none_and_nothing_is_charged(client, creator):
    model = local_model(negative_prompt_input="")
    before = balance_of(creator)
    with pytest.raises(GenerationError, match="takes no negative prompt"):
        job_create(user=creator, model=model, prompt="A fox", aspect_ratio="square", negative_prompt="snow")
    assert balance_of(creator) == before
    client.force_login(creator)
    assert 'name="negative_prompt"' not in client.get(reverse("create")).content.decode()


def test_the_form_offers_a_negative_prompt_only_with_a_model_that_takes_one(client, creator):
    model = local_model(negative_prompt_input="negative_prompt")
    client.force_login(creator)
    page = client.get(reverse("create")).content.decode()
    assert 'name="negative_prompt"' in page and f'data-models="{model.pk}"' in page
    client.post(
        reverse("create"),
        {"model": model.pk, "prompt": "A fox", "aspect_ratio": "square", "negative_prompt": "snow",
         "form_token": "0b1a5a3c-0000-4000-8000-000000000002"},
    )  # fmt: skip
    job = Job.objects.get()
    assert job.negative_prompt == "snow"
    remix = client.get(reverse("create"), {"from": job.id}).content.decode()
    assert "snow</textarea>" in remix


def test_an_empty_create_page_offers_example_prompts_and_a_surprise(client, creator):
    local_model()
    client.force_login(creator)
    page = client.get(reverse("create")).content.decode()
    assert "A lighthouse on a cliff in a storm, oil painting" in page
    assert "Surprise me" in page and 'id="surprise-prompts"' in page
    # Without script the links prefill the prompt on the server.
    prefilled = client.get(reverse("create"), {"prompt": "A red fox in fresh snow"}).content.decode()
    assert "A red fox in fresh snow</textarea>" in prefilled
    assert "Try one:" not in prefilled  # the ideas give way to the person's own prompt
    surprised = client.get(reverse("create"), {"surprise": "1"}).content.decode()
    assert "Try one:" not in surprised and "</textarea>" in surprised


def test_surprise_prompts_vary_and_photo_edits_get_changes_not_scenes():
    import random

    rng = random.Random(1)
    drawn = {surprise_prompt("image", rng) for _ in range(30)}
    assert len(drawn) > 20
    assert surprise_prompt("edit", rng).split()[0] in {"Make", "Add", "Turn", "Give"}
