"""What a demanding new user found on the walk: the balance after a refund, buying credits
after "New variation", waiting times, the shared page, and a showcase on a fresh `make dev`."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.urls import reverse

from accounts.tests.factories import UserFactory
from billing.services import balance_of, credits_grant
from generation.models import Job, ShowcaseItem
from generation.services import job_create, job_fail, job_run, job_share
from generation.tests.factories import AIModelFactory, local_model

pytestmark = pytest.mark.django_db


def _header_balance(html: str) -> str:
    return re.search(r'id="header-balance"[^>]*>([^<]+)<', html).group(1)


def test_the_final_status_of_a_refunded_job_brings_the_header_balance_along(client, creator):
    job = job_create(user=creator, model=local_model(), prompt="A comet", aspect_ratio="square")
    client.force_login(creator)
    assert _header_balance(client.get(reverse("job_detail", args=[job.id])).content.decode()) == "9,500"
    job_fail(job_id=job.id, message="The model could not make this.")
    final = client.get(reverse("job_status", args=[job.id]), {"status": "queued", "every": "1"}).content.decode()
    assert 'hx-swap-oob="true"' in final
    assert _header_balance(final) == "10,000" == f"{balance_of(creator):,}"


def test_a_batch_poll_brings_the_header_balance_along(client, creator):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from generation.services import batch_create
    from generation.tests.photos import photo_bytes
    from generation.uploads import image_validate

    model = AIModelFactory(
        key="local-edit", kind="image_edit", aspect_ratios={"original": "original"}, credit_cost=1_000
    )
    photos = [image_validate(SimpleUploadedFile(f"p{n}.png", photo_bytes("PNG", size=(40, 30)))) for n in range(2)]
    batch = batch_create(user=creator, model=model, prompt="Warmer", photos=photos)
    first = batch.jobs.order_by("created_at").first()
    job_fail(job_id=first.id, message="The model could not make this.")
    client.force_login(creator)
    poll = client.get(reverse("batch_status", args=[batch.id])).content.decode()
    assert _header_balance(poll) == "9,000"


def test_new_variation_without_enough_credits_says_where_to_buy_them(client):
    user = UserFactory()
    credits_grant(user=user, amount=500, key=f"purchase:t-{user.pk}")
    job = job_create(user=user, model=local_model(), prompt="A fox", aspect_ratio="square")
    job_run(job_id=job.id)
    client.force_login(user)
    page = client.post(reverse("job_again", args=[job.id]), {"form_token": ""}, follow=True).content.decode()
    message = re.search(r'<p class="message message-error">(.*?)</p>', page, re.S).group(1)
    assert "enough credits" in message.lower()
    assert f'href="{reverse("billing")}"' in message and "Buy more credits" in message


@pytest.mark.parametrize(("expected", "says"), [(3, "usually about 3 s"), (70, "usually about 70 s"), (240, "usually about 4 min")])  # fmt: skip
def test_a_waiting_job_says_the_model_s_own_typical_time_before_it_has_history(client, creator, expected, says):
    model = local_model(kind="video", duration_seconds=3, expected_seconds=expected)
    job = job_create(user=creator, model=model, prompt="Waves", aspect_ratio="square")
    client.force_login(creator)
    page = client.get(reverse("job_detail", args=[job.id])).content.decode()
    assert says in page
    assert "videos take a few minutes" not in page


def test_the_shared_page_has_a_main_heading(client, creator):
    job = job_create(user=creator, model=local_model(), prompt="A fox", aspect_ratio="square")
    job_run(job_id=job.id)
    job.refresh_from_db()
    job_share(job=job)
    job.refresh_from_db()
    page = client.get(reverse("shared", args=[job.share_token])).content.decode()
    assert len(re.findall(r"<h1\b", page)) == 1


def test_a_fresh_development_database_gets_a_showcase_from_the_demo_account(client, settings):
    AIModelFactory(key="local-preview", name="Preview renderer")
    AIModelFactory(key="local-edit", kind="image_edit", aspect_ratios={"original": "original"}, credit_cost=1_000)
    call_command("demo_account", stdout=io.StringIO())
    from billing.management.commands.demo_account import DEMO_EMAIL

    demo = UserFactory._meta.model.objects.get(email=DEMO_EMAIL)
    before = balance_of(demo)
    call_command("demo_showcase", stdout=io.StringIO())
    items = list(ShowcaseItem.objects.select_related("job"))
    assert len(items) == 3
    assert all(item.job.status == Job.Status.SUCCEEDED and item.job.share_token for item in items)
    assert balance_of(demo) == before  # the demo account keeps its credits for the person trying it
    landing = client.get(reverse("landing")).content.decode()
    assert landing.count('showcase-item"') == 3
    call_command("demo_showcase", stdout=io.StringIO())  # a second `make dev` adds nothing
    assert ShowcaseItem.objects.count() == 3


def test_the_billing_history_says_a_job_was_deleted_instead_of_linking_to_a_missing_page(client, creator):
    from generation.services import job_delete

    kept = job_create(user=creator, model=local_model(), prompt="Kept", aspect_ratio="square")
    gone = job_create(user=creator, model=local_model(), prompt="Gone", aspect_ratio="square")
    for job in (kept, gone):
        job_run(job_id=job.id)
        job.refresh_from_db()
    job_delete(job=gone)
    client.force_login(creator)
    page = client.get(reverse("billing")).content.decode()
    assert f'href="{reverse("job_detail", args=[kept.id])}"' in page
    assert reverse("job_detail", args=[gone.id]) not in page
    assert page.count("Job deleted") == 1
    assert client.get(reverse("job_detail", args=[gone.id])).status_code == 404  # why the link had to go
