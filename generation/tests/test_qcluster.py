"""A job through a real `qcluster` process on the ORM broker, against the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection

from accounts.tests.factories import UserFactory
from billing.services import balance_of, credits_grant
from generation.models import Job
from generation.services import job_create
from generation.tests.factories import local_model

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def wait_for(predicate, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(message)


def test_a_local_job_goes_queued_running_succeeded_through_a_real_qcluster():
    user = UserFactory()
    credits_grant(user=user, amount=1_000, key="purchase:qcluster")
    job = job_create(user=user, model=local_model(), prompt="A kite over dunes", aspect_ratio="landscape", seed=11)
    assert Job.objects.get(pk=job.pk).status == Job.Status.QUEUED

    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "LOCAL_RENDER_DELAY_MS": "1500",  # long enough to see the job running
        "Q_WORKERS": "1",
    }
    env.pop("REDIS_URL", None)
    cluster = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        wait_for(lambda: Job.objects.get(pk=job.pk).status == Job.Status.RUNNING, 30, "the job never started running")
        finished = wait_for(lambda: (j := Job.objects.get(pk=job.pk)).is_final and j, 30, "the job never finished")
    finally:
        output = cluster_stop(cluster, timeout=20)
    assert finished.status == Job.Status.SUCCEEDED, output[-2000:]
    output_file = finished.outputs.get()
    with default_storage.open(output_file.file.name) as stored:
        assert stored.read(8) == b"\x89PNG\r\n\x1a\n"
    assert (output_file.width, output_file.height) == (384, 256)  # 3:2 at the test models' 0.1 MP
    assert balance_of(user) == 500


def cluster_stop(cluster: subprocess.Popen, *, timeout: float = 30) -> str:
    """Stop a qcluster as a deploy does (SIGTERM), killing it if it hangs; its output."""
    cluster.send_signal(signal.SIGTERM)
    try:
        output, _ = cluster.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        cluster.kill()
        output, _ = cluster.communicate()
    return output.decode()
