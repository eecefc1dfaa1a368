"""/metrics shows an operator the site from outside: jobs, the queue, the workers, money, and the
parts it depends on; it is not public. (Several gunicorn workers: tests/faults/test_observability.py;
that a scrape reads no table whole: tests/scale/test_query_shapes.py.)"""

from __future__ import annotations

import io
import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import redis
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone
from django_q.conf import Conf
from django_q.tasks import async_task
from prometheus_client.parser import text_string_to_metric_families

from accounts.tests.factories import UserFactory
from billing.backoffice import outstanding_credits
from billing.models import StripeEvent
from billing.services import credits_clawback, credits_grant
from generation.models import Job
from generation.services import job_create, job_fail, job_run
from generation.tests.factories import local_model, replicate_model
from generation.tests.test_qcluster import ROOT
from operations.models import WorkerCluster
from tests.clusters import use_queue

pytestmark = pytest.mark.django_db
TOKEN = "a-monitoring-token-of-at-least-32-chars"


@pytest.fixture
def monitoring(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = []
    return {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


@pytest.fixture
def scrape(client, monitoring):
    def read() -> dict:
        response = client.get("/metrics", **monitoring)
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain; version=")
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.content.decode())
            for sample in family.samples
        }

    return read


def value(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_metrics_are_not_public(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = "", []
    assert client.get("/metrics").status_code == 404  # off until configured
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def test_an_allowed_network_reads_metrics_without_a_token_behind_the_load_balancer(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = "", ["10.1.0.0/16"]
    settings.TRUSTED_PROXY_COUNT = 1
    # Prometheus inside the network, and a visitor through the load balancer claiming to be inside.
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    forged = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "10.1.2.3, 203.0.113.9"}
    assert client.get("/metrics", **forged).status_code == 403


def test_requests_are_counted_by_view_and_status(client, scrape):
    before = scrape()
    for _ in range(3):
        client.get("/")
    client.get("/no-such-page/")
    after = scrape()

    def grown(**labels) -> float:
        name = "dreampixel_http_request_duration_seconds_count"
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    assert grown(view="landing", status="200") == 3
    assert grown(view="unrouted", status="404") == 1


def test_jobs_in_flight_by_model_and_status_and_the_predictions_at_the_provider(
    scrape, creator, settings, fake_replicate
):
    model = local_model()
    for n in range(3):
        job_create(user=creator, model=model, prompt=f"waiting {n}", aspect_ratio="square")
    running = job_create(user=creator, model=replicate_model(), prompt="at the provider", aspect_ratio="square")
    started = timezone.now() - timedelta(minutes=7)
    Job.objects.filter(pk=running.pk).update(status="running", prediction_id="p-1", started_at=started)
    samples = scrape()
    assert value(samples, "dreampixel_jobs", model="test-local", status="queued") == 3
    assert value(samples, "dreampixel_jobs", model="test-replicate", status="running") == 1
    assert value(samples, "dreampixel_predictions_running", model="test-replicate") == 1
    assert 7 * 60 <= value(samples, "dreampixel_job_longest_running_seconds") < 7 * 60 + 30
    assert value(samples, "dreampixel_alert_setting", setting="slow_job_seconds") == settings.ALERT_SLOW_JOB_SECONDS


def test_finished_jobs_count_once_as_the_tally_moves_on(scrape, creator):
    model = local_model()
    jobs = [job_create(user=creator, model=model, prompt=f"done {n}", aspect_ratio="square") for n in range(3)]
    for job in jobs[:2]:
        job_run(job_id=job.pk)
    job_fail(job_id=jobs[2].pk, message="The model failed.")
    first = scrape()
    assert value(first, "dreampixel_jobs_finished_total", model="test-local", status="succeeded") == 2
    assert value(first, "dreampixel_jobs_finished_total", model="test-local", status="failed") == 1
    # The local renderer says when it finished: the time to the job's end is in the histogram.
    assert value(first, "dreampixel_job_finish_lag_seconds_count") == 2
    assert value(first, "dreampixel_job_finish_lag_seconds_bucket", le="5.0") == 2

    # Minutes later the tally has taken them in (one short write); the counters neither drop nor
    # count them twice, and a new job adds one.
    with time_machine.travel(timezone.now() + timedelta(minutes=3)):
        moved = scrape()
        later = job_create(user=creator, model=model, prompt="later", aspect_ratio="square")
        job_run(job_id=later.pk)
        last = scrape()
    assert value(moved, "dreampixel_jobs_finished_total", model="test-local", status="succeeded") == 2
    assert value(last, "dreampixel_jobs_finished_total", model="test-local", status="succeeded") == 3
    assert value(last, "dreampixel_jobs_finished_total", model="test-local", status="failed") == 1


def test_provider_spend_is_counted_from_run_metrics_and_prices_against_the_budget(
    scrape, creator, settings, fake_replicate
):
    settings.DAILY_PROVIDER_BUDGET_USD = 50
    model = replicate_model(provider_usd_per_run=Decimal("0.003"), provider_usd_per_second=Decimal("0.001"))
    job = job_create(user=creator, model=model, prompt="paid", aspect_ratio="square")
    finished = timezone.now()
    Job.objects.filter(pk=job.pk).update(
        status="succeeded", prediction_id="p-9", metrics={"predict_time": 2.0}, finished_at=finished,
        prediction_completed_at=finished - timedelta(seconds=40),
    )  # fmt: skip
    samples = scrape()
    assert value(samples, "dreampixel_provider_spend_usd_total", model="test-replicate") == pytest.approx(0.005)
    assert value(samples, "dreampixel_provider_budget_usd") == 50
    assert value(samples, "dreampixel_job_finish_lag_seconds_bucket", le="30.0") == 0
    assert value(samples, "dreampixel_job_finish_lag_seconds_bucket", le="60.0") == 1
    assert value(samples, "dreampixel_job_finish_lag_seconds_sum") == pytest.approx(40)


@pytest.fixture
def redis_queue(monkeypatch, redis_url):
    name = use_queue(monkeypatch, redis_url)
    monkeypatch.setattr(Conf, "BROKER_CLASS", "core.taskqueue.TrackedRedis")
    yield name
    client = redis.from_url(redis_url)
    client.delete(*client.keys(f"django_q:{name}:*") or ["-"])


def test_the_queue_s_depth_and_its_oldest_task_s_wait(scrape, redis_queue):
    assert value(scrape(), "dreampixel_queue_oldest_task_seconds") == 0  # empty
    async_task("operations.tasks.check_alerts", task_name="first")
    with time_machine.travel(timezone.now() + timedelta(seconds=150)):
        async_task("operations.tasks.check_alerts", task_name="second")
        samples = scrape()
    assert value(samples, "dreampixel_queue_tasks") == 2
    assert 150 <= value(samples, "dreampixel_queue_oldest_task_seconds") < 160


def test_each_cluster_s_heartbeat_age_and_the_newest_of_them(scrape):
    assert value(scrape(), "dreampixel_worker_newest_heartbeat_age_seconds") == float("inf")  # none ever
    now = timezone.now()
    WorkerCluster.objects.create(name="worker.1", last_heartbeat_at=now - timedelta(seconds=130), seen_at=now)
    WorkerCluster.objects.create(name="worker.2", last_heartbeat_at=now - timedelta(seconds=20), seen_at=now,
                                 stopped_at=now)  # fmt: skip
    samples = scrape()
    assert 130 <= value(samples, "dreampixel_worker_heartbeat_age_seconds", cluster="worker.1") < 140
    assert value(samples, "dreampixel_worker_heartbeat_age_seconds", cluster="worker.2") is None  # stopped
    assert 20 <= value(samples, "dreampixel_worker_newest_heartbeat_age_seconds") < 30
    assert value(samples, "dreampixel_worker_clusters", state="no recent heartbeat") == 1


def test_outstanding_credits_match_the_admin_home_and_leave_debts_out(scrape):
    rich, poor = UserFactory(), UserFactory()
    credits_grant(user=rich, amount=7_000, key="purchase:rich")
    credits_grant(user=poor, amount=1_000, key="purchase:poor")
    credits_clawback(user=poor, amount=3_000, key="clawback:dispute-1")  # 2,000 in debt
    samples = scrape()
    assert value(samples, "dreampixel_credits_outstanding") == 7_000 == outstanding_credits()["credits"]

    with time_machine.travel(timezone.now() + timedelta(minutes=3)):  # the ledger's tally moves on
        credits_grant(user=UserFactory(), amount=500, key="purchase:later")
        assert value(scrape(), "dreampixel_credits_outstanding") == 7_500 == outstanding_credits()["credits"]


def test_failing_stripe_events_refused_webhooks_and_open_reconcile_findings(client, scrape, settings, creator):
    StripeEvent.objects.create(event_id="evt_1", type="invoice.paid", status=StripeEvent.Status.FAILED, payload={})
    before = scrape()
    settings.STRIPE_WEBHOOK_SECRET = "whsec_test"
    assert client.post(reverse("stripe_webhook"), b"{}", content_type="application/json").status_code == 400
    # A job without its charge: a bug that reconcile reports and nobody fixed yet.
    Job.objects.create(
        user=creator, model=local_model(), kind="image", prompt="unpaid", aspect_ratio="square", cost=500,
        provider="local", form_token=uuid.uuid4(),
    )  # fmt: skip
    with pytest.raises(CommandError, match="reconcile found problems"):
        call_command("reconcile", "--full", stdout=io.StringIO())
    after = scrape()
    assert value(after, "dreampixel_stripe_events_failing") == 1
    assert value(after, "dreampixel_stripe_events_failed_last_hour") == 1
    refused = "dreampixel_webhooks_refused_total"
    assert value(after, refused, provider="stripe") - (value(before, refused, provider="stripe") or 0) == 1
    assert value(after, "dreampixel_reconcile_findings_open", check="jobs_without_charge") == 1
    assert value(after, "dreampixel_reconcile_last_run_timestamp_seconds") is not None


def test_every_part_the_site_depends_on_is_reported_apart(scrape, settings):
    settings.CACHES = {"default": {"BACKEND": "core.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}
    samples = scrape()
    up = {dependency: value(samples, "dreampixel_dependency_up", dependency=dependency)
          for dependency in ("database", "static_files", "cache", "queue", "storage")}  # fmt: skip
    assert up == {"database": 1, "static_files": 1, "cache": 0, "queue": 1, "storage": 1}
    assert value(samples, "dreampixel_metrics_section_ok", section="jobs") == 1


def test_every_metric_the_alert_rules_read_is_one_the_site_exposes(client, monitoring):
    rules = (ROOT / "monitoring" / "alerts.yml").read_text()
    read = set(re.findall(r"\b(dreampixel_[a-z_]+)", rules))
    text = client.get("/metrics", **monitoring).content.decode()
    exposed = set(re.findall(r"^# (?:HELP|TYPE) (dreampixel_[a-z_]+)", text, re.MULTILINE))
    assert read, "no metric found in the rules"
    assert read <= exposed, f"the rules read metrics nobody exposes: {sorted(read - exposed)}"
