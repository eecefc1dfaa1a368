from __future__ import annotations

import io
import uuid

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from billing.models import LedgerEntry
from billing.services import InsufficientCredits, balance_of
from generation.models import Job, JobOutput
from generation.providers.local import render_image
from generation.services import GenerationError, job_create, job_run
from generation.tests.factories import local_model

pytestmark = pytest.mark.django_db


def test_a_job_is_charged_when_created_and_keeps_its_files_when_it_succeeds(creator, settings):
    model = local_model(input_defaults={})  # the renderer's own portrait size
    job = job_create(user=creator, model=model, prompt="A red fox in snow", aspect_ratio="portrait", seed=7)
    assert job.status == Job.Status.QUEUED
    assert job.cost == 500
    assert balance_of(creator) == 9_500
    assert LedgerEntry.objects.get(idempotency_key=f"charge:{job.id}").reference == f"job:{job.id}"

    job_run(job_id=job.id)

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert job.started_at and job.finished_at and job.attempts == 1
    assert job.prediction_id.startswith("local-")
    output = job.outputs.get()
    assert (output.width, output.height, output.content_type) == (576, 864, "image/png")
    with default_storage.open(output.file.name) as stored:
        assert Image.open(io.BytesIO(stored.read())).size == (576, 864)
    assert default_storage.exists(output.thumbnail.name)
    # Keys carry no user data.
    assert creator.email.split("@")[0] not in output.file.name
    assert output.file.name.startswith("outputs/")
    assert balance_of(creator) == 9_500


@pytest.mark.parametrize(
    ("megapixels", "size"), [("0.25", (408, 616)), ("1", (816, 1224)), ("lots", (576, 864)), ("9", (576, 864))]
)
def test_a_models_megapixels_set_the_preview_s_size_in_its_shape(creator, megapixels, size):
    # As Flux models take it; a value the renderer cannot use leaves the preview's own size.
    model = local_model(input_defaults={"megapixels": megapixels})
    job = job_create(user=creator, model=model, prompt="A red fox in snow", aspect_ratio="portrait")
    job_run(job_id=job.id)
    output = JobOutput.objects.get(job=job)
    assert (output.width, output.height) == size
    with default_storage.open(output.file.name) as stored:
        assert Image.open(io.BytesIO(stored.read())).size == size


def test_the_preview_renderer_draws_the_same_picture_for_the_same_input():
    first = render_image(prompt="A lighthouse", seed=3, ratio="1:1")
    assert first == render_image(prompt="A lighthouse", seed=3, ratio="1:1")
    assert first != render_image(prompt="A lighthouse", seed=4, ratio="1:1")
    assert first != render_image(prompt="A lighthouse!", seed=3, ratio="1:1")


def test_a_failed_job_is_refunded_once_with_a_message(creator):
    job = job_create(user=creator, model=local_model(), prompt="please [fail]", aspect_ratio="square")
    job_run(job_id=job.id)
    job_run(job_id=job.id)  # a second delivery of the same task
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "refunded" in job.error_message
    assert job.provider_error
    assert balance_of(creator) == 10_000
    assert LedgerEntry.objects.filter(kind="refund", reference=f"job:{job.id}").count() == 1


def test_the_same_form_token_creates_one_job_and_one_charge(creator):
    model = local_model()
    token = uuid.uuid4()
    first = job_create(user=creator, model=model, prompt="twice", aspect_ratio="square", form_token=token)
    second = job_create(user=creator, model=model, prompt="twice", aspect_ratio="square", form_token=token)
    assert first == second
    assert Job.objects.filter(user=creator).count() == 1
    assert balance_of(creator) == 9_500


def test_without_enough_credits_there_is_no_job_and_no_charge(creator):
    model = local_model(credit_cost=20_000)
    with pytest.raises(InsufficientCredits, match="needs 20,000 and you have 10,000"):
        job_create(user=creator, model=model, prompt="too dear", aspect_ratio="square")
    assert not Job.objects.exists()
    assert balance_of(creator) == 10_000


def test_disabled_models_and_unoffered_shapes_are_refused(creator):
    model = local_model(enabled=False)
    with pytest.raises(GenerationError, match="not available"):
        job_create(user=creator, model=model, prompt="x", aspect_ratio="square")
    model.enabled = True
    model.aspect_ratios = {"square": "1:1"}
    model.save()
    with pytest.raises(GenerationError, match="does not offer the portrait shape"):
        job_create(user=creator, model=model, prompt="x", aspect_ratio="portrait")
    assert balance_of(creator) == 10_000


def test_a_price_change_applies_to_new_jobs_only(creator):
    model = local_model()
    old = job_create(user=creator, model=model, prompt="old price", aspect_ratio="square")
    model.credit_cost = 800
    model.save()
    new = job_create(user=creator, model=model, prompt="new price", aspect_ratio="square")
    old.refresh_from_db()
    assert (old.cost, new.cost) == (500, 800)
    job_run(job_id=old.id)
    assert balance_of(creator) == 10_000 - 500 - 800


def test_creating_enqueues_the_job_on_commit(creator, sync_queue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = job_create(user=creator, model=local_model(), prompt="queued and run", aspect_ratio="landscape")
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED


def test_a_preview_render_whose_worker_died_is_drawn_again_not_failed(creator):
    # The worker recorded its render and died before storing it (an OOM kill, a cluster the
    # supervisor restarted). The next worker takes the job over once its lease ran out.
    from django.utils import timezone

    job = job_create(user=creator, model=local_model(), prompt="A lighthouse", aspect_ratio="square")
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.RUNNING, prediction_id="local-died", started_at=timezone.now(), attempts=1,
        deadline_at=timezone.now() + timezone.timedelta(minutes=1), lease_until=timezone.now(),
    )  # fmt: skip
    job_run(job_id=job.id)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.outputs.count() == 1
    assert not LedgerEntry.objects.filter(idempotency_key=f"refund:{job.id}").exists()
