"""Workers SIGKILLed at random points during 100 jobs: nothing is lost, paid twice or orphaned.

Seeded: FAULT_SEED=<n> replays a failing run.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings

from accounts.tests.factories import UserFactory
from billing.models import LedgerEntry
from billing.services import credits_grant
from fakes.replicate import FakeReplicate
from generation.models import Job
from generation.services import job_create, sweep_stuck_jobs
from generation.tests.factories import replicate_model
from generation.tests.test_qcluster import ROOT, database_url

pytestmark = pytest.mark.django_db(transaction=True)
SEED = int(os.environ.get("FAULT_SEED", "20261122"))
JOBS = 100
LEASE_SECONDS = 5


def start_cluster(fake: FakeReplicate) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "REPLICATE_API_TOKENS": "r8_test_token",
        "REPLICATE_BASE_URL": fake.url,
        "REPLICATE_CREATE_WAIT": "1",
        "LOCAL_RENDERER_ENABLED": "false",
        "JOB_LEASE_SECONDS": str(LEASE_SECONDS),
        "Q_WORKERS": "4",
    }
    env.pop("REDIS_URL", None)
    # Its own process group, so one signal reaches the sentinel, the workers and the pusher.
    return subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def kill(cluster: subprocess.Popen, sig=signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(cluster.pid, sig)
    try:
        cluster.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(cluster.pid, signal.SIGKILL)
        cluster.wait(timeout=10)


def test_killed_workers_leave_every_job_finished_once_and_no_orphan_prediction(settings):
    rng = random.Random(SEED)
    settings.JOB_LEASE_SECONDS = LEASE_SECONDS
    # Tasks a killed cluster had taken from the ORM broker come back only after Q_CLUSTER's
    # `retry` (minutes); the sweeper enqueues such jobs again sooner. Here: after 3 seconds.
    settings.JOB_REQUEUE_AFTER_SECONDS = 3
    user = UserFactory()
    credits_grant(user=user, amount=JOBS * 500, key="purchase:faults")
    model = replicate_model(timeout_seconds=120)

    with FakeReplicate(predict_seconds=0.3) as fake:
        settings.REPLICATE_API_TOKENS = ["r8_test_token"]
        settings.REPLICATE_BASE_URL = fake.url
        settings.REPLICATE_CREATE_WAIT = 1
        prompts = [f"job {n}" + (" [fail]" if rng.random() < 0.1 else "") for n in range(JOBS)]
        jobs = [
            job_create(user=user, model=model, prompt=p, aspect_ratio="square", seed=n) for n, p in enumerate(prompts)
        ]

        cluster = start_cluster(fake)
        kills = 0
        try:
            for _ in range(6):  # kill at random moments, then start a new cluster
                time.sleep(rng.uniform(0.5, 2.0))
                kill(cluster)
                kills += 1
                cluster = start_cluster(fake)
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline:
                if not Job.objects.exclude(status__in=Job.FINAL_STATUSES).exists():
                    break
                sweep_stuck_jobs()  # what the schedule does every minute
                time.sleep(1)
        finally:
            kill(cluster, signal.SIGTERM)

        statuses = list(Job.objects.values_list("status", flat=True))
        assert kills == 6
        assert set(statuses) <= {"succeeded", "failed"}, f"seed {SEED}: {statuses}"
        for job in Job.objects.all():
            charges = LedgerEntry.objects.filter(idempotency_key=f"charge:{job.id}").count()
            refunds = LedgerEntry.objects.filter(kind="refund", reference=f"job:{job.id}").count()
            assert charges == 1, f"seed {SEED}: {job.id} charged {charges} times"
            assert refunds == (1 if job.status == "failed" else 0), f"seed {SEED}: {job.id} refunded {refunds} times"
            if job.status == "succeeded":
                assert job.outputs.count() == 1
        known = set(Job.objects.values_list("prediction_id", flat=True))
        orphans = set(fake.predictions) - known
        assert not orphans, f"seed {SEED}: predictions no job knows about: {orphans}"
        failed_prompts = {p for p in prompts if "[fail]" in p}
        assert set(Job.objects.filter(status="failed").values_list("prompt", flat=True)) == failed_prompts
    assert len(jobs) == JOBS
