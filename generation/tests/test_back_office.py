"""Staff actions on jobs and users, and people reporting a bad result."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from billing.models import LedgerEntry
from billing.services import balance_of
from generation.models import Job, JobReport
from generation.services import GenerationError, job_create, job_run
from generation.tests.factories import AIModelFactory, local_model

pytestmark = pytest.mark.django_db


def finished_job(user, prompt="A castle", **kwargs) -> Job:
    job = job_create(user=user, model=kwargs.pop("model", None) or local_model(), prompt=prompt, aspect_ratio="square")
    job_run(job_id=job.id)
    job.refresh_from_db()
    return job


def act(staff_client, action: str, jobs, url="admin:generation_job_changelist", reason="Checked with the customer"):
    # Actions on money, jobs and users ask for a reason first; this is the confirmed form.
    data = {"action": action, "_selected_action": [str(j.pk) for j in jobs]}
    if reason is not None:
        data |= {"staff_reason_given": "1", "reason": reason}
    return staff_client.post(reverse(url), data)


def test_the_refund_action_refunds_once_when_clicked_twice_and_records_the_staff_member(staff_client, creator):
    job = finished_job(creator)
    act(staff_client, "refund_jobs", [job])
    act(staff_client, "refund_jobs", [job])
    refunds = LedgerEntry.objects.filter(kind="refund", reference=f"job:{job.id}")
    assert refunds.count() == 1
    assert refunds.get().actor == staff_client.staff and refunds.get().actor_type == "staff"
    assert balance_of(creator) == 10_000


def test_the_cancel_action_cancels_a_queued_job_once(staff_client, creator):
    job = job_create(user=creator, model=local_model(), prompt="queued", aspect_ratio="square")
    act(staff_client, "cancel_jobs", [job])
    act(staff_client, "cancel_jobs", [job])
    assert Job.objects.get(pk=job.pk).status == "canceled"
    assert LedgerEntry.objects.filter(kind="refund", reference=f"job:{job.id}").count() == 1


def test_run_again_never_charges_twice(staff_client, creator):
    from generation.services import job_fail

    succeeded = finished_job(creator, "fine")
    failed = job_create(user=creator, model=local_model(), prompt="provider was down", aspect_ratio="square")
    job_fail(job_id=failed.id, message="The provider was down.")
    assert balance_of(creator) == 9_500
    act(staff_client, "rerun_jobs", [succeeded, failed])
    act(staff_client, "rerun_jobs", [succeeded, failed])  # a second click makes no more jobs
    reruns = Job.objects.exclude(pk__in=[succeeded.pk, failed.pk])
    assert reruns.count() == 2
    for job in reruns:
        job_run(job_id=job.id)
    # Both re-runs are on the house: the person paid once for the succeeded job, and the failed
    # one was refunded.
    assert balance_of(creator) == 9_500
    assert set(reruns.values_list("status", flat=True)) == {"succeeded"}


def test_the_jobs_list_filters_and_shows_provider_errors(staff_client, creator):
    failed = finished_job(creator, "broken [fail]")
    page = staff_client.get(
        reverse("admin:generation_job_changelist"), {"status__exact": "failed", "kind__exact": "image"}
    )
    assert str(failed.pk) in page.content.decode()
    detail = staff_client.get(reverse("admin:generation_job_change", args=[failed.pk])).content.decode()
    assert "The preview renderer was asked to fail." in detail


def test_staff_find_users_by_email_with_balance_jobs_and_ledger(staff_client, creator):
    finished_job(creator)
    listing = staff_client.get(reverse("admin:accounts_user_changelist"), {"q": creator.email}).content.decode()
    assert creator.email in listing and "9,500" in listing
    page = staff_client.get(reverse("admin:accounts_user_change", args=[creator.pk])).content.decode()
    assert "Recent jobs" in page and "Recent ledger entries" in page and "Grant or correct credits" in page
    jobs = staff_client.post(
        reverse("admin:accounts_user_changelist"), {"action": "open_jobs", "_selected_action": [creator.pk]}
    )
    assert staff_client.get(jobs["Location"]).status_code == 200


def test_a_suspended_user_starts_no_new_jobs(staff_client, client, creator):
    act(staff_client, "suspend", [creator], url="admin:accounts_user_changelist")
    creator.refresh_from_db()
    with pytest.raises(GenerationError, match="suspended"):
        job_create(user=creator, model=local_model(), prompt="x", aspect_ratio="square")
    assert balance_of(creator) == 10_000
    act(staff_client, "unsuspend", [creator], url="admin:accounts_user_changelist")
    creator.refresh_from_db()
    assert job_create(user=creator, model=local_model(), prompt="x", aspect_ratio="square")


def test_a_reported_result_refunded_from_the_queue_shows_in_the_history(staff_client, client, creator):
    job = finished_job(creator)
    client.force_login(creator)
    client.post(reverse("job_report", args=[job.id]), {"reason": "It drew a cat, I asked for a castle."})
    report = JobReport.objects.get(job=job)
    assert report.status == "open"
    assert "Waiting for review" in client.get(reverse("job_detail", args=[job.id])).content.decode()
    again = client.post(reverse("job_report", args=[job.id]), {"reason": "again"}, follow=True)
    assert "already reported" in again.content.decode()

    queue = staff_client.get(reverse("admin:generation_jobreport_changelist")).content.decode()
    assert "It drew a cat" in queue
    act(staff_client, "refund_reports", [report], url="admin:generation_jobreport_changelist")
    act(staff_client, "refund_reports", [report], url="admin:generation_jobreport_changelist")
    report.refresh_from_db()
    assert report.status == "refunded" and report.staff == staff_client.staff
    assert balance_of(creator) == 10_000
    assert LedgerEntry.objects.filter(kind="refund", reference=f"job:{job.id}").count() == 1
    assert "Refunded" in client.get(reverse("job_detail", args=[job.id])).content.decode()
    history = client.get(reverse("billing")).content.decode()
    assert "Refund for a reported result" in history


def test_a_dismissed_report_refunds_nothing(staff_client, client, creator):
    job = finished_job(creator)
    client.force_login(creator)
    client.post(reverse("job_report", args=[job.id]), {"reason": "Meh"})
    act(staff_client, "dismiss_reports", [JobReport.objects.get()], url="admin:generation_jobreport_changelist")
    assert "Dismissed" in client.get(reverse("job_detail", args=[job.id])).content.decode()
    assert balance_of(creator) == 9_500


def test_opted_in_people_get_one_email_when_a_video_or_batch_is_done(creator, django_capture_on_commit_callbacks):
    from generation.services import batch_create
    from generation.tests.photos import photo
    from generation.uploads import image_validate

    creator.notify_long_jobs = True
    creator.save()
    video = AIModelFactory(key="nv", name="Preview video", kind="video", duration_seconds=3, credit_cost=2_000,
                           aspect_ratios={"square": "1:1"})  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        finished_job(creator, "A comet", model=video)
    assert [m.subject for m in mail.outbox] == ["Your video is ready"]

    edit = AIModelFactory(key="ne", name="Preview editor", kind="image_edit", aspect_ratios={"original": "original"})
    batch = batch_create(user=creator, model=edit, prompt="Warmer", photos=[image_validate(photo()) for _ in range(2)])
    with django_capture_on_commit_callbacks(execute=True):
        for job in batch.jobs.all():
            job_run(job_id=job.id)
    assert [m.subject for m in mail.outbox] == ["Your video is ready", "Your batch edit is done"]
    assert "2 photos edited" in mail.outbox[-1].body

    creator.notify_long_jobs = False
    creator.save()
    with django_capture_on_commit_callbacks(execute=True):
        finished_job(creator, "Another", model=video)
    assert len(mail.outbox) == 2


def test_the_finished_video_email_links_to_the_site_even_without_public_base_url(
    creator, settings, django_capture_on_commit_callbacks
):
    # A worker sends it, with no request to take a host from: the address comes from ALLOWED_HOSTS.
    settings.PUBLIC_BASE_URL = ""
    settings.PRODUCTION = True
    settings.ALLOWED_HOSTS = [".dreampixel.example.com", "*"]
    creator.notify_long_jobs = True
    creator.save()
    video = AIModelFactory(key="nv", name="Preview video", kind="video", duration_seconds=3, credit_cost=2_000,
                           aspect_ratios={"square": "1:1"})  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        job = finished_job(creator, "A comet", model=video)
    message = mail.outbox[-1]
    link = f"https://dreampixel.example.com/jobs/{job.id}/"
    assert link in message.body.split()
    assert f'href="{link}"' in message.alternatives[0][0]
