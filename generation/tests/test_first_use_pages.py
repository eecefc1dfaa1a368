"""Small things a new person or a staff member notices on the pages."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import UserFactory
from billing.services import credits_grant
from generation.models import Job
from generation.services import job_create, job_run
from generation.tests.factories import AIModelFactory, local_model
from generation.uploads import MAX_UPLOAD_BYTES, UploadRejected, image_validate

pytestmark = pytest.mark.django_db


def test_the_upload_limit_reads_the_same_in_the_hint_and_in_the_error(client, creator):
    AIModelFactory(key="local-edit", kind="image_edit", aspect_ratios={"original": "original"})
    client.force_login(creator)
    page = client.get(reverse("create_edit")).content.decode()
    assert "up to 10 MB" in page
    with pytest.raises(UploadRejected) as rejected:
        image_validate(SimpleUploadedFile("big.jpg", b"x" * (MAX_UPLOAD_BYTES + 1)))
    assert "up to 10 MB" in str(rejected.value) and "10.0" not in str(rejected.value)


def test_admin_messages_keep_an_email_in_lower_case(staff_client):
    user = UserFactory(email="lower.case@example.com")
    url = reverse("admin:billing_adjust_credits") + f"?users={user.pk}"
    token = re.search(r'name="token" value="([0-9a-f-]+)"', staff_client.get(url).content.decode()).group(1)
    response = staff_client.post(url, {"amount": 2_500, "memo": "Welcome back", "token": token}, follow=True)
    page = response.content.decode()
    assert "lower.case@example.com" in page.split('class="messagelist"')[1].split("</ul>")[0]


def test_admin_lists_show_balances_with_thousands_separators(staff_client):
    user = UserFactory()
    credits_grant(user=user, amount=12_345, key=f"signup:{user.pk}", kind="signup_bonus")
    cells = {
        "admin:accounts_user_changelist": 'class="field-balance">12,345<',
        "admin:billing_creditaccount_changelist": 'class="field-balance_shown">12,345<',
        "admin:billing_ledgerentry_changelist": 'class="field-balance_after_shown">12,345<',
    }
    for name, cell in cells.items():
        page = staff_client.get(reverse(name)).content.decode()
        assert cell in page, name
    page = staff_client.get(reverse("admin:billing_ledgerentry_changelist")).content.decode()
    assert 'class="field-amount_shown">12,345<' in page


def test_the_job_status_fragment_brings_the_actions_once_the_job_is_final(client, creator):
    job = job_create(user=creator, model=local_model(), prompt="A red kite", aspect_ratio="square")
    client.force_login(creator)
    running = client.get(reverse("job_status", args=[job.id]))
    assert "Delete for good" not in running.content.decode()
    job_run(job_id=job.id)
    final = client.get(reverse("job_status", args=[job.id]))
    page = final.content.decode()
    # The final answer replaces the whole job layout: actions, sharing and reporting appear.
    for action in ("Delete for good", "Create a share link", "Report a bad result"):
        assert action in page


def test_run_again_makes_a_new_variation_unless_the_person_chose_the_seed(client, creator):
    model = local_model()
    client.force_login(creator)
    drawn = job_create(user=creator, model=model, prompt="A red kite", aspect_ratio="square")
    chosen = job_create(user=creator, model=model, prompt="A blue kite", aspect_ratio="square", seed=42)
    assert drawn.seed is not None and not drawn.seed_chosen  # the seed it runs with is recorded and shown
    page = client.get(reverse("job_detail", args=[drawn.id])).content.decode()
    assert str(drawn.seed) in page and "New variation" in page

    again = client.post(reverse("job_again", args=[drawn.id]), {"form_token": str(uuid.uuid4())})
    new = Job.objects.get(pk=again["Location"].split("/")[2])
    assert new.seed != drawn.seed and not new.seed_chosen
    again = client.post(reverse("job_again", args=[chosen.id]), {"form_token": str(uuid.uuid4())})
    repeat = Job.objects.get(pk=again["Location"].split("/")[2])
    assert (repeat.seed, repeat.seed_chosen) == (42, True)


def test_remix_prefills_the_create_page_with_the_prompt_and_settings(client, creator):
    job = job_create(user=creator, model=local_model(), prompt="A green kite", aspect_ratio="landscape", seed=7)
    client.force_login(creator)
    detail = client.get(reverse("job_detail", args=[job.id])).content.decode()
    assert f'href="/create/?from={job.id}"' in detail
    page = client.get(f"/create/?from={job.id}").content.decode()
    assert "\nA green kite</textarea>" in page
    assert 'value="landscape" checked' in " ".join(page.split())
    assert 'value="7"' in page
    # Someone else's job prefills nothing.
    other = UserFactory()
    client.force_login(other)
    assert "A green kite" not in client.get(f"/create/?from={job.id}").content.decode()


def test_a_waiting_job_shows_its_shape_elapsed_time_and_the_models_typical_time(client, creator):
    model = local_model()
    for n in range(3):
        job_run(job_id=job_create(user=creator, model=model, prompt=f"kite {n}", aspect_ratio="square").id)
    Job.objects.filter(user=creator).update(
        started_at=timezone.now() - timedelta(seconds=12), finished_at=timezone.now()
    )
    waiting = job_create(user=creator, model=model, prompt="A portrait kite", aspect_ratio="portrait")
    client.force_login(creator)
    page = client.get(reverse("job_detail", args=[waiting.id])).content.decode()
    assert "placeholder placeholder-portrait" in page
    assert "s</span> so far · usually about 12 s" in page
    assert 'data-typical="12"' in page
