"""Outages degrade, they do not 500: Redis stopped and restarted (a server of the
test's own, never the shared one), PostgreSQL connections terminated. Every test that runs jobs
ends with each one final, charged once, refunded at most once, and a clean `reconcile`."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import psycopg
import pytest
import redis
import time_machine
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import UserFactory
from billing.services import balance_of, credits_grant
from generation.models import Job
from generation.services import job_create, sweep_stuck_jobs
from generation.tests.factories import local_model
from tests.clusters import RedisServer, assert_every_job_final_and_paid_once, cluster_env, start, stop, use_queue
from tests.pg import conninfo

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def user():
    user = UserFactory()
    credits_grant(user=user, amount=100_000, key="purchase:outages")
    return user


@pytest.fixture
def own_redis():
    with RedisServer() as server:
        yield server


def queue_length(server: RedisServer, name: str) -> int:
    return redis.from_url(server.url).llen(f"django_q:{name}:q")


def wait_until_final(jobs, timeout: float, sweep: bool = True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Job.objects.filter(pk__in=[j.pk for j in jobs]).exclude(status__in=Job.FINAL_STATUSES).exists():
            return
        if sweep:
            sweep_stuck_jobs()  # what the schedule does every minute
        time.sleep(0.5)


def test_with_redis_down_pages_answer_and_what_needs_it_says_503(client, user, own_redis, settings):
    settings.CACHES = {"default": {"BACKEND": "core.cache.RedisCache", "LOCATION": own_redis.url}}
    model = local_model()
    job = job_create(user=user, model=model, prompt="Before the outage", aspect_ratio="square")
    client.force_login(user)  # the session is in the database and in Redis
    own_redis.stop()

    for path in ("/", "/terms/", "/privacy/", "/healthz"):
        assert client.get(path).status_code == 200, path
    # Signed in: the session is read from the database.
    assert client.get(reverse("job_detail", args=[job.id])).status_code == 200
    assert client.get(reverse("gallery")).status_code == 200
    # The load balancer keeps this node, and every other: their pages work from the database.
    # Monitoring sees the outage, in the deep check and in /metrics.
    assert client.get("/readyz").status_code == 200
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = "a-monitoring-token-of-at-least-32-chars", []
    monitoring = {"HTTP_AUTHORIZATION": f"Bearer {settings.METRICS_TOKEN}"}
    deep = client.get("/readyz/deep", **monitoring)
    assert deep.status_code == 503 and "cache" in deep.json()["failing"]
    scraped = client.get("/metrics", **monitoring)
    assert scraped.status_code == 200
    assert 'dreampixel_dependency_up{dependency="cache"} 0.0' in scraped.content.decode()

    # Creating needs the rate limits in Redis: a clear 503, nothing charged.
    data = {"model": model.pk, "aspect_ratio": "square", "prompt": "During", "form_token": str(uuid.uuid4())}
    response = client.post(reverse("create"), data)
    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    assert "back in a minute" in response.content.decode()
    assert Job.objects.filter(user=user).count() == 1
    assert balance_of(user) == 100_000 - 500


def test_with_redis_down_a_new_session_is_made_in_the_database(user, own_redis, settings):
    # Signing in, a password change or a social callback makes or rotates a session: its key is
    # checked against the cache and the database, and the cache being down must not stop it.
    from core.sessions import SessionStore

    settings.CACHES = {"default": {"BACKEND": "core.cache.RedisCache", "LOCATION": own_redis.url}}
    own_redis.stop()
    session = SessionStore()
    session["hello"] = "world"
    session.create()
    session.save()
    assert SessionStore(session.session_key).load()["hello"] == "world"


def test_signing_out_while_redis_is_unreachable_signs_out_and_the_session_stays_gone_once_it_is_back(
    client, user, own_redis, settings
):
    from django.test import Client

    settings.CACHES = {"default": {"BACKEND": "core.cache.RedisCache", "LOCATION": own_redis.url,
                                   "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}}  # fmt: skip
    client.force_login(user)
    assert client.get(reverse("billing")).status_code == 200  # the session is in the database and in Redis
    stolen = client.cookies[settings.SESSION_COOKIE_NAME].value
    copies = redis.from_url(own_redis.url)
    (copy,) = copies.keys("*sessions.cached_db*")
    # However long the session lasts, the copy in Redis lives at most SESSION_CACHE_SECONDS.
    assert 0 < copies.ttl(copy) <= settings.SESSION_CACHE_SECONDS < settings.SESSION_COOKIE_AGE

    own_redis.pause()  # unreachable, but it keeps the copy
    try:
        response = client.post(reverse("account_logout"), follow=True)
        assert response.status_code == 200
        assert "You have signed out." in response.content.decode()
        thief = Client()
        thief.cookies[settings.SESSION_COOKIE_NAME] = stolen
        assert thief.get(reverse("billing")).status_code == 302  # to sign in: the database has no session
    finally:
        own_redis.resume()

    # Redis is back with the copy it held. This process remembers it could not remove it: gone now.
    thief.cookies[settings.SESSION_COOKIE_NAME] = stolen  # the answer above told the browser to drop it
    assert thief.get(reverse("billing")).status_code == 302
    assert not copies.keys("*sessions.cached_db*" + stolen)


def test_a_job_created_while_the_queue_is_down_lands_on_its_page_and_starts_once_it_is_back(
    client, user, own_redis, monkeypatch, tmp_path, capsys
):
    name = use_queue(monkeypatch, own_redis.url)
    model = local_model()
    client.force_login(user)
    own_redis.stop()
    data = {
        "model": model.pk,
        "aspect_ratio": "square",
        "prompt": "While Redis is down",
        "form_token": str(uuid.uuid4()),
    }
    response = client.post(reverse("create"), data)
    job = Job.objects.get(user=user)
    assert response.status_code == 302 and response["Location"] == reverse("job_detail", args=[job.id])
    assert "Waiting for a worker" in client.get(response["Location"]).content.decode()
    assert job.status == Job.Status.QUEUED
    assert balance_of(user) == 100_000 - 500

    own_redis.start()
    with time_machine.travel(timezone.now() + timedelta(seconds=61), tick=True):
        assert sweep_stuck_jobs()["restarted"] == 1
        assert sweep_stuck_jobs()["restarted"] == 0  # once per interval
    assert queue_length(own_redis, name) == 1
    cluster = start(["qcluster"], cluster_env(redis_url=own_redis.url, name=name, Q_WORKERS="1"), tmp_path / "q.log")
    try:
        wait_until_final([job], timeout=20, sweep=False)
    finally:
        stop(cluster, timeout=10)
    assert Job.objects.get(pk=job.pk).status == Job.Status.SUCCEEDED
    assert_every_job_final_and_paid_once([job], capsys, "created while the queue was down")


def test_tasks_lost_with_a_queue_restart_come_back_once_per_interval(user, own_redis, monkeypatch, tmp_path, capsys):
    name = use_queue(monkeypatch, own_redis.url)
    model = local_model()
    jobs = [job_create(user=user, model=model, prompt=f"lost {n}", aspect_ratio="square") for n in range(5)]
    assert queue_length(own_redis, name) == 5
    own_redis.stop()  # no disk: the queue is gone
    own_redis.start()
    assert queue_length(own_redis, name) == 0

    now = timezone.now()
    with time_machine.travel(now + timedelta(seconds=30), tick=False):
        assert sweep_stuck_jobs()["restarted"] == 0  # too early: they may still be waiting in a queue
    with time_machine.travel(now + timedelta(seconds=61), tick=False):
        assert sweep_stuck_jobs()["restarted"] == 5
    for seconds in (62, 90, 120):  # a backlog gains no task per sweep
        with time_machine.travel(now + timedelta(seconds=seconds), tick=False):
            assert sweep_stuck_jobs()["restarted"] == 0
    with time_machine.travel(now + timedelta(seconds=122), tick=False):
        assert sweep_stuck_jobs()["restarted"] == 5  # still not run: once more, a minute later
    assert queue_length(own_redis, name) == 10

    cluster = start(["qcluster"], cluster_env(redis_url=own_redis.url, name=name, Q_WORKERS="2"), tmp_path / "q.log")
    try:
        wait_until_final(jobs, timeout=20, sweep=False)
    finally:
        stop(cluster, timeout=10)
    assert set(Job.objects.values_list("attempts", flat=True)) == {1}  # the duplicate task did nothing
    assert_every_job_final_and_paid_once(jobs, capsys, "queue restarted")


def test_redis_stopped_and_restarted_under_a_supervised_cluster_loses_no_job(
    user, own_redis, monkeypatch, settings, tmp_path, capsys
):
    settings.JOB_REQUEUE_AFTER_SECONDS = 2
    name = use_queue(monkeypatch, own_redis.url)
    env = cluster_env(redis_url=own_redis.url, name=name, Q_WORKERS="2", LOCAL_RENDER_DELAY_MS="200")
    args = ["supervise_qcluster", "--name", name, "--stall-seconds", "3", "--heartbeat-seconds", "0.5",
            "--stop-grace", "3", "--restart-grace", "1"]  # fmt: skip
    supervisor = start(args, env, tmp_path / "supervisor.log")
    model = local_model()
    try:
        jobs = [job_create(user=user, model=model, prompt=f"outage {n}", aspect_ratio="square") for n in range(8)]
        deadline = time.monotonic() + 20
        while not Job.objects.filter(status=Job.Status.SUCCEEDED).exists():
            assert time.monotonic() < deadline, (tmp_path / "supervisor.log").read_text()[-3000:]
            time.sleep(0.1)
        own_redis.stop()
        jobs += [job_create(user=user, model=model, prompt=f"during {n}", aspect_ratio="square") for n in range(2)]
        time.sleep(2)
        own_redis.start()
        wait_until_final(jobs, timeout=40)
    finally:
        stop(supervisor, timeout=5)
    failed = list(Job.objects.exclude(status="succeeded").values("status", "error_message", "provider_error"))
    assert not failed, f"{failed}\n" + (tmp_path / "supervisor.log").read_text()[-3000:]
    assert_every_job_final_and_paid_once(jobs, capsys, "Redis restarted")


def test_terminated_database_connections_cost_a_supervised_cluster_no_job(
    user, redis_url, monkeypatch, settings, tmp_path, capsys
):
    settings.JOB_REQUEUE_AFTER_SECONDS = 2
    name = use_queue(monkeypatch, redis_url)
    env = cluster_env(redis_url=redis_url, name=name, Q_WORKERS="2", LOCAL_RENDER_DELAY_MS="300")
    args = ["supervise_qcluster", "--name", name, "--stall-seconds", "3", "--heartbeat-seconds", "0.5",
            "--stop-grace", "3", "--restart-grace", "1"]  # fmt: skip
    supervisor = start(args, env, tmp_path / "supervisor.log")
    model = local_model()
    db = connection.settings_dict
    dsn = conninfo(db)
    cuts = 0
    try:
        jobs = [job_create(user=user, model=model, prompt=f"cut {n}", aspect_ratio="square") for n in range(12)]
        deadline = time.monotonic() + 20
        while not Job.objects.filter(status=Job.Status.SUCCEEDED).exists():  # the cluster is at work
            assert time.monotonic() < deadline, (tmp_path / "supervisor.log").read_text()[-3000:]
            time.sleep(0.1)
        with psycopg.connect(dsn, autocommit=True) as admin:
            mine = admin.info.backend_pid
            for _ in range(5):  # every connection of the cluster, cut while jobs run
                time.sleep(0.4)
                cuts += admin.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> %s",
                    [connection.connection.info.backend_pid if connection.connection else mine],
                ).fetchone()[0]
        connection.close()
        wait_until_final(jobs, timeout=40)
    finally:
        stop(supervisor, timeout=5)
    assert cuts > 0, "no connection was cut: the test proved nothing"
    assert_every_job_final_and_paid_once(jobs, capsys, "database connections cut")
