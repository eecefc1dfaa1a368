"""A job staff run again is on the house from start to end: whatever becomes of it, no credit moves.

Support cannot move money, so a re-run neither gives nor takes credits: not when it is made, not
when it fails or is canceled (by its owner or by staff), and a staff refund finds nothing to give
back. The ledger, the person's balance and `reconcile` agree after every outcome."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from billing.models import LedgerEntry
from billing.reconcile.runner import reconcile_run
from billing.services import balance_of
from generation.models import Job, JobReport
from generation.services import job_create, job_fail, job_run
from generation.tests.factories import local_model

pytestmark = pytest.mark.django_db


def finished(user, prompt: str) -> Job:
    job = job_create(user=user, model=local_model(), prompt=prompt, aspect_ratio="square")
    job_run(job_id=job.id)
    return Job.objects.get(pk=job.pk)


def staff_action(staff_client, action: str, objects, url: str = "admin:generation_job_changelist"):
    data = {"action": action, "_selected_action": [str(o.pk) for o in objects], "staff_reason_given": "1",
            "reason": "Bad results after the outage"}  # fmt: skip
    return staff_client.post(reverse(url), data)


def rerun(staff_client, job: Job) -> Job:
    staff_action(staff_client, "rerun_jobs", [job])
    return Job.objects.exclude(pk=job.pk).get(user=job.user, prompt=job.prompt)


def owner_cancels(job: Job) -> None:
    owner = Client()
    owner.force_login(job.user)
    owner.post(reverse("job_cancel", args=[job.pk]))


def staff_cancels(job: Job, staff_client) -> None:
    staff_action(staff_client, "cancel_jobs", [job])


def provider_fails(job: Job, staff_client) -> None:
    job_fail(job_id=job.pk, message="The provider was down.")


def runs_to_its_end(job: Job, staff_client) -> None:
    job_run(job_id=job.pk)


def staff_refund_it(job: Job, staff_client) -> None:
    job_run(job_id=job.pk)
    staff_action(staff_client, "refund_jobs", [job])


def reported_and_refunded(job: Job, staff_client) -> None:
    job_run(job_id=job.pk)
    report = JobReport.objects.create(job=job, reason="Still blurry")
    staff_action(staff_client, "refund_reports", [report], url="admin:generation_jobreport_changelist")


OUTCOMES = {
    "succeeds": runs_to_its_end,
    "fails at the provider": provider_fails,
    "is canceled by its owner": lambda job, staff_client: owner_cancels(job),
    "is canceled by staff": staff_cancels,
    "is refunded by staff": staff_refund_it,
    "is reported and the report refunded": reported_and_refunded,
}


@pytest.mark.parametrize("original", ["A quiet harbour", "A quiet harbour [fail]"], ids=["succeeded", "failed"])
@pytest.mark.parametrize("outcome", list(OUTCOMES))
def test_a_staff_rerun_moves_no_credit_whatever_becomes_of_it(staff_client, creator, original, outcome, sync_queue):
    job = finished(creator, original)
    before = balance_of(creator)
    entries_before = LedgerEntry.objects.count()

    again = rerun(staff_client, job)
    assert again.status == Job.Status.QUEUED
    OUTCOMES[outcome](again, staff_client)

    assert balance_of(creator) == before
    assert LedgerEntry.objects.count() == entries_before
    assert not LedgerEntry.objects.filter(reference=f"job:{again.pk}").exists()
    run, findings, _ = reconcile_run(full=True)
    assert run.ok, [(f.name, f.count) for f in findings if not f.ok]


def test_a_rerun_canceled_by_its_owner_says_nothing_was_charged(staff_client, creator):
    again = rerun(staff_client, finished(creator, "A lighthouse"))
    owner = Client()
    owner.force_login(creator)
    page = owner.post(reverse("job_cancel", args=[again.pk]), follow=True).content.decode()
    assert "Canceled" in page and "credits are back" not in page and "were refunded" not in page
    assert Job.objects.get(pk=again.pk).status == Job.Status.CANCELED


def test_running_a_staff_rerun_again_is_charged_as_usual(staff_client, creator):
    again = rerun(staff_client, finished(creator, "A lighthouse"))
    job_run(job_id=again.pk)
    before = balance_of(creator)
    owner = Client()
    owner.force_login(creator)
    owner.post(reverse("job_again", args=[again.pk]))
    assert balance_of(creator) == before - local_model().credit_cost
