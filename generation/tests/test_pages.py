from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import UserFactory
from billing.services import balance_of, credits_grant
from generation.models import Job
from generation.selectors import WAITING_FIELDS, job_waiting
from generation.services import job_create, job_run
from generation.tests.factories import local_model

pytestmark = pytest.mark.django_db


def make_jobs(user, count: int, *, run: bool = True) -> list[Job]:
    model = local_model()
    jobs = []
    for n in range(count):
        job = job_create(user=user, model=model, prompt=f"picture number {n}", aspect_ratio="square", seed=n)
        if run:
            job_run(job_id=job.id)
        jobs.append(job)
    return jobs


def test_the_create_page_shows_models_with_their_cost_and_the_balance(client, creator):
    local_model()
    client.force_login(creator)
    page = client.get(reverse("create")).content.decode()
    assert "Preview renderer" in page and "500 credits" in page
    assert "You have 10,000 credits" in page


def test_creating_from_the_form_redirects_to_the_job_page(client, creator):
    model = local_model()
    client.force_login(creator)
    token = str(uuid.uuid4())
    data = {"model": model.pk, "aspect_ratio": "square", "prompt": "A quiet harbour", "form_token": token}
    response = client.post(reverse("create"), data)
    job = Job.objects.get(user=creator)
    assert response.status_code == 302 and response["Location"] == reverse("job_detail", args=[job.id])
    # The same POST again (a double-click, a retried request) finds the same job.
    again = client.post(reverse("create"), data)
    assert again["Location"] == response["Location"]
    assert Job.objects.filter(user=creator).count() == 1
    assert balance_of(creator) == 9_500


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"prompt": "   "}, "Describe what you want to see."),
        ({"prompt": "x" * 2001}, "at most 2000 characters"),
        ({"model": 999_999}, "That model is not available"),
        ({"aspect_ratio": "panorama"}, "Select a valid choice"),
    ],
)
def test_bad_input_gets_a_clear_message_and_charges_nothing(client, creator, change, message):
    model = local_model()
    client.force_login(creator)
    data = {"model": model.pk, "aspect_ratio": "square", "prompt": "fine", "form_token": str(uuid.uuid4())} | change
    response = client.post(reverse("create"), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Job.objects.exists()
    assert balance_of(creator) == 10_000


def test_a_shape_the_model_does_not_offer_is_refused(client, creator):
    model = local_model()
    model.aspect_ratios = {"square": "1:1"}
    model.save()
    client.force_login(creator)
    data = {"model": model.pk, "aspect_ratio": "portrait", "prompt": "fine", "form_token": str(uuid.uuid4())}
    page = client.post(reverse("create"), data).content.decode()
    assert "offers square" in page
    assert not Job.objects.exists()


def test_short_of_credits_the_form_says_so_and_links_to_buying_more(client):
    user = UserFactory()
    credits_grant(user=user, amount=100, key="purchase:few")
    model = local_model()
    client.force_login(user)
    data = {"model": model.pk, "aspect_ratio": "square", "prompt": "fine", "form_token": str(uuid.uuid4())}
    page = client.post(reverse("create"), data).content.decode()
    assert "Not enough credits: this needs 500 and you have 100." in page
    assert reverse("billing") in page
    assert not Job.objects.exists()


def test_the_status_fragment_polls_until_the_job_is_final(client, creator):
    (job,) = make_jobs(creator, 1, run=False)
    client.force_login(creator)
    url = reverse("job_status", args=[job.id])
    fragment = client.get(url).content.decode()
    assert 'hx-trigger="every 1s, dp:resume"' in fragment and "<html" not in fragment
    assert f'hx-get="{url}?status=queued&amp;every=1"' in fragment
    # It backs off: every second at first, less often as the wait grows.
    with time_machine.travel(job.created_at + timedelta(seconds=45)):
        assert 'hx-trigger="every 3s' in client.get(url).content.decode()
    with time_machine.travel(job.created_at + timedelta(minutes=5)):
        assert 'hx-trigger="every 10s' in client.get(url).content.decode()
    job_run(job_id=job.id)
    response = client.get(url)
    fragment = response.content.decode()
    assert "hx-trigger" not in fragment
    assert "Download" in fragment
    assert response["HX-Retarget"] == "#job-layout"


def test_a_poll_that_finds_nothing_new_answers_204_and_a_change_brings_the_new_fragment(client, creator):
    (job,) = make_jobs(creator, 1, run=False)
    client.force_login(creator)
    url = reverse("job_status", args=[job.id])
    # What the page polls with: the state and the pace it shows.
    unchanged = client.get(url, {"status": "queued", "every": "1"})
    assert unchanged.status_code == 204 and unchanged.content == b""
    assert unchanged["Cache-Control"] == "no-store"
    # A worker picks it up: the next poll brings the running state.
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, started_at=timezone.now())
    moved = client.get(url, {"status": "queued", "every": "1"})
    assert moved.status_code == 200 and "Making it." in moved.content.decode()
    assert client.get(url, {"status": "running", "every": "1"}).status_code == 204
    # Time to slow down: the section comes back with the slower pace.
    with time_machine.travel(job.created_at + timedelta(seconds=45)):
        slower = client.get(url, {"status": "running", "every": "1"})
    assert slower.status_code == 200 and 'hx-trigger="every 3s' in slower.content.decode()
    # Another person's job is a 404 whatever the poll says.
    other = UserFactory.create()
    client.force_login(other)
    assert client.get(url, {"status": "running", "every": "1"}).status_code == 404


def test_the_status_poll_reads_the_job_once_with_all_its_section_shows(client, creator):
    local_model(expected_seconds=42)  # no finished job yet: the catalog's estimate is shown
    (job,) = make_jobs(creator, 1, run=False)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, started_at=timezone.now())
    waiting, full = job_waiting(user=creator, job_id=job.id), Job.objects.get(pk=job.pk)
    assert {name: getattr(waiting, name) for name in WAITING_FIELDS} == {
        name: getattr(full, name) for name in WAITING_FIELDS
    }
    client.force_login(creator)
    url = reverse("job_status", args=[job.id])
    client.get(url)  # the model's typical time is looked up once, then kept

    def job_reads(params: dict) -> tuple[int, int]:
        with CaptureQueriesContext(connection) as seen:
            response = client.get(url, params)
        return response.status_code, sum("generation_job" in query["sql"] for query in seen.captured_queries)

    # Rendered (the page showed it queued) and polled with nothing new: one read of the job,
    # nothing loaded after it for the section.
    assert job_reads({"status": "queued", "every": "1"}) == (200, 1)
    assert job_reads({"status": "running", "every": "1"}) == (204, 1)
    section = client.get(url, {"status": "queued", "every": "1"}).content.decode()
    assert "Making it." in section and 'data-typical="42"' in section
    # Another person's job, or a deleted one, is not found.
    assert job_waiting(user=UserFactory(), job_id=job.id) is None
    Job.objects.filter(pk=job.pk).update(deleted_at=timezone.now())
    assert job_waiting(user=creator, job_id=job.id) is None
    assert client.get(url).status_code == 404


def test_job_and_gallery_pages_run_a_fixed_number_of_queries(client, creator, django_assert_max_num_queries):
    credits_grant(user=creator, amount=50_000, key="purchase:many")
    client.force_login(creator)
    make_jobs(creator, 2)
    counts = {}
    for url_name in ("gallery", "job_detail", "job_status"):
        job = Job.objects.filter(user=creator).first()
        url = reverse(url_name, args=[job.id]) if url_name != "gallery" else reverse(url_name)
        with CaptureQueriesContext(connection) as few:
            assert client.get(url).status_code == 200
        counts[url_name] = len(few)
    make_jobs(creator, 20)
    for url_name, expected in counts.items():
        job = Job.objects.filter(user=creator).first()
        url = reverse(url_name, args=[job.id]) if url_name != "gallery" else reverse(url_name)
        with django_assert_max_num_queries(expected):
            assert client.get(url).status_code == 200
    # The final answer swaps in the whole layout once: the job, its outputs, what was made from
    # them and the catalog's prices for upscale, vary and animate.
    assert counts["job_status"] <= 6


def test_the_gallery_is_newest_first_filters_by_kind_and_lazy_loads(client, creator):
    jobs = make_jobs(creator, 3)
    client.force_login(creator)
    page = client.get(reverse("gallery")).content.decode()
    assert page.index("picture number 2") < page.index("picture number 0")
    assert 'loading="lazy"' in page
    assert "picture number" not in client.get(reverse("gallery"), {"kind": "video"}).content.decode()
    assert "picture number" in client.get(reverse("gallery"), {"kind": "image"}).content.decode()
    assert str(jobs[0].id) in page


def test_files_are_served_to_their_owner_only(client, creator):
    (job,) = make_jobs(creator, 1)
    output = job.outputs.get()
    client.force_login(creator)
    response = client.get(reverse("output_file", args=[output.id]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content)[:8] == b"\x89PNG\r\n\x1a\n"
    download = client.get(reverse("output_file", args=[output.id]), {"download": "1"})
    assert "attachment" in download["Content-Disposition"]
    assert client.get(reverse("output_thumbnail", args=[output.id])).status_code == 200


def test_another_users_job_output_and_download_are_404(client, creator):
    (job,) = make_jobs(creator, 1)
    output = job.outputs.get()
    stranger = UserFactory()
    credits_grant(user=stranger, amount=5_000, key="purchase:stranger")
    client.force_login(stranger)
    for url in (
        reverse("job_detail", args=[job.id]),
        reverse("job_status", args=[job.id]),
        reverse("output_file", args=[output.id]),
        reverse("output_file", args=[output.id]) + "?download=1",
        reverse("output_thumbnail", args=[output.id]),
    ):
        assert client.get(url).status_code == 404, url
    for url in (reverse("job_again", args=[job.id]), reverse("job_delete", args=[job.id])):
        assert client.post(url).status_code == 404, url
    assert "picture number" not in client.get(reverse("gallery")).content.decode()
    assert balance_of(stranger) == 5_000


def test_run_again_creates_a_new_charged_job_and_delete_removes_files(client, creator):
    from django.core.files.storage import default_storage

    (job,) = make_jobs(creator, 1)
    client.force_login(creator)
    response = client.post(reverse("job_again", args=[job.id]), {"form_token": str(uuid.uuid4())})
    new_job = Job.objects.exclude(pk=job.pk).get()
    assert response["Location"] == reverse("job_detail", args=[new_job.id])
    assert (new_job.prompt, new_job.seed) == (job.prompt, job.seed)
    assert balance_of(creator) == 9_000

    names = [job.outputs.get().file.name, job.outputs.get().thumbnail.name]
    client.post(reverse("job_delete", args=[job.id]))
    assert not any(default_storage.exists(name) for name in names)
    assert client.get(reverse("job_detail", args=[job.id])).status_code == 404
    assert balance_of(creator) == 9_000  # deleting is not refunding


def test_a_model_of_the_wrong_kind_is_refused(client, creator):
    from generation.tests.factories import AIModelFactory

    local_model()  # the image page's own model
    video = AIModelFactory(key="wrong-kind", name="A video model", kind="video", duration_seconds=3)
    client.force_login(creator)
    data = {"model": video.pk, "aspect_ratio": "square", "prompt": "fine", "form_token": str(uuid.uuid4())}
    page = client.post(reverse("create"), data).content.decode()
    assert "A video model makes videos; choose a model from this page." in page
    assert not Job.objects.exists() and balance_of(creator) == 10_000


def test_the_credit_history_links_a_job_charge_to_the_job_page(client, creator):
    # The ledger knows nothing of jobs: generation registers how its references are linked.
    [job] = make_jobs(creator, 1)
    client.force_login(creator)
    page = client.get(reverse("billing")).content.decode()
    assert f'href="/jobs/{job.id}/"' in page


def test_the_credit_history_links_a_charge_to_its_job_page(client, creator):
    # The ledger knows nothing of jobs: generation registered how `job:<uuid>` is shown.
    (job,) = make_jobs(creator, 1)
    client.force_login(creator)
    page = client.get(reverse("billing")).content.decode()
    assert f'<a href="{reverse("job_detail", args=[job.id])}">View job</a>' in page
