"""`make dev`'s worker is supervised like production's, so the admin home shows it working."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from generation.tests.test_qcluster import ROOT, database_url
from operations.models import WorkerCluster
from tests.clusters import stop

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_development_worker_reports_to_the_admin_home_like_a_production_one(staff_client, tmp_path, settings):
    command = next(
        line.split(":", 1)[1].strip() for line in (ROOT / "Procfile.dev").read_text().splitlines()
        if line.startswith("worker:")
    )  # fmt: skip
    # `make dev` puts the virtualenv first on the PATH, as here.
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    env = {**os.environ, "PATH": path, "DATABASE_URL": database_url(), "MEDIA_ROOT": str(settings.MEDIA_ROOT)}
    env.pop("REDIS_URL", None)  # the embedded default: the ORM broker
    with open(tmp_path / "worker.log", "wb") as log:
        # As honcho runs it: through the shell, in a process group of its own.
        worker = subprocess.Popen(
            ["/bin/sh", "-c", command], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not WorkerCluster.objects.filter(last_heartbeat_at__isnull=False).exists():
            alive = worker.poll() is None and time.monotonic() < deadline
            assert alive, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.2)
        page = staff_client.get("/admin/").content.decode()
        assert "No supervised cluster has reported" not in page
        assert "development</strong> · working" in page
    finally:
        took = stop(worker, timeout=10)
    assert took < 5, "honcho would have killed it"  # it stops within honcho's five seconds
    assert WorkerCluster.objects.get(name="development").stopped_at is not None
