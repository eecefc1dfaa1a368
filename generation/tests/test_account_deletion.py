from __future__ import annotations

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from billing.models import LedgerEntry
from generation.models import Job
from generation.services import job_create, job_run
from generation.tests.factories import local_model

pytestmark = pytest.mark.django_db


def test_deleting_an_account_deletes_its_files_and_prompts_but_keeps_the_ledger(
    client, creator, django_capture_on_commit_callbacks
):
    job = job_create(user=creator, model=local_model(), prompt="my private idea", aspect_ratio="square")
    job_run(job_id=job.id)
    output = job.outputs.get()
    names = [output.file.name, output.thumbnail.name]
    assert all(default_storage.exists(name) for name in names)

    client.force_login(creator)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("delete_account"), {"confirm_email": creator.email})

    job.refresh_from_db()
    assert job.prompt == "" and job.deleted_at is not None
    assert not job.outputs.exists()
    assert not any(default_storage.exists(name) for name in names)
    assert Job.objects.filter(pk=job.pk).exists()
    assert LedgerEntry.objects.filter(reference=f"job:{job.id}").exists()
