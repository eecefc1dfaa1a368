"""One bad item never stops a loop: the poller, the sweeper, reconcile, cleanup, the alerts and the
Stripe event retries each go past one poison row or payload, log it once, and the admin home
shows it."""

from __future__ import annotations

import contextlib
import json
import logging
from datetime import timedelta
from unittest import mock

import pytest
import time_machine
from django.contrib.sessions.models import Session
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone
from django_q.conf import Conf

from billing.models import LedgerEntry, StripeEvent
from billing.reconcile.findings import RECONCILE_CHECKS, Finding
from billing.services import balance_of
from billing.tests.stripe_kit import deliver, start_checkout
from core.models import SkippedItem
from generation.models import Job, JobOutput
from generation.services import job_create, job_run, predictions_poll_pass, sweep_stuck_jobs
from generation.services.running import job_claim
from generation.tests.factories import local_model, replicate_model
from operations.alerts import alerts_check

pytestmark = pytest.mark.django_db


def job_without_charge(user, model, **fields) -> Job:
    """A running job with no charge in the ledger (made by hand, or by a data fix gone wrong):
    failing it raises, because there is nothing to refund."""
    now = timezone.now()
    defaults = {
        "kind": model.kind, "prompt": "Made by hand", "aspect_ratio": "square", "cost": model.credit_cost,
        "provider": model.provider, "provider_ref": model.provider_ref, "status": Job.Status.RUNNING,
        "started_at": now - timedelta(minutes=10), "deadline_at": now - timedelta(minutes=5),
    }  # fmt: skip
    return Job.objects.create(user=user, model=model, **(defaults | fields))


def refunds(job: Job) -> int:
    return LedgerEntry.objects.filter(kind="refund", reference=f"job:{job.pk}").count()


def skipped(loop: str) -> list[SkippedItem]:
    return list(SkippedItem.objects.filter(loop=loop))


def logged_skips(caplog, loop: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "core.skips" and r.levelno >= logging.ERROR and r.loop == loop]


def admin_home(staff_client) -> str:
    return staff_client.get("/admin/").content.decode()


def test_the_poller_goes_past_a_job_it_cannot_fail_and_finishes_the_others(
    creator, fake_replicate, staff_client, caplog
):
    fake_replicate.predict_seconds = 60
    model = replicate_model()
    poison = job_without_charge(creator, model, prediction_id="made-by-hand", provider_token="x")
    good = job_create(user=creator, model=model, prompt="A kite", aspect_ratio="square")
    job_run(job_id=good.id)
    good.refresh_from_db()
    fake_replicate.set_predict_seconds(good.prediction_id, 0)
    with mock.patch.object(Conf, "SYNC", True):  # the finishing it enqueues runs inline
        assert [predictions_poll_pass(), predictions_poll_pass()] == [2, 1]
    assert Job.objects.get(pk=good.pk).status == Job.Status.SUCCEEDED
    assert Job.objects.get(pk=poison.pk).status == Job.Status.RUNNING
    (skip,) = skipped("poller")
    assert (skip.item, skip.times) == (f"job {poison.pk}", 2)
    assert "RefundNotAllowed" in skip.error
    assert len(logged_skips(caplog, "poller")) == 1  # twice skipped, logged once
    assert f"job {poison.pk}" in admin_home(staff_client)


def test_the_sweeper_goes_past_a_job_it_cannot_fail_and_still_requeues(creator, fake_replicate, settings, caplog):
    model = replicate_model(timeout_seconds=30)
    poison = job_without_charge(creator, model)
    overdue = job_create(user=creator, model=model, prompt="Never answered [slow]", aspect_ratio="square")
    job_claim(overdue.id)
    waiting = job_create(user=creator, model=local_model(), prompt="Its task was lost", aspect_ratio="square")
    later = timezone.now() + timedelta(
        seconds=max(30 + settings.JOB_SWEEP_GRACE_SECONDS, settings.JOB_REQUEUE_AFTER_SECONDS) + 60
    )
    with time_machine.travel(later):
        counts = sweep_stuck_jobs()
    assert counts == {"finished": 0, "failed": 1, "restarted": 1}
    assert Job.objects.get(pk=overdue.pk).status == Job.Status.FAILED
    assert refunds(overdue) == 1
    assert Job.objects.get(pk=waiting.pk).last_enqueued_at is not None
    assert [s.item for s in skipped("sweeper")] == [f"job {poison.pk}"]
    assert len(logged_skips(caplog, "sweeper")) == 1


def reconcile(capsys, *args: str) -> dict:
    capsys.readouterr()
    with contextlib.suppress(CommandError):  # exits 1 while something is found
        call_command("reconcile", "--json", *args)
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def a_check_that_raises():
    # A check another app registers, which trips over something (RECONCILE_CHECKS is the one
    # place checks plug into reconcile).
    def reads_a_row_it_cannot(*, since=None) -> Finding:
        raise ValueError("a row this check cannot read")

    RECONCILE_CHECKS.register("reads_a_row_it_cannot", reads_a_row_it_cannot)
    yield
    RECONCILE_CHECKS.unregister("reads_a_row_it_cannot")


def test_reconcile_runs_every_check_and_fix_past_a_check_that_raises_and_a_refund_it_cannot_write(
    capsys, creator, a_check_that_raises, staff_client
):
    model = local_model()
    poison = job_without_charge(creator, model, status=Job.Status.FAILED, finished_at=timezone.now())
    owed = job_create(user=creator, model=model, prompt="Failed, not refunded", aspect_ratio="square")
    Job.objects.filter(pk=owed.pk).update(status=Job.Status.FAILED, finished_at=timezone.now())
    report = reconcile(capsys, "--fix")
    assert refunds(Job.objects.get(pk=owed.pk)) == 1
    assert balance_of(creator) == 10_000
    assert report["fixed"]["finished_jobs_without_refund"] == 1
    broken = report["findings"]["reads_a_row_it_cannot"]
    assert broken["count"] == 1 and "could not run" in broken["description"]
    assert "jobs_without_charge" in report["findings"]  # the poison job is reported as it is
    items = {s.item for s in SkippedItem.objects.filter(loop="reconcile")}
    assert items == {"check reads_a_row_it_cannot", f"refund of job {poison.pk}"}
    assert "reads_a_row_it_cannot" in admin_home(staff_client)


def test_cleanup_goes_past_a_file_it_cannot_delete_and_runs_every_other_part(creator, settings, caplog):
    settings.CLEANUP_FAILED_AFTER_DAYS = 1
    model = local_model()
    jobs = [job_create(user=creator, model=model, prompt=f"Old {n}", aspect_ratio="square") for n in range(2)]
    for job in jobs:
        job_run(job_id=job.id)
    Job.objects.filter(pk__in=[j.pk for j in jobs]).update(deleted_at=timezone.now())
    # One output's file cannot be deleted (a directory with something in it stands at its name).
    stuck = JobOutput.objects.get(job=jobs[0])
    path = default_storage.path(stuck.file.name)
    default_storage.delete(stuck.file.name)
    default_storage.save(f"{stuck.file.name}/inside.txt", ContentFile(b"x"))
    other = JobOutput.objects.get(job=jobs[1])
    Session.objects.create(session_key="x" * 32, session_data="", expire_date=timezone.now() - timedelta(days=1))

    call_command("cleanup")

    assert not default_storage.exists(other.file.name)
    assert not Session.objects.filter(session_key="x" * 32).exists()  # a later part still ran
    assert default_storage.exists(f"{stuck.file.name}/inside.txt") and path
    (skip,) = skipped("cleanup")
    assert stuck.file.name in skip.item
    assert len(logged_skips(caplog, "cleanup")) == 1


def test_the_alerts_go_past_a_check_that_cannot_read_a_row_and_the_admin_home_opens(
    creator, settings, staff_client, mailoutbox
):
    # A job whose metrics hold text where a number belongs (a provider's odd answer) makes the
    # spend estimate's SQL fail; the failure-rate alert must still reach staff.
    settings.ALERT_MIN_JOBS = 2
    settings.ADMINS = [("Staff", "ops@dreampixel.example")]
    model = local_model()
    for n in range(3):
        job = job_create(user=creator, model=model, prompt=f"Failing {n}", aspect_ratio="square")
        Job.objects.filter(pk=job.pk).update(
            status=Job.Status.FAILED, finished_at=timezone.now(), prediction_id=f"p{n}",
            metrics={"predict_time": "n/a"},
        )  # fmt: skip
    sent = alerts_check()
    assert [alert.key for alert in sent] == ["failure_rate"]
    assert any("Alert: failure rate" in message.subject for message in mailoutbox)
    assert [s.item for s in skipped("alerts")] == ["check spend_alert"]
    page = admin_home(staff_client)
    assert "3 of 3 jobs failed" in page and "check spend_alert" in page


@pytest.mark.usefixtures("sync_queue")
def test_the_stripe_event_retries_go_past_a_poison_payload(capsys, stripe_fake, pack, buyer, caplog, staff_client):
    client = Client()
    # A signed event of a known type whose object is not what the type promises.
    poison = {
        "id": "evt_poison", "object": "event", "type": "checkout.session.completed", "livemode": False,
        "api_version": "2025-01-01", "created": 1, "data": {"object": {"object": "checkout.session"}},
    }  # fmt: skip
    deliver(client, poison)
    # A good purchase whose first delivery failed (Stripe was down when the task read it).
    stripe_fake.fail_requests("GET", "/v1/checkout/sessions/cs_.*", times=1)
    completed = stripe_fake.complete_checkout(start_checkout(buyer, pack))
    deliver(client, completed)
    assert StripeEvent.objects.get(event_id=completed["id"]).status == StripeEvent.Status.FAILED
    assert balance_of(buyer) == 0

    reconcile(capsys, "--fix")
    reconcile(capsys, "--fix")
    assert StripeEvent.objects.get(event_id=completed["id"]).status == StripeEvent.Status.PROCESSED
    assert balance_of(buyer) == 5_000
    assert StripeEvent.objects.get(event_id="evt_poison").status == StripeEvent.Status.FAILED
    (skip,) = [s for s in skipped("stripe_events") if s.item.startswith("evt_poison")]
    assert skip.times == 3  # the delivery, then each reconcile
    assert len([r for r in logged_skips(caplog, "stripe_events") if r.item.startswith("evt_poison")]) == 1
    assert "evt_poison" in admin_home(staff_client)
