from __future__ import annotations

import contextlib
import json
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from billing.models import LedgerEntry
from billing.services import balance_of, credits_charge, credits_refund
from generation.models import Job
from generation.services import job_create, job_run
from generation.tests.factories import local_model

pytestmark = pytest.mark.django_db


def reconcile(capsys, *args) -> dict:
    with contextlib.suppress(CommandError):  # non-zero exit when problems remain
        call_command("reconcile", "--json", *args)
    return json.loads(capsys.readouterr().out)


def test_a_clean_run_of_jobs_reconciles(creator, capsys):
    model = local_model()
    for prompt in ("fine", "broken [fail]"):
        job_run(job_id=job_create(user=creator, model=model, prompt=prompt, aspect_ratio="square").id)
    report = reconcile(capsys)
    assert report["ok"], report


def test_a_failed_job_without_its_refund_is_found_and_fixed_once(creator, capsys):
    job = job_create(user=creator, model=local_model(), prompt="crashed mid-way", aspect_ratio="square")
    # A failure recorded without its refund (as if the process died in between).
    Job.objects.filter(pk=job.pk).update(status=Job.Status.FAILED)
    report = reconcile(capsys)
    finding = report["findings"]["finished_jobs_without_refund"]
    assert finding["count"] == 1 and finding["fixable"]
    assert finding["examples"][0]["job"] == str(job.id)

    fixed = reconcile(capsys, "--fix")
    assert fixed["fixed"] == {"finished_jobs_without_refund": 1}
    assert fixed["ok"]
    assert balance_of(creator) == 10_000
    again = reconcile(capsys, "--fix")
    assert again["fixed"] == {} and again["ok"]
    assert LedgerEntry.objects.filter(kind="refund").count() == 1


def test_a_succeeded_job_with_a_refund_and_a_charge_without_a_job_are_found(creator, capsys):
    job = job_create(user=creator, model=local_model(), prompt="fine", aspect_ratio="square")
    job_run(job_id=job.id)
    credits_refund(charge_key=job.charge_key, key=job.refund_key)
    ghost = uuid.uuid4()
    credits_charge(user=creator, amount=100, key=f"charge:{ghost}", reference=f"job:{ghost}")
    report = reconcile(capsys, "--fix")
    assert not report["ok"]
    assert report["findings"]["succeeded_jobs_with_refund"]["count"] == 1
    assert report["findings"]["charges_without_job"]["count"] == 1
    assert not report["findings"]["succeeded_jobs_with_refund"]["fixable"]


def test_a_job_running_past_its_deadline_is_found_and_swept_by_fix(creator, capsys):
    job = job_create(user=creator, model=local_model(), prompt="stuck", aspect_ratio="square")
    past = timezone.now() - timedelta(hours=1)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, deadline_at=past, lease_until=past)
    assert reconcile(capsys)["findings"]["jobs_past_deadline"]["count"] == 1
    report = reconcile(capsys, "--fix")
    assert report["ok"]
    assert Job.objects.get(pk=job.pk).status == Job.Status.FAILED
    assert balance_of(creator) == 10_000


def test_generation_stats_per_model(creator, capsys):
    model = local_model()
    for prompt in ("one", "two", "three [fail]"):
        job_run(job_id=job_create(user=creator, model=model, prompt=prompt, aspect_ratio="square").id)
    call_command("generation_stats", "--hours", "1", "--json")
    stats = {row["model"]: row for row in json.loads(capsys.readouterr().out)}
    row = stats["Preview renderer"]
    assert row["jobs"] == 3
    assert row["by_status"] == {"succeeded": 2, "failed": 1}
    assert row["success_rate"] == pytest.approx(2 / 3)
    assert row["credits_charged"] == 1_500 and row["credits_refunded"] == 500
    assert row["median_seconds"] is not None and row["p95_seconds"] >= row["median_seconds"]
    call_command("generation_stats")
    table = capsys.readouterr().out
    assert "Preview renderer" in table and "67%" in table


# --- Incremental runs: what changed since the last clean run; --full for everything -------------


def test_an_hourly_run_reads_what_changed_and_full_reads_everything(creator, capsys):
    model = local_model()
    old = job_create(user=creator, model=model, prompt="long ago", aspect_ratio="square")
    job_run(job_id=old.id)
    first = reconcile(capsys)
    assert first["ok"] and first["full"]  # no run before: everything is read
    # A row edited by hand, stamped two days back: older than anything an hourly run reads.
    two_days_ago = timezone.now() - timedelta(days=2)
    Job.objects.filter(pk=old.pk).update(status=Job.Status.FAILED, created_at=two_days_ago, finished_at=two_days_ago)
    # New work since the last run is read: a job failed now without its refund is found.
    new = job_create(user=creator, model=model, prompt="just now", aspect_ratio="square")
    Job.objects.filter(pk=new.pk).update(status=Job.Status.FAILED, finished_at=timezone.now())
    hourly = reconcile(capsys)
    assert not hourly["full"] and hourly["since"]
    assert hourly["findings"]["finished_jobs_without_refund"]["count"] == 1
    assert hourly["findings"]["finished_jobs_without_refund"]["examples"][0]["job"] == str(new.id)
    # The problem is reported again by the next hourly run, until it is repaired.
    again = reconcile(capsys)
    assert again["findings"]["finished_jobs_without_refund"]["count"] == 1
    full = reconcile(capsys, "--full")
    assert full["full"] and full["findings"]["finished_jobs_without_refund"]["count"] == 2
    fixed = reconcile(capsys, "--full", "--fix")
    assert fixed["ok"] and fixed["fixed"] == {"finished_jobs_without_refund": 2}
    assert balance_of(creator) == 10_000
    assert reconcile(capsys)["ok"]


def test_a_charge_or_refund_written_since_the_last_run_is_checked_against_its_job(creator, capsys):
    model = local_model()
    done = job_create(user=creator, model=model, prompt="fine", aspect_ratio="square")
    job_run(job_id=done.id)
    Job.objects.filter(pk=done.pk).update(finished_at=timezone.now() - timedelta(days=3))
    assert reconcile(capsys)["ok"]
    # New entries against an old succeeded job and against no job at all.
    credits_refund(charge_key=done.charge_key, key=done.refund_key, memo="wrongly")
    credits_charge(user=creator, amount=5, key="charge:ghost", reference=f"job:{uuid.uuid4()}")
    report = reconcile(capsys)
    assert not report["full"]
    assert report["findings"]["succeeded_jobs_with_refund"]["count"] == 1
    assert report["findings"]["charges_without_job"]["count"] == 1


def test_a_tampered_balance_of_an_account_with_new_entries_is_found_by_the_hourly_run(creator, capsys):
    from billing.models import CreditAccount

    assert reconcile(capsys)["ok"]
    credits_charge(user=creator, amount=7, key="charge:new-entry")
    CreditAccount.objects.filter(user=creator).update(balance=1)
    report = reconcile(capsys)
    assert not report["full"] and report["findings"]["balance_mismatch"]["count"] == 1
