"""The gallery's newest page is rendered once and kept until it changes (generation/gallery.py).

Each test runs on local memory (development: nothing is kept) and on Redis (production)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.tests.factories import UserFactory
from billing.services import credits_grant
from generation.services import job_create, job_delete, job_run
from generation.tests.factories import local_model

# The version moves when a change commits, as in production.
pytestmark = pytest.mark.django_db(transaction=True)


def _finished(user, prompt: str):
    job = job_create(user=user, model=local_model(), prompt=prompt, aspect_ratio="square")
    job_run(job_id=job.id)
    job.refresh_from_db()
    return job


def _gallery(client, **params) -> str:
    response = client.get(reverse("gallery"), params)
    assert response.status_code == 200
    return response.content.decode()


def test_a_job_that_finishes_shows_at_once_and_a_deleted_one_goes_at_once(client, creator, shared_cache):
    _finished(creator, "A lighthouse at dusk")
    client.force_login(creator)
    assert "A lighthouse at dusk" in _gallery(client)
    assert "A lighthouse at dusk" in _gallery(client, kind="image")

    fox = _finished(creator, "A fox in the snow")
    assert "A fox in the snow" in _gallery(client)
    assert "A fox in the snow" in _gallery(client, kind="image")

    job_delete(job=fox)
    assert "A fox in the snow" not in _gallery(client)
    assert "A fox in the snow" not in _gallery(client, kind="image")
    assert "A lighthouse at dusk" in _gallery(client)


def test_the_newest_page_is_read_from_the_database_once_until_it_changes(client, creator, shared_cache):
    _finished(creator, "A paper boat")
    client.force_login(creator)

    def outputs_queries() -> int:
        with CaptureQueriesContext(connection) as seen:
            assert "A paper boat" in _gallery(client)
        return sum("generation_joboutput" in query["sql"] for query in seen.captured_queries)

    assert outputs_queries() == 1
    # On Redis the grid is kept; on local memory (one process of several) it never is.
    assert outputs_queries() == (0 if shared_cache == "redis" else 1)
    # An older page is always read afresh (its cursor is the person's to choose).
    credits_grant(user=creator, amount=20_000, key="purchase:many-boats")
    for n in range(24):
        _finished(creator, f"boat {n}")
    older = _gallery(client).split('rel="next"')[0].rsplit('href="?before=', 1)[1].split('"')[0]
    with CaptureQueriesContext(connection) as seen:
        assert "A paper boat" in _gallery(client, before=older)
    assert any("generation_joboutput" in query["sql"] for query in seen.captured_queries)


def test_a_kept_gallery_is_only_ever_its_owners(client, creator, shared_cache):
    _finished(creator, "Mine alone")
    client.force_login(creator)
    assert "Mine alone" in _gallery(client)

    other = UserFactory()
    credits_grant(user=other, amount=5_000, key="purchase:other-gallery")
    client.force_login(other)
    page = _gallery(client)
    assert "Mine alone" not in page
    assert "Nothing here yet" in page
