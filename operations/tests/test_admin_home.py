from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.models import ReconcileFinding, ReconcileRun
from generation.models import Job, JobReport
from generation.services import job_create, job_run
from generation.tests.factories import local_model

pytestmark = pytest.mark.django_db


def many_jobs(user, count: int) -> None:
    model = local_model()
    now = timezone.now()
    rng = random.Random(7)
    Job.objects.bulk_create(
        Job(
            user=user,
            model=model,
            kind="image",
            prompt=f"bulk {n}",
            aspect_ratio="square",
            cost=500,
            provider="local",
            status=rng.choice(["succeeded", "succeeded", "failed", "queued"]),
            created_at=now - timedelta(minutes=rng.randrange(0, 1_400)),
            finished_at=now - timedelta(minutes=rng.randrange(0, 60)),
        )
        for n in range(count)
    )
    # Some stuck past their deadline and some reported, so those panels have rows to show.
    Job.objects.bulk_create(
        Job(
            user=user,
            model=model,
            kind="image",
            prompt=f"stuck {n}",
            aspect_ratio="square",
            cost=500,
            provider="local",
            status="running",
            deadline_at=now - timedelta(minutes=10),
        )
        for n in range(max(2, count // 100))
    )
    for job in Job.objects.filter(user=user, status="succeeded", report__isnull=True)[: max(2, count // 100)]:
        JobReport.objects.create(job=job, reason="Blurry")


def queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


def test_the_admin_home_shows_the_figures_in_a_fixed_number_of_queries(staff_client, creator):
    many_jobs(creator, 10)
    few = queries_for(staff_client, "/admin/")
    many_jobs(creator, 3_000)
    page = staff_client.get("/admin/").content.decode()
    assert "Business at a glance" in page and "3,042" in page  # 3,010 + 32 stuck
    assert queries_for(staff_client, "/admin/") == few


def test_the_admin_home_shows_alerts_stuck_jobs_and_the_last_reconciliation(staff_client, creator, settings):
    settings.ALERT_MIN_JOBS = 2
    model = local_model()
    for prompt in ("a [fail]", "b [fail]", "c"):
        job_run(job_id=job_create(user=creator, model=model, prompt=prompt, aspect_ratio="square").id)
    stuck = job_create(user=creator, model=model, prompt="stuck", aspect_ratio="square")
    Job.objects.filter(pk=stuck.pk).update(status="running", deadline_at=timezone.now() - timedelta(minutes=5))
    staff_client.post(reverse("admin:billing_reconcile_start"))
    page = staff_client.get("/admin/").content.decode()
    assert "jobs failed in the last hour" in page
    assert str(stuck.pk) in page
    assert "Jobs still running past their deadline</a>: 1" in page


def test_staff_start_a_run_read_it_and_fix_a_finding_once(staff_client, creator):
    job = job_create(user=creator, model=local_model(), prompt="owed", aspect_ratio="square")
    Job.objects.filter(pk=job.pk).update(status="failed")  # failed without its refund
    response = staff_client.post(reverse("admin:billing_reconcile_start"))
    run = ReconcileRun.objects.get()
    assert response["Location"] == reverse("admin:billing_reconcilerun_change", args=[run.pk])
    assert not run.ok and run.trigger == "admin" and run.started_by == staff_client.staff
    finding = ReconcileFinding.objects.get(run=run, name="finished_jobs_without_refund")
    assert finding.count == 1 and finding.fixable
    assert "Failed or canceled jobs that were not refunded" in staff_client.get(response["Location"]).content.decode()

    for _ in range(2):
        staff_client.post(
            reverse("admin:billing_reconcilefinding_changelist"),
            {"action": "fix_findings", "_selected_action": [finding.pk]},
        )
    finding.refresh_from_db()
    assert finding.fixed_by == staff_client.staff and finding.fixed_count == 0  # the second click found nothing left
    from billing.models import LedgerEntry
    from billing.services import balance_of

    assert LedgerEntry.objects.filter(kind="refund", reference=f"job:{job.id}").count() == 1
    assert balance_of(creator) == 10_000
    staff_client.post(reverse("admin:billing_reconcile_start"))
    assert ReconcileRun.objects.first().ok


def test_the_reconcile_command_stores_its_runs(capsys):
    from django.core.management import call_command

    call_command("reconcile")
    call_command("reconcile", "--fix")
    assert list(ReconcileRun.objects.values_list("trigger", "ok")) == [("command", True), ("command", True)]


def test_the_scheduled_task_stores_a_run():
    from billing.tasks import reconcile_scheduled

    result = reconcile_scheduled()
    assert ReconcileRun.objects.get(pk=result["run"]).trigger == "schedule"


def bulk_jobs(user, statuses: dict[str, int], *, age=timedelta(0), seconds: float = 10) -> None:
    model = local_model()
    created = timezone.now() - age - timedelta(seconds=seconds)
    Job.objects.bulk_create(
        Job(user=user, model=model, kind="image", prompt="bulk", aspect_ratio="square", cost=500, provider="local",
            status=status, created_at=created, finished_at=created + timedelta(seconds=seconds))
        for status, count in statuses.items()
        for _ in range(count)
    )  # fmt: skip


def test_the_success_rate_counts_a_persons_own_cancel_apart(staff_client, creator):
    bulk_jobs(creator, {"succeeded": 28, "canceled": 1})
    page = staff_client.get("/admin/").content.decode()
    assert "<tr><th>Success rate (cancels apart)</th><td>100%</td>" in page


def test_the_admin_home_lists_only_open_findings_with_links_and_the_next_step(staff_client, creator):
    owed = job_create(user=creator, model=local_model(), prompt="owed", aspect_ratio="square")
    Job.objects.filter(pk=owed.pk).update(status="failed")  # failed without its refund: fixable
    unpaid = Job.objects.create(user=creator, model=local_model(), kind="image", prompt="free", aspect_ratio="square",
                                cost=500, provider="local", status="succeeded")  # no charge: needs a person  # fmt: skip
    staff_client.post(reverse("admin:billing_reconcile_start"))
    page = staff_client.get("/admin/").content.decode()
    assert "2 open finding(s)" in page and "Failed or canceled jobs that were not refunded" in page
    fixable = ReconcileFinding.objects.get(name="finished_jobs_without_refund")
    staff_client.post(reverse("admin:billing_reconcilefinding_changelist"),
                      {"action": "fix_findings", "_selected_action": [fixable.pk]})  # fmt: skip

    page = staff_client.get("/admin/").content.decode()
    page = page[page.index("<h2>Reconciliation</h2>") :]  # not the "repaired 1" message above it
    assert "1 open finding(s)" in page
    assert "Failed or canceled jobs that were not refunded" not in page
    assert "Jobs not charged once for each result they asked for" in page
    assert f'href="{reverse("admin:generation_job_change", args=[unpaid.pk])}"' in page
    assert "Next step: A job ran without being paid for" in page


def test_the_admin_home_shows_signups_staff_grants_and_the_outstanding_credits(staff_client, creator):
    from billing.models import CheckoutSession
    from billing.services import credits_adjust

    CheckoutSession.objects.create(session_id="cs_test_paid", user=creator, mode="payment", credits=5_000,
                                   amount_cents=500, currency="usd", payment_state="paid")  # fmt: skip
    credits_adjust(user=creator, amount=300, memo="Goodwill", staff=staff_client.staff)
    page = staff_client.get("/admin/").content.decode()
    assert "<tr><th>Signups</th><td>2</td>" in page  # the creator and the staff member
    assert "<tr><th>Credits granted by staff</th><td>300 (1)</td>" in page
    # 10,300 credits held; paid on average $5.00 per 5,000 credits, so they are worth $10.30.
    assert "10,300 credits held by 1 person: worth $10.30 at the average price paid ($1.00 per 1,000)" in page


def test_the_last_30_days_are_pictures_drawn_on_the_server_without_inline_styles(staff_client, creator):
    bulk_jobs(creator, {"succeeded": 3, "failed": 1})
    bulk_jobs(creator, {"succeeded": 2}, age=timedelta(days=3), seconds=40)
    bulk_jobs(creator, {"failed": 5}, age=timedelta(days=45))  # outside the window
    page = staff_client.get("/admin/").content.decode()
    dashboard = page[page.index('<div class="dp-dashboard">') : page.index("<!-- END SVGs -->")]
    assert dashboard.count('<figure class="dp-chart">') == 5 and dashboard.count("<svg") >= 5
    assert "style=" not in dashboard and "<script" not in dashboard
    today = timezone.localdate().strftime("%b %d")
    assert f"<title>{today} · succeeded: 3</title>" in dashboard
    assert f"<title>{today} · failure rate: 25 %</title>" in dashboard
    three_days_ago = (timezone.localdate() - timedelta(days=3)).strftime("%b %d")
    assert f"<title>{three_days_ago} · p95: 40.0 s</title>" in dashboard
    assert "6 jobs · " in dashboard


def test_a_settled_day_of_the_charts_is_kept_and_a_day_with_open_jobs_is_read_again(staff_client, creator):
    bulk_jobs(creator, {"succeeded": 2}, age=timedelta(days=3))
    bulk_jobs(creator, {"succeeded": 1, "queued": 1}, age=timedelta(days=2))
    first = queries_for(staff_client, "/admin/")
    # Rows no service would write (a job started days ago), to show which days are read again.
    bulk_jobs(creator, {"succeeded": 5}, age=timedelta(days=3))
    Job.objects.filter(status="queued").update(status="succeeded")
    with CaptureQueriesContext(connection) as captured:
        page = staff_client.get("/admin/").content.decode()
    assert len(captured) == first
    three_days_ago, two_days_ago = ((timezone.localdate() - timedelta(days=n)).strftime("%b %d") for n in (3, 2))
    assert f"<title>{three_days_ago} · succeeded: 2</title>" in page  # settled: from the cache
    assert f"<title>{two_days_ago} · succeeded: 2</title>" in page  # had a queued job: read again


def test_with_redis_down_the_charts_are_read_from_the_database(staff_client, creator, settings):
    bulk_jobs(creator, {"succeeded": 2}, age=timedelta(days=3))
    settings.CACHES = {"default": {"BACKEND": "core.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}
    page = staff_client.get("/admin/")
    assert page.status_code == 200
    three_days_ago = (timezone.localdate() - timedelta(days=3)).strftime("%b %d")
    assert f"<title>{three_days_ago} · succeeded: 2</title>" in page.content.decode()
