"""A page that shows a person's data says so to every cache between us and them: `private,
no-store`. Public pages stay cacheable, and a shared picture keeps its short public lifetime."""

from __future__ import annotations

import pytest
from django.urls import reverse

from generation.services import job_create, job_run, job_share
from generation.tests.factories import local_model

pytestmark = pytest.mark.django_db


def cache_control(response) -> set[str]:
    return {part.strip() for part in response.get("Cache-Control", "").split(",") if part.strip()}


@pytest.fixture
def shared_job(creator):
    job = job_create(user=creator, model=local_model(), prompt="A red kite", aspect_ratio="square")
    job_run(job_id=job.id)
    job.refresh_from_db()
    job_share(job=job)
    return job


@pytest.mark.parametrize(
    "page",
    ["billing", "gallery", "create", "create_edit", "create_video", "batch_new", "batch_list", "profile",
     "delete_account", "landing", "terms", "account_email", "mfa_index"],
)  # fmt: skip
def test_signed_in_pages_are_private_and_not_stored(client, creator, page):
    client.force_login(creator)
    response = client.get(reverse(page))
    assert response.status_code == 200
    assert {"private", "no-store"} <= cache_control(response)


def test_a_job_page_and_a_shared_page_seen_by_its_owner_are_private(client, creator, shared_job):
    client.force_login(creator)
    for url in (reverse("job_detail", args=[shared_job.id]), f"/s/{shared_job.share_token}/"):
        assert {"private", "no-store"} <= cache_control(client.get(url)), url


def test_public_pages_for_visitors_are_not_marked_private(client, shared_job):
    for url in ("/", "/terms/", f"/s/{shared_job.share_token}/"):
        response = client.get(url)
        assert response.status_code == 200
        assert "private" not in cache_control(response), url


def test_a_shared_picture_keeps_its_public_lifetime_even_for_its_signed_in_owner(client, creator, shared_job, settings):
    client.force_login(creator)
    response = client.get(f"/s/{shared_job.share_token}/media/")
    assert cache_control(response) == {"public", f"max-age={settings.SHARED_MEDIA_MAX_AGE}"}
