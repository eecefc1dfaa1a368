from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.sessions.backends.db import SessionStore
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from generation.models import Job, Upload
from generation.services import job_create, job_delete, job_run
from generation.tests.factories import AIModelFactory, local_model
from generation.tests.photos import photo
from generation.uploads import image_validate, upload_store
from operations import schedules

pytestmark = pytest.mark.django_db


def listed(output: str) -> set[str]:
    return set(re.findall(r"^\s+(\w+): (.+)$", output, re.MULTILINE))


def test_dry_run_deletes_nothing_and_lists_what_the_real_run_deletes(creator, capsys):
    edit = AIModelFactory(key="ce", name="Preview editor", kind="image_edit", aspect_ratios={"original": "original"})
    with time_machine.travel(timezone.now() - timedelta(days=2)):
        stale = upload_store(user=creator, image=image_validate(photo()))  # nobody used it
        used = upload_store(user=creator, image=image_validate(photo()))
        job_run(job_id=job_create(user=creator, model=edit, prompt="kept", aspect_ratio="original", source=used).id)
        used.refresh_from_db()  # its worker wrote it again without metadata, under a new name
        deleted = job_create(user=creator, model=local_model(), prompt="to delete", aspect_ratio="square")
        job_run(job_id=deleted.id)
        session = SessionStore()
        session.set_expiry(60)
        session.create()
    recent = upload_store(user=creator, image=image_validate(photo()))
    deleted_outputs = [o.file.name for o in Job.objects.get(pk=deleted.pk).outputs.all()]
    job_delete(job=Job.objects.get(pk=deleted.pk))

    call_command("cleanup", "--dry-run", "--list")
    dry = capsys.readouterr().out
    assert "Dry run: nothing was deleted." in dry
    assert default_storage.exists(stale.file.name) and Upload.objects.filter(pk=stale.pk).exists()
    assert ("uploads_unused", stale.file.name) in listed(dry)
    assert ("expired_sessions", session.session_key[:8] + "…") in listed(dry)

    call_command("cleanup", "--list")
    real = capsys.readouterr().out
    assert listed(real) == listed(dry)
    assert not default_storage.exists(stale.file.name) and not Upload.objects.filter(pk=stale.pk).exists()
    assert not any(default_storage.exists(name) for name in deleted_outputs)
    # What is in use, or recent, survives.
    assert default_storage.exists(used.file.name) and default_storage.exists(recent.file.name)
    assert Upload.objects.filter(pk__in=[used.pk, recent.pk]).count() == 2
    assert not SessionStore().exists(session.session_key)

    call_command("cleanup")
    assert "0 item(s) in all." in capsys.readouterr().out


def test_files_of_jobs_that_failed_long_ago_go(creator, capsys):
    edit = AIModelFactory(key="cf", name="Preview editor", kind="image_edit", aspect_ratios={"original": "original"})
    with time_machine.travel(timezone.now() - timedelta(days=40)):
        photo_upload = upload_store(user=creator, image=image_validate(photo()))
        failed = job_create(user=creator, model=edit, prompt="[fail]", aspect_ratio="original", source=photo_upload)
        job_run(job_id=failed.id)
    call_command("cleanup")
    assert not default_storage.exists(photo_upload.file.name)
    assert Job.objects.get(pk=failed.pk).status == "failed"  # the job (and its refund) stay


def test_schedules_installed_twice_exist_once(capsys):
    call_command("install_schedules")
    call_command("install_schedules")
    names = list(Schedule.objects.values_list("name", flat=True))
    for name in ("sweep stuck jobs", "reconcile", "cleanup", "alerts"):
        assert names.count(name) == 1
    sweeper = Schedule.objects.get(name="sweep stuck jobs")
    assert (sweeper.func, sweeper.schedule_type, sweeper.minutes) == ("generation.tasks.sweep_stuck_jobs", "I", 1)
    assert Schedule.objects.get(name="reconcile").schedule_type == "H"
    assert Schedule.objects.get(name="cleanup").schedule_type == "D"


def test_a_schedule_under_its_old_name_is_renamed_not_doubled():
    # Schedules were once named after their app ("generation: cleanup"); a site that has them
    # keeps one of each, with its next run, under the new name.
    Schedule.objects.all().delete()
    old = Schedule.objects.create(name="generation: cleanup", func="generation.tasks.cleanup", schedule_type="D")
    call_command("install_schedules")
    renamed = Schedule.objects.get(name="cleanup")
    assert (renamed.pk, renamed.func) == (old.pk, "operations.tasks.cleanup")
    assert not Schedule.objects.filter(name__startswith="generation:").exists()


def test_every_migrate_brings_the_schedules_up_to_date(monkeypatch):
    # A release that adds a schedule reaches a site whose release step only runs `migrate`.
    added = {"name": "added later", "func": "operations.tasks.check_alerts", "schedule_type": "D", "minutes": None}
    monkeypatch.setattr(schedules, "SCHEDULES", [*schedules.SCHEDULES, added])
    Schedule.objects.filter(name="sweep stuck jobs").update(minutes=30)  # drifted by hand
    call_command("migrate", verbosity=0)
    call_command("migrate", verbosity=0)
    assert Schedule.objects.filter(name="added later").count() == 1
    assert Schedule.objects.get(name="added later").func == "operations.tasks.check_alerts"
    assert Schedule.objects.get(name="sweep stuck jobs").minutes == 1


def test_old_stripe_event_payloads_are_emptied_but_the_event_ids_stay(capsys):
    from billing.models import StripeEvent

    with time_machine.travel(timezone.now() - timedelta(days=100)):
        old = StripeEvent.objects.create(
            event_id="evt_old", type="checkout.session.completed", payload={"a": 1}, status="processed"
        )
    recent = StripeEvent.objects.create(
        event_id="evt_new", type="checkout.session.completed", payload={"b": 2}, status="processed"
    )
    call_command("cleanup")
    old.refresh_from_db()
    recent.refresh_from_db()
    assert old.payload == {} and recent.payload == {"b": 2}
    assert StripeEvent.objects.filter(event_id="evt_old").exists()  # a redelivery stays a no-op


def test_cleanup_goes_through_a_large_backlog_in_bounded_batches(capsys, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    monkeypatch.setattr("core.cleanup.BATCH", 50)
    with time_machine.travel(timezone.now() - timedelta(days=100)):
        from generation.models import ProviderWebhook

        ProviderWebhook.objects.bulk_create(
            ProviderWebhook(webhook_id=f"msg_{n:04}", prediction_id=f"p{n}", status="succeeded") for n in range(260)
        )
    keep = ProviderWebhook.objects.create(webhook_id="msg_recent", prediction_id="p-new", status="succeeded")
    call_command("cleanup", "--dry-run")
    assert re.search(r"Would delete\s+260\s+Replicate webhook records", capsys.readouterr().out)
    with CaptureQueriesContext(connection) as captured:
        call_command("cleanup")
    assert re.search(r"Deleted\s+260\s+Replicate webhook records", capsys.readouterr().out)
    assert list(ProviderWebhook.objects.values_list("webhook_id", flat=True)) == [keep.webhook_id]
    deletes = [
        q["sql"] for q in captured.captured_queries if q["sql"].startswith('DELETE FROM "generation_providerwebhook"')
    ]
    assert len(deletes) == 6  # 260 rows in batches of 50: no statement holds more than one batch
    assert all(q["sql"].count("'msg_") <= 50 for q in captured.captured_queries)
