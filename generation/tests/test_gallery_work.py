"""The gallery as a place to work: search by prompt, favourites, and many at once (zip, delete)."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.tests.factories import UserFactory
from billing.services import credits_grant
from generation.models import Job, JobOutput
from generation.services import job_create, job_favourite, job_run
from generation.tests.factories import local_model

pytestmark = pytest.mark.django_db


def _finished(user, prompt: str) -> Job:
    job = job_create(user=user, model=local_model(), prompt=prompt, aspect_ratio="square")
    job_run(job_id=job.id)
    job.refresh_from_db()
    return job


def _captions(client, **params) -> list[str]:
    page = client.get(reverse("gallery"), params).content.decode()
    return re.findall(r'class="tile-caption">([^<]+)<', page)


def _output_ids(*jobs: Job) -> list[str]:
    return [str(output.id) for output in JobOutput.objects.filter(job__in=jobs)]


def test_search_finds_any_form_of_a_word_in_the_person_s_own_prompts_only(client, creator):
    _finished(creator, "Lighthouses on a stormy coast")
    _finished(creator, "A fox in the snow")
    _finished(creator, "A lighthouse keeper's cat")
    stranger = UserFactory()
    credits_grant(user=stranger, amount=5_000, key=f"purchase:s-{stranger.pk}")
    _finished(stranger, "A lighthouse of someone else")
    client.force_login(creator)
    assert _captions(client, q="lighthouse") == ["A lighthouse keeper&#x27;s cat", "Lighthouses on a stormy coast"]
    assert _captions(client, q='"stormy coast"') == ["Lighthouses on a stormy coast"]
    assert _captions(client, q="lighthouse -cat") == ["Lighthouses on a stormy coast"]
    assert _captions(client, q="storm", kind="video") == []
    page = client.get(reverse("gallery"), {"q": "whale"}).content.decode()
    assert "Nothing matches" in page and "“whale”" in page


def test_favourites_are_marked_from_the_gallery_and_filtered(client, creator):
    fox, boat = _finished(creator, "A fox"), _finished(creator, "A boat")
    client.force_login(creator)
    # Without script: the star is a button of the page's form, back to the same view.
    response = client.post(reverse("job_favourite", args=[fox.id]), {"favourite": "on", "back": "kind=image"})
    assert response.status_code == 302 and response["Location"] == reverse("gallery") + "?kind=image"
    assert _captions(client, fav="1") == ["A fox"]
    # With htmx: the star alone is swapped, pressed.
    star = client.post(reverse("job_favourite", args=[boat.id]), {"favourite": "on"}, headers={"HX-Request": "true"})
    assert 'aria-pressed="true"' in star.content.decode()
    assert _captions(client, fav="1") == ["A boat", "A fox"]
    client.post(reverse("job_favourite", args=[fox.id]), {"favourite": "off"})
    assert _captions(client, fav="1") == ["A boat"]
    assert _captions(client, fav="1", q="fox") == []


def test_someone_else_s_job_cannot_be_made_a_favourite(client, creator):
    job = _finished(creator, "A fox")
    other = UserFactory()
    client.force_login(other)
    assert client.post(reverse("job_favourite", args=[job.id]), {"favourite": "on"}).status_code == 404
    job.refresh_from_db()
    assert not job.favourite


def test_the_chosen_results_download_as_one_zip_and_another_s_are_left_out(client, creator):
    fox, boat, kite = _finished(creator, "A fox"), _finished(creator, "A boat"), _finished(creator, "A kite")
    stranger = UserFactory()
    credits_grant(user=stranger, amount=5_000, key=f"purchase:s-{stranger.pk}")
    theirs = _finished(stranger, "Not yours")
    client.force_login(creator)
    response = client.post(reverse("gallery_download"), {"output": _output_ids(fox, kite, theirs)})
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = archive.namelist()
    assert len(names) == 2 and all(name.endswith(".png") for name in names)
    kept = {JobOutput.objects.get(job=job).file.read() for job in (fox, kite)}
    assert {archive.read(name) for name in names} == kept
    assert boat.id.hex[:8] not in " ".join(names)


def test_downloading_nothing_says_so(client, creator):
    client.force_login(creator)
    response = client.post(reverse("gallery_download"), {}, follow=True)
    assert "Choose the pictures to download first." in response.content.decode()


def test_the_chosen_jobs_are_deleted_each_by_its_own_rule_and_another_s_stay(client, creator):
    fox, boat, kite = _finished(creator, "A fox"), _finished(creator, "A boat"), _finished(creator, "A kite")
    waiting = job_create(user=creator, model=local_model(), prompt="Still going", aspect_ratio="square")
    stranger = UserFactory()
    credits_grant(user=stranger, amount=5_000, key=f"purchase:s-{stranger.pk}")
    theirs = _finished(stranger, "Not yours")
    client.force_login(creator)
    response = client.post(
        reverse("gallery_delete"), {"output": _output_ids(fox, boat, theirs), "back": "fav=1"}, follow=False
    )
    assert response["Location"] == reverse("gallery") + "?fav=1"
    page = client.get(reverse("gallery")).content.decode()
    assert "2 jobs and their files were deleted." in page
    assert _captions(client) == ["A kite"]
    for job in (fox, boat):
        job.refresh_from_db()
        assert job.deleted_at is not None and job.prompt == "" and not JobOutput.objects.filter(job=job).exists()
    theirs.refresh_from_db()
    assert theirs.deleted_at is None and JobOutput.objects.filter(job=theirs).exists()
    waiting.refresh_from_db()
    assert waiting.deleted_at is None
    kite.refresh_from_db()
    assert kite.deleted_at is None


def test_a_redirect_back_never_leaves_the_site(client, creator):
    fox = _finished(creator, "A fox")
    client.force_login(creator)
    response = client.post(reverse("job_favourite", args=[fox.id]), {"favourite": "on", "back": "//evil.example"})
    assert response["Location"] == reverse("gallery")


def test_a_favourite_changes_the_kept_newest_page_at_once(client, creator, shared_cache):
    fox = _finished(creator, "A fox")
    client.force_login(creator)
    assert 'aria-pressed="false"' in client.get(reverse("gallery")).content.decode()
    job_favourite(job=fox, favourite=True)
    assert 'aria-pressed="true"' in client.get(reverse("gallery")).content.decode()


def test_search_results_page_older_through_both_steps_without_skipping_or_repeating(client, creator, monkeypatch):
    # A window of three jobs: the first step sees the newest three, the second the rest.
    monkeypatch.setattr("generation.search.WINDOW", 3)
    monkeypatch.setattr("generation.views.GALLERY_PAGE_SIZE", 2)
    for n in range(9):
        _finished(creator, f"A kite number {n}" if n % 3 != 1 else f"A boat number {n}")
    client.force_login(creator)
    seen, params = [], {"q": "kite"}
    while True:
        page = client.get(reverse("gallery"), params).content.decode()
        seen += re.findall(r'class="tile-caption">A kite number (\d)<', page)
        older = re.search(r'href="\?before=([0-9a-f_]+)[^"]*" rel="next"', page)
        if older is None:
            break
        params = {"q": "kite", "before": older.group(1)}
        assert "Newest" in page or len(seen) <= 2
    assert seen == ["8", "6", "5", "3", "2", "0"]


def test_search_results_take_the_same_few_queries_however_many_match(client, creator, django_assert_max_num_queries):
    _finished(creator, "A lighthouse at dawn")
    client.force_login(creator)
    with CaptureQueriesContext(connection) as one_result:
        assert _captions(client, q="lighthouse") == ["A lighthouse at dawn"]
    for n in range(8):
        _finished(creator, f"A lighthouse, number {n}")
    with django_assert_max_num_queries(len(one_result)):
        assert len(_captions(client, q="lighthouse")) == 9
