"""Scaling out: two `qcluster` processes on one Redis queue share the jobs, each run once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django_q.brokers.redis_broker import Redis
from django_q.conf import Conf
from django_q.tasks import async_task

from accounts.tests.factories import UserFactory
from billing.services import balance_of, credits_grant
from generation.models import Job
from generation.services import job_create
from generation.tests.factories import local_model
from generation.tests.test_qcluster import ROOT, cluster_stop, database_url
from tests.redis_keys import new_prefix

pytestmark = pytest.mark.django_db(transaction=True)
JOBS = 100


def start_cluster(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def test_two_clusters_drain_one_redis_queue_running_each_job_once(monkeypatch, redis_url):
    # A queue of this test's own: its list in Redis is named for the cluster.
    cluster_name = new_prefix(redis_url)
    monkeypatch.setattr(Conf, "CLUSTER_NAME", cluster_name)
    monkeypatch.setattr(Conf, "PREFIX", cluster_name)  # also the salt tasks are signed with
    user = UserFactory()
    credits_grant(user=user, amount=JOBS * 500, key="purchase:scale")
    model = local_model()
    # The jobs are charged here; their tasks go to the Redis queue both clusters read.
    monkeypatch.setattr(Conf, "REDIS", redis_url)
    broker = Redis(list_key=Conf.CLUSTER_NAME)
    jobs = []
    for n in range(JOBS):
        job = job_create(user=user, model=model, prompt=f"scaled {n}", aspect_ratio="square", seed=n)
        async_task("generation.tasks.run_job", str(job.id), broker=broker, task_name=f"job-{job.id}")
        jobs.append(job)

    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url,
        "Q_CLUSTER_NAME": cluster_name,
        "CACHE_KEY_PREFIX": cluster_name,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "LOCAL_RENDER_DELAY_MS": "40",
        "Q_WORKERS": "2",
    }
    clusters = [start_cluster(env), start_cluster(env)]
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and Job.objects.filter(status=Job.Status.SUCCEEDED).count() < JOBS:
            time.sleep(0.2)
    finally:
        outputs = [cluster_stop(cluster) for cluster in clusters]

    assert Job.objects.filter(status=Job.Status.SUCCEEDED).count() == JOBS, outputs[0][-2000:]
    assert set(Job.objects.values_list("attempts", flat=True)) == {1}
    ran = [set(re.findall(r"processing job-([0-9a-f-]{36})", output)) for output in outputs]
    assert ran[0] and ran[1], "both clusters should take part"
    assert not ran[0] & ran[1], "no job may run in both clusters"
    assert ran[0] | ran[1] == {str(job.id) for job in jobs}
    assert balance_of(user) == 0
