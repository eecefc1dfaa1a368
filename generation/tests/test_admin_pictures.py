"""Staff see a job's pictures in the admin, served to those who may view jobs and nobody else."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from generation.models import JobOutput
from generation.services import job_create, job_report, job_run
from generation.tests.factories import local_model

pytestmark = pytest.mark.django_db


def _finished(creator):
    job = job_create(user=creator, model=local_model(), prompt="A kite", aspect_ratio="square")
    job_run(job_id=job.id)
    job.refresh_from_db()
    return job


def test_the_job_and_report_pages_show_the_pictures_and_the_job_page_links_to_no_owner_page(staff_client, creator):
    job = _finished(creator)
    report = job_report(user=creator, job=job, reason="Too dark")
    output = JobOutput.objects.get(job=job)
    picture = reverse("admin:generation_job_file", args=["thumbnail", output.id])
    job_page = staff_client.get(reverse("admin:generation_job_change", args=[job.id])).content.decode()
    assert picture in job_page and "View on site" not in job_page
    report_page = staff_client.get(reverse("admin:generation_jobreport_change", args=[report.pk])).content.decode()
    assert picture in report_page
    served = staff_client.get(picture)
    assert served.status_code == 200 and b"".join(served.streaming_content)[:4] == b"RIFF"  # a WebP thumbnail


def test_a_job_picture_in_the_admin_is_not_for_people_without_staff_access(client, creator):
    job = _finished(creator)
    output = JobOutput.objects.get(job=job)
    url = reverse("admin:generation_job_file", args=["output", output.id])
    client.force_login(creator)  # the owner, but not staff: the admin is not their door
    assert client.get(url).status_code == 302
    assert Client().get(url).status_code == 302
