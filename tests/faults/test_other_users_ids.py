"""Every URL that takes an id of a person's thing, tried by someone else: always a 404."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.tests.factories import UserFactory
from billing.services import balance_of, credits_grant
from generation.models import Batch, Job
from generation.services import batch_create, job_create, job_run, job_share
from generation.tests.factories import AIModelFactory, local_model
from generation.tests.photos import photo
from generation.uploads import image_validate

pytestmark = pytest.mark.django_db


def id_urls(resolver=None, namespace: str = "") -> list[tuple[str, list[str]]]:
    """(url name, its parameter names) for every pattern that takes a uuid."""
    found = []
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            found += id_urls(entry, namespace + (f"{entry.namespace}:" if entry.namespace else ""))
        elif isinstance(entry, URLPattern) and entry.name:
            converters = entry.pattern.converters
            uuids = [name for name, converter in converters.items() if type(converter).__name__ == "UUIDConverter"]
            if uuids:
                found.append((namespace + entry.name, uuids))
    return found


def test_every_user_scoped_url_is_a_404_for_another_user():
    owner = UserFactory()
    credits_grant(user=owner, amount=20_000, key="purchase:owner")
    job = job_create(user=owner, model=local_model(), prompt="mine", aspect_ratio="square")
    job_run(job_id=job.id)
    job_share(job=Job.objects.get(pk=job.pk))
    edit = AIModelFactory(key="ou-edit", name="Editor", kind="image_edit", aspect_ratios={"original": "original"})
    batch = batch_create(user=owner, model=edit, prompt="mine too", photos=[image_validate(photo())])
    batch_job = batch.jobs.get()
    job_run(job_id=batch_job.id)
    ids = {
        "job_id": job.id,
        "output_id": Job.objects.get(pk=job.pk).outputs.get().id,
        "upload_id": batch_job.source_id,
        "batch_id": batch.id,
    }

    urls = id_urls()
    assert {name for name, _ in urls} >= {"job_detail", "output_file", "upload_file", "batch_detail"}
    unknown = {param for _, params in urls for param in params} - set(ids)
    assert not unknown, f"add an id for these parameters so their URLs are tried: {unknown}"

    stranger = UserFactory()
    credits_grant(user=stranger, amount=5_000, key="purchase:stranger")
    client = Client()
    client.force_login(stranger)
    for name, params in urls:
        url = reverse(name, kwargs={param: ids[param] for param in params})
        assert client.get(url).status_code in (404, 405), url
        assert client.post(url, {"reason": "x", "share": "off", "form_token": ""}).status_code in (404, 405), url

    # Nothing of the owner's changed hands or state.
    assert balance_of(stranger) == 5_000
    assert Job.objects.get(pk=job.pk).share_token is not None
    assert Job.objects.filter(user=stranger).count() == 0
    assert Batch.objects.filter(user=stranger).count() == 0
    assert reverse("job_detail", args=[job.id]) not in client.get("/gallery/").content.decode()
