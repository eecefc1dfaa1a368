from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from generation.alerts import provider_spend_usd
from generation.services import job_create
from generation.tests.factories import replicate_model
from generation.tests.polling import run_to_the_end
from operations.alerts import alerts_check, alerts_current

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def staff_inbox(settings):
    settings.ADMINS = [("Staff", "ops@dreampixel.example")]


def run_jobs(creator, prompts):
    model = replicate_model()
    for prompt in prompts:
        run_to_the_end(job_create(user=creator, model=model, prompt=prompt, aspect_ratio="square").id)


def test_a_failure_rate_over_20_percent_emails_staff_once_an_hour(creator, fake_replicate):
    run_jobs(creator, ["ok 1", "ok 2", "ok 3", "ok 4"])
    assert alerts_check() == []
    run_jobs(creator, ["bad [fail]", "worse [fail]"])  # 2 of 6 failed: 33%
    sent = alerts_check()
    assert [alert.key for alert in sent] == ["failure_rate"]
    assert len(mail.outbox) == 1 and "2 of 6 jobs failed" in mail.outbox[0].body
    assert mail.outbox[0].to == ["ops@dreampixel.example"]

    run_jobs(creator, ["still bad [fail]"])
    assert alerts_check() == []  # within the hour: shown on the admin home, not emailed again
    assert [alert.key for alert in alerts_current()] == ["failure_rate"]
    assert len(mail.outbox) == 1

    with time_machine.travel(timezone.now() + timedelta(minutes=30), tick=True):
        run_jobs(creator, ["bad again [fail]"] * 2)
        with time_machine.travel(timezone.now() + timedelta(minutes=31), tick=True):
            run_jobs(creator, ["and again [fail]"] * 5)
            assert [alert.key for alert in alerts_check()] == ["failure_rate"]
    assert len(mail.outbox) == 2


def test_slow_jobs_and_provider_spend_alerts(creator, fake_replicate, settings):
    from generation.models import Job

    model = replicate_model(provider_usd_per_run="0.50", provider_usd_per_second="0.01")
    run_to_the_end(job_create(user=creator, model=model, prompt="priced", aspect_ratio="square").id)
    job = Job.objects.get()
    expected = 0.5 + 0.01 * job.metrics["predict_time"]
    assert float(provider_spend_usd(timezone.now())) == pytest.approx(expected)
    settings.DAILY_PROVIDER_BUDGET_USD = 0.4
    assert "provider_spend" in [a.key for a in alerts_current()]

    stuck = job_create(user=creator, model=model, prompt="stuck", aspect_ratio="square")
    Job.objects.filter(pk=stuck.pk).update(status="running", started_at=timezone.now() - timedelta(minutes=6))
    assert "slow_jobs" in [a.key for a in alerts_current()]
